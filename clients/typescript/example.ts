// example.ts — the typed client end to end: submits an image job, follows
// it over its event stream until it ends, then downloads every asset of its
// output and checks each one's bytes and sha256 against the job's.
//
//   GENQ_API_URL=http://127.0.0.1:8080 GENQ_TOKEN=$(build/genqctl token --user demo) \
//     node <compiled>/example.js ["a prompt"]
//
// Prints what it saw as one JSON object on stdout (progress on stderr);
// exits 1 when the job did not succeed or an asset does not match.
import { createHash } from "node:crypto";

import { createGenqClient, followJob, GenqError, type Asset, type Job } from "./src/index.js";

const baseUrl = process.env.GENQ_API_URL;
const token = process.env.GENQ_TOKEN;
if (!baseUrl || !token) {
  console.error("example: set GENQ_API_URL and GENQ_TOKEN");
  process.exit(2);
}
const prompt = process.argv[2] ?? "a lighthouse at dawn, for a travel agency";
const genq = createGenqClient({ baseUrl, token });

const submitted = await genq.POST("/v1/jobs", {
  body: { kind: "image", input: { prompt, aspect_ratio: "1:1" } },
  headers: { "Idempotency-Key": `example-${Date.now()}` },
});
if (!submitted.data) throw new GenqError(submitted.response.status, submitted.error);
const job: Job = submitted.data;
console.error(`submitted ${job.id} (${job.kind}, ${job.cost.price} credits held: ${job.cost.held})`);

let last: Job = job;
const seen: string[] = [];
for await (const j of followJob(genq, job.id)) {
  last = j;
  const step = j.steps.map((s) => `${s.name}:${s.status}${s.progress === null ? "" : ` ${Math.round(s.progress * 100)}%`}`);
  seen.push(j.status);
  console.error(`event: ${j.status} [${step.join(", ")}]`);
}

interface Checked {
  id: string;
  kind: Asset["kind"];
  content_type: string;
  bytes: number;
  sha256: string;
  ok: boolean;
}
const assets: Checked[] = [];
for (const asset of last.output.assets) {
  const got = await genq.GET("/v1/assets/{id}", { params: { path: { id: asset.id } }, parseAs: "arrayBuffer" });
  if (!got.data) throw new GenqError(got.response.status, got.error);
  const bytes = new Uint8Array(got.data);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const ok = bytes.length === asset.bytes && sha256 === asset.sha256 &&
    got.response.headers.get("content-type") === asset.content_type;
  console.error(`asset ${asset.id}: ${bytes.length} bytes, sha256 ${ok ? "matches" : "DIFFERS"}`);
  assets.push({ id: asset.id, kind: asset.kind, content_type: asset.content_type, bytes: bytes.length, sha256, ok });
}

const succeeded = last.status === "succeeded" && assets.length > 0 && assets.every((a) => a.ok);
console.log(JSON.stringify({ job: job.id, status: last.status, events: seen, captured: last.cost.captured, assets }));
process.exit(succeeded ? 0 : 1);
