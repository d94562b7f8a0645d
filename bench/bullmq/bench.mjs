// The end-to-end reference of scripts/bench (SPEC §11): N no-op BullMQ jobs,
// added first, then processed by W worker processes of concurrency C each,
// on a Redis of their own.
//
//   node bench.mjs PORT N [W] [C]
//
// Prints one JSON line: {"jobs", "workers", "concurrency", "add_s",
// "process_s", "jobs_per_s"}. process_s runs from the moment every worker
// is told to start until the last job completes (each worker reports the
// time of its last completion). Bounded: exits 1 after BENCH_BULLMQ_TIMEOUT_S
// (default 300) seconds.
import { fork } from 'node:child_process';
import { Queue, Worker } from 'bullmq';

const QUEUE = 'genq-bench-noop';

function connection(port) {
  return { host: '127.0.0.1', port, maxRetriesPerRequest: null };
}

async function workerMain(port, concurrency) {
  let done = 0;
  let last = 0;
  const w = new Worker(QUEUE, async () => {}, {
    connection: connection(port),
    concurrency,
    autorun: false,
  });
  w.on('completed', () => {
    done += 1;
    last = Date.now();
  });
  w.on('error', (e) => console.error(`worker ${process.pid}: ${e.message}`));
  await w.waitUntilReady();
  process.on('message', async (m) => {
    if (m === 'go') {
      w.run().catch((e) => console.error(`worker ${process.pid}: ${e.message}`));
    } else if (m === 'report') {
      await w.close();
      process.send({ done, last }, () => process.exit(0));
    }
  });
  process.send('ready');
}

function message(child, want) {
  return new Promise((resolve, reject) => {
    child.once('message', (m) => (want === undefined || m === want ? resolve(m) : reject(new Error(`unexpected ${m}`))));
    child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
  });
}

async function main() {
  const port = Number(process.argv[2]);
  const n = Number(process.argv[3]);
  const workers = Number(process.argv[4] || 2);
  const concurrency = Number(process.argv[5] || 64);
  if (!(port > 0 && n > 0 && workers > 0 && concurrency > 0)) {
    console.error('usage: node bench.mjs PORT N [WORKERS] [CONCURRENCY]');
    process.exit(2);
  }
  const limit = Number(process.env.BENCH_BULLMQ_TIMEOUT_S || 300) * 1000;
  const timer = setTimeout(() => {
    console.error(`bullmq bench: not done after ${limit / 1000}s`);
    process.exit(1);
  }, limit);

  const q = new Queue(QUEUE, { connection: connection(port) });
  await q.waitUntilReady();
  await q.obliterate({ force: true });

  const t_add = performance.now();
  const chunk = 1000;
  for (let i = 0; i < n; i += chunk) {
    const jobs = [];
    for (let j = i; j < Math.min(n, i + chunk); j++) jobs.push({ name: 'noop', data: { i: j } });
    await q.addBulk(jobs);
  }
  const add_s = (performance.now() - t_add) / 1000;

  const children = [];
  for (let i = 0; i < workers; i++) {
    const c = fork(new URL(import.meta.url).pathname, ['--worker', String(port), String(concurrency)]);
    children.push(c);
  }
  await Promise.all(children.map((c) => message(c, 'ready')));
  const t_go = Date.now();
  for (const c of children) c.send('go');

  let completed = 0;
  for (let i = 0; completed < n && i < limit / 20; i++) {
    await new Promise((r) => setTimeout(r, 20));
    completed = await q.getCompletedCount();
  }
  const reports = await Promise.all(
    children.map((c) => {
      const p = message(c);
      c.send('report');
      return p;
    }),
  );
  const total = reports.reduce((s, r) => s + r.done, 0);
  const t_last = Math.max(...reports.map((r) => r.last));
  await q.obliterate({ force: true });
  await q.close();
  clearTimeout(timer);
  if (total < n) {
    console.error(`bullmq bench: ${total} of ${n} jobs completed`);
    process.exit(1);
  }
  const process_s = (t_last - t_go) / 1000;
  console.log(
    JSON.stringify({
      jobs: n,
      workers,
      concurrency,
      add_s: Number(add_s.toFixed(3)),
      process_s: Number(process_s.toFixed(3)),
      jobs_per_s: Number((n / process_s).toFixed(1)),
    }),
  );
}

if (process.argv[2] === '--worker') {
  workerMain(Number(process.argv[3]), Number(process.argv[4])).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
