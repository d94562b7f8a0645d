// index.ts — genq's HTTP API from TypeScript: a client typed by
// api/openapi.yaml (openapi-fetch over the types `npm run generate` writes
// to src/schema.d.ts), and followJob, which reads a job's event stream.
//
//   const genq = createGenqClient({ baseUrl, token: () => session.getToken() });
//   const { data: job, error } = await genq.POST("/v1/jobs", { body: { kind: "image", input: { prompt } } });
//   for await (const j of followJob(genq, job.id)) render(j);
import createClient, { type Client } from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";
export type Job = components["schemas"]["Job"];
export type JobStatus = components["schemas"]["Status"];
export type Submission = components["schemas"]["Submission"];
export type Asset = components["schemas"]["Asset"];
export type ErrorBody = components["schemas"]["Error"];
export type GenqClient = Client<paths>;

export interface GenqClientOptions {
  /** genq-api's base URL, e.g. https://api.genq.example */
  baseUrl: string;
  /** A Clerk session token or a genq API key (gq_…), or a function that
   * gives one for each request (a session token expires within minutes). */
  token: string | (() => string | Promise<string>);
  /** Another fetch (tests, a proxy); globalThis.fetch by default. */
  fetch?: (input: Request) => Promise<Response>;
}

/** A client of every documented operation: paths, parameters, bodies and
 * answers are typed from api/openapi.yaml. Every request carries
 * `Authorization: Bearer <token>`. */
export function createGenqClient(opts: GenqClientOptions): GenqClient {
  const client = createClient<paths>({ baseUrl: opts.baseUrl, ...(opts.fetch ? { fetch: opts.fetch } : {}) });
  client.use({
    async onRequest({ request }) {
      const token = typeof opts.token === "function" ? await opts.token() : opts.token;
      request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  });
  return client;
}

/** An answer in genq's error shape, with its HTTP status. */
export class GenqError extends Error {
  readonly status: number;
  readonly code: string;
  readonly requestId: string;
  constructor(status: number, body: unknown) {
    const e = (body as Partial<ErrorBody> | undefined)?.error;
    super(e ? `${status} ${e.code}: ${e.message}` : `HTTP ${status}`);
    this.name = "GenqError";
    this.status = status;
    this.code = e?.code ?? "http_error";
    this.requestId = e?.request_id ?? "";
  }
}

const TERMINAL: readonly JobStatus[] = ["succeeded", "failed", "canceled"];
export const isTerminal = (status: JobStatus): boolean => TERMINAL.includes(status);

/** One server-sent event: its name and data (comment lines dropped). */
export interface StreamEvent {
  event: string;
  id: string | null;
  data: string;
}

/** The complete events in text, and what is left of it (an event not
 * finished yet). */
export function parseEvents(text: string): { events: StreamEvent[]; rest: string } {
  const events: StreamEvent[] = [];
  const blocks = text.replace(/\r\n?/g, "\n").split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    let id: string | null = null;
    const data: string[] = [];
    let fields = 0;
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const name = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      fields++;
      if (name === "event") event = value;
      else if (name === "id") id = value;
      else if (name === "data") data.push(value);
    }
    if (fields) events.push({ event, id, data: data.join("\n") });
  }
  return { events, rest };
}

/** A job's states from GET /v1/jobs/{id}/events: the job as it is first,
 * then once per change of its status, steps or progress. Ends after the
 * terminal state (the server then closes the stream), or when the server
 * ends the stream early (the token expired: call again with a fresh one
 * for the rest). Throws GenqError when the stream is refused. */
export async function* followJob(client: GenqClient, id: string, signal?: AbortSignal): AsyncGenerator<Job> {
  const { data, error, response } = await client.GET("/v1/jobs/{id}/events", {
    params: { path: { id } },
    parseAs: "stream",
    ...(signal ? { signal } : {}),
  });
  if (error !== undefined || !data) throw new GenqError(response.status, error);
  const reader = data.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const { events, rest } = parseEvents(buf + value);
      buf = rest;
      for (const ev of events) {
        if (ev.event !== "job") continue;
        const job = JSON.parse(ev.data) as Job;
        yield job;
        if (isTerminal(job.status)) return;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
