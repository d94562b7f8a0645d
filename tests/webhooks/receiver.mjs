// A completion-webhook receiver for tests/e2e/e2e_webhooks.sh. It verifies
// every delivery with the standardwebhooks package (an implementation of
// Standard Webhooks that owes nothing to genq's) and appends one JSON line
// per request to its log:
//   {path, id, sigs, verified, error, type, job_id, job_status, data, bytes}
//
//   node receiver.mjs PORT SECRET_FILE LOG_FILE
//
// SECRET_FILE holds the whsec_ secret the receiver trusts; it is read again
// for every request, so a test can swap it. Paths:
//   /hook       2xx when verified (204), 401 when not
//   /down       503 (a receiver that is unwell)
//   /redirect   302 to /hook?redirected=1 (must not be followed)
//   /big        verified, then a 200 with a 1 MiB body (the sender must
//               stop reading)
//   /gone       410 Gone
import { createServer } from "node:http";
import { appendFileSync, readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

const [port, secretFile, logFile] = process.argv.slice(2);
if (!port || !secretFile || !logFile) {
  console.error("usage: node receiver.mjs PORT SECRET_FILE LOG_FILE");
  process.exit(2);
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const path = req.url;
    const sig = req.headers["webhook-signature"] ?? "";
    const entry = {
      path,
      id: req.headers["webhook-id"] ?? null,
      sigs: sig.split(" ").filter(Boolean).length,
      bytes: body.length,
    };
    try {
      const secret = readFileSync(secretFile, "utf8").trim();
      const msg = new Webhook(secret).verify(body, {
        "webhook-id": req.headers["webhook-id"],
        "webhook-timestamp": req.headers["webhook-timestamp"],
        "webhook-signature": req.headers["webhook-signature"],
      });
      entry.verified = true;
      entry.type = msg.type;
      entry.job_id = msg.data?.id ?? null;
      entry.job_status = msg.data?.status ?? null;
      entry.data = msg.data ?? null;
    } catch (e) {
      entry.verified = false;
      entry.error = String(e?.message ?? e);
    }
    appendFileSync(logFile, JSON.stringify(entry) + "\n");
    if (path.startsWith("/down")) {
      res.writeHead(503).end("down");
    } else if (path.startsWith("/redirect")) {
      res.writeHead(302, { Location: "/hook?redirected=1" }).end();
    } else if (path.startsWith("/gone")) {
      res.writeHead(410).end();
    } else if (!entry.verified) {
      res.writeHead(401).end("bad signature");
    } else if (path.startsWith("/big")) {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end("x".repeat(1 << 20));
    } else {
      res.writeHead(204).end();
    }
  });
});
server.listen(Number(port), "127.0.0.1", () => console.log(`receiver on 127.0.0.1:${port}`));
for (const s of ["SIGTERM", "SIGINT"]) process.on(s, () => server.close(() => process.exit(0)));
