// The event-stream load client of scripts/bench (SPEC §11: "one API process
// holding 10,000 open event streams"). Node's built-in http module only.
//
//   node events.mjs URL TOKEN JOBS_FILE N K [MAX_S]
//
// Opens N streams GET URL/v1/jobs/{id}/events (server-sent events), stream
// i on job i mod J of the J job ids in JOBS_FILE (one a line), at most
// BENCH_EVENTS_OPENING (256) being opened at a time, and holds them. Prints
// to stdout, one line each:
//   "ready opened=A failed=F open_ms=T opened_on_first_k=E"  once every
//       stream has its first event (A) or failed (F: a non-200 answer, an
//       error, or no event within BENCH_EVENTS_OPEN_TIMEOUT_S, 120 s); E of
//       the A are on the first K jobs of the file (the ones the caller
//       cancels, so the ones that must get a "canceled" event);
//   "canceled K"  whenever K, the streams whose last event says "canceled",
//       changed (at most every 100 ms);
//   on SIGTERM, SIGINT or after MAX_S (600) seconds: one JSON line with the
//       totals, then it closes every stream and exits 0 (1 after MAX_S).
//       Among them opened_on_first_k (E, counted again).
// Bounded: it never opens more than N connections, never reconnects, and
// stops by itself after MAX_S.
import http from 'node:http';
import { readFileSync } from 'node:fs';

const [url, token, jobsFile, nArg, kArg, maxArg] = process.argv.slice(2);
const N = Number(nArg);
const K = Number(kArg);
const MAX_S = Number(maxArg ?? 600);
if (!url || !token || !jobsFile || !(N >= 1) || !(K >= 0) || !(MAX_S > 0)) {
  console.error('usage: node events.mjs URL TOKEN JOBS_FILE N K [MAX_S]');
  process.exit(2);
}
const OPENING = Number(process.env.BENCH_EVENTS_OPENING ?? 256);
const OPEN_TIMEOUT_MS = 1000 * Number(process.env.BENCH_EVENTS_OPEN_TIMEOUT_S ?? 120);
const jobs = readFileSync(jobsFile, 'utf8').split('\n').filter((l) => l.trim() !== '');
if (jobs.length === 0) {
  console.error(`events.mjs: no job ids in ${jobsFile}`);
  process.exit(2);
}
const base = new URL(url);
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const t0 = Date.now();

const streams = []; // {req, res, status, events, pings, last, ended, failed, error, canceledAt}
const codes = {}; // HTTP status (or "error"/"timeout") -> streams
const lastStatus = {}; // the status of each stream's last event -> streams
let started = 0;
let settled = 0; // first event or failure
let opened = 0;
let failed = 0;
let canceled = 0;
let readyAt = 0;
let stopping = false;
let openTimedOut = false;

function settle(s, ok) {
  if (s.settled) return;
  s.settled = true;
  settled += 1;
  if (ok) opened += 1;
  else failed += 1;
  if (started < N && !openTimedOut) start();
  if (settled === N) ready();
}

function fail(s, why) {
  if (!s.settled) codes[why] = (codes[why] ?? 0) + 1;
  if (s.error === undefined) s.error = why;
  settle(s, false);
}

function onEvent(s, block) {
  // An event is lines up to a blank line; ": ping" is a comment.
  let data = null;
  let isJob = false;
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) isJob = line.slice(7) === 'job';
    else if (line.startsWith('data: ')) data = line.slice(6);
    else if (line.startsWith(':')) s.pings += 1;
  }
  if (!isJob || data === null) return;
  s.events += 1;
  let st = '?';
  try {
    st = JSON.parse(data).status ?? '?';
  } catch {
    s.badJson = (s.badJson ?? 0) + 1;
  }
  if (s.last === 'canceled') canceled -= 1;
  s.last = st;
  if (st === 'canceled') {
    canceled += 1;
    s.canceledAt = Date.now();
  }
  settle(s, true);
}

function start() {
  const i = started;
  started += 1;
  const s = { i, events: 0, pings: 0, last: null, ended: false, settled: false, buf: '' };
  streams.push(s);
  const req = http.request({
    host: base.hostname,
    port: base.port,
    path: `/v1/jobs/${jobs[i % jobs.length]}/events`,
    method: 'GET',
    agent,
    headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
  });
  s.req = req;
  req.on('response', (res) => {
    s.res = res;
    s.status = res.statusCode;
    if (res.statusCode !== 200) {
      fail(s, String(res.statusCode));
      res.resume();
      return;
    }
    codes['200'] = (codes['200'] ?? 0) + 1;
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      s.buf += chunk;
      let k;
      while ((k = s.buf.indexOf('\n\n')) >= 0) {
        const block = s.buf.slice(0, k);
        s.buf = s.buf.slice(k + 2);
        onEvent(s, block);
      }
    });
    res.on('end', () => {
      if (!stopping) s.ended = true; // the server ended the stream
    });
    res.on('error', () => {});
  });
  req.on('error', (e) => {
    if (!stopping) fail(s, `error ${e.code ?? e.message}`);
  });
  req.end();
}

function ready() {
  if (readyAt) return;
  readyAt = Date.now();
  clearTimeout(openTimer);
  let onFirstK = 0;
  for (const s of streams) if (s.events > 0 && s.i % jobs.length < K) onFirstK += 1;
  console.log(`ready opened=${opened} failed=${failed} open_ms=${readyAt - t0} opened_on_first_k=${onFirstK}`);
}

let reported = -1;
const ticker = setInterval(() => {
  if (canceled !== reported && readyAt) {
    reported = canceled;
    console.log(`canceled ${canceled}`);
  }
}, 100);

const openTimer = setTimeout(() => {
  openTimedOut = true;
  for (const s of streams) if (!s.settled) fail(s, 'timeout');
  if (started < N) {
    // never started: failed too
    codes['not started'] = N - started;
    failed += N - started;
    settled += N - started;
  }
  ready();
}, OPEN_TIMEOUT_MS);

function stop(deadline) {
  if (stopping) return;
  stopping = true;
  clearInterval(ticker);
  clearTimeout(openTimer);
  let events = 0;
  let pings = 0;
  let ended = 0;
  let endedCanceled = 0;
  let badJson = 0;
  let firstCancel = 0;
  let lastCancel = 0;
  let openedOnFirstK = 0;
  for (const s of streams) {
    if (s.events > 0 && s.i % jobs.length < K) openedOnFirstK += 1;
    events += s.events;
    pings += s.pings;
    badJson += s.badJson ?? 0;
    if (s.ended) ended += 1;
    if (s.ended && s.last === 'canceled') endedCanceled += 1;
    if (s.last !== null) lastStatus[s.last] = (lastStatus[s.last] ?? 0) + 1;
    if (s.canceledAt) {
      if (!firstCancel || s.canceledAt < firstCancel) firstCancel = s.canceledAt;
      if (s.canceledAt > lastCancel) lastCancel = s.canceledAt;
    }
  }
  process.stdout.write(
    `${JSON.stringify({
      streams: N,
      jobs: Math.min(N, jobs.length),
      opened,
      failed,
      codes,
      open_ms: readyAt ? readyAt - t0 : null,
      events,
      pings,
      bad_json: badJson,
      last_status: lastStatus,
      canceled,
      opened_on_first_k: openedOnFirstK,
      ended_by_server: ended,
      ended_after_canceled: endedCanceled,
      first_canceled_event_ms: firstCancel || null,
      last_canceled_event_ms: lastCancel || null,
      held_s: (Date.now() - t0) / 1000,
      deadline,
    })}\n`,
    () => {
      for (const s of streams) s.req?.destroy();
      agent.destroy();
      process.exit(deadline ? 1 : 0);
    },
  );
}
process.on('SIGTERM', () => stop(false));
process.on('SIGINT', () => stop(false));
setTimeout(() => stop(true), MAX_S * 1000);

for (let k = 0; k < Math.min(OPENING, N); k++) start();
