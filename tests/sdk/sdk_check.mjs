// Checks that the official `openai` and `lumaai` npm clients accept
// genq-provsim: every call below goes through the SDK against the simulator,
// and every answer is checked. Prints one line per check; exits 1 on any
// failure, naming it.
//
// Environment: OPENAI_BASE_URL, OPENAI_API_KEY, LUMA_BASE_URL, LUMA_API_KEY
// (the stack's names), e.g. OPENAI_BASE_URL=http://127.0.0.1:PORT/openai/v1
// and LUMA_BASE_URL=http://127.0.0.1:PORT/luma/dream-machine/v1.
// SDK_CHECK_TIMEOUT_MS bounds each wait for a generation (default 60000).
import OpenAI from 'openai';
import LumaAI from 'lumaai';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`sdk_check: ${name} must be set`);
    process.exit(2);
  }
  return v;
};
const openaiBase = env('OPENAI_BASE_URL');
const lumaBase = env('LUMA_BASE_URL');
const openaiKey = process.env.OPENAI_API_KEY || 'sk-genq-sdk-check';
const lumaKey = process.env.LUMA_API_KEY || 'luma-genq-sdk-check';
const waitMs = Number(process.env.SDK_CHECK_TIMEOUT_MS || 60000);
const run = `${process.pid}-${Date.now()}`;

let passed = 0;
let failed = 0;
const ok = (name) => {
  passed++;
  console.log(`ok   - ${name}`);
};
const fail = (name, why) => {
  failed++;
  console.log(`FAIL - ${name}\n       ${why}`);
};
// check(name, async fn): fn returns nothing or throws; its value is returned.
async function check(name, fn) {
  try {
    const v = await fn();
    ok(name);
    return v;
  } catch (e) {
    fail(name, e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : String(e));
    return undefined;
  }
}
function assert(cond, what) {
  if (!cond) throw new Error(`expected ${what}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

// ---- OpenAI ----------------------------------------------------------------
const openai = new OpenAI({ apiKey: openaiKey, baseURL: openaiBase, maxRetries: 0 });
const storyboardFormat = {
  type: 'json_schema',
  json_schema: {
    name: 'storyboard',
    strict: true,
    schema: {
      type: 'object',
      properties: {
        title: { type: 'string' },
        scenes: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              visual_prompt: { type: 'string' },
              narration: { type: 'string' },
              duration_s: { type: 'number' },
            },
            required: ['visual_prompt', 'narration', 'duration_s'],
            additionalProperties: false,
          },
        },
      },
      required: ['title', 'scenes'],
      additionalProperties: false,
    },
  },
};
const messages = [
  { role: 'system', content: 'You plan short video ads as storyboards.' },
  { role: 'user', content: `a 15 second ad for a bakery (sdk check ${run})` },
];
function checkStoryboard(doc) {
  assert(doc && typeof doc.title === 'string', 'a string title');
  assert(Array.isArray(doc.scenes), 'a scenes array');
  for (const s of doc.scenes) {
    assert(typeof s.visual_prompt === 'string', 'scene.visual_prompt a string');
    assert(typeof s.narration === 'string', 'scene.narration a string');
    assert(typeof s.duration_s === 'number', 'scene.duration_s a number');
    assert(Object.keys(s).length === 3, 'no property beyond the schema');
  }
}

await check('openai chat.completions.create with a strict json_schema returns the document', async () => {
  const r = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages,
    response_format: storyboardFormat,
  });
  assert(r.object === 'chat.completion', `object chat.completion, got ${r.object}`);
  assert(typeof r.id === 'string' && r.id.length > 0, 'an id');
  const c = r.choices && r.choices[0];
  assert(c && c.finish_reason === 'stop', `finish_reason stop, got ${c && c.finish_reason}`);
  assert(c.message.role === 'assistant' && c.message.refusal === null, 'assistant, no refusal');
  checkStoryboard(JSON.parse(c.message.content));
  assert(r.usage && r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens,
    'usage totals');
});

await check('openai beta.chat.completions.parse gives message.parsed', async () => {
  const r = await openai.beta.chat.completions.parse({
    model: 'gpt-4o-mini',
    messages,
    response_format: storyboardFormat,
  });
  checkStoryboard(r.choices[0].message.parsed);
});

await check('openai surfaces a 400 for a non-strict-valid schema as BadRequestError', async () => {
  const bad = structuredClone(storyboardFormat);
  bad.json_schema.schema.required = ['title']; // strict needs every property required
  try {
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, response_format: bad });
  } catch (e) {
    assert(e instanceof OpenAI.BadRequestError, `BadRequestError, got ${e && e.constructor.name}`);
    assert(e.status === 400, `status 400, got ${e.status}`);
    return;
  }
  throw new Error('expected the create to fail');
});

// ---- Luma ------------------------------------------------------------------
const luma = new LumaAI({ authToken: lumaKey, baseURL: lumaBase, maxRetries: 0 });

await check('lumaai ping.check answers pong', async () => {
  const r = await luma.ping.check();
  assert(r.message === 'pong', `message pong, got ${JSON.stringify(r)}`);
});

await check('lumaai credits.get gives a numeric credit_balance', async () => {
  const r = await luma.credits.get();
  assert(typeof r.credit_balance === 'number', `a number, got ${JSON.stringify(r)}`);
});

function checkGeneration(g, type, model) {
  assert(UUID.test(g.id), `a UUID v4 id, got ${g.id}`);
  assert(g.generation_type === type, `generation_type ${type}, got ${g.generation_type}`);
  assert(['queued', 'dreaming', 'completed', 'failed'].includes(g.state), `a state, got ${g.state}`);
  assert(RFC3339.test(g.created_at), `an RFC 3339 created_at, got ${g.created_at}`);
  assert(g.model === model, `model ${model}, got ${g.model}`);
  assert(g.request && g.request.model === model, 'the request echoed');
}

// Polls generations.get until the generation leaves queued/dreaming; checks
// that the state never goes back.
async function waitDone(id) {
  const order = ['queued', 'dreaming', 'completed'];
  let last = 0;
  for (const end = Date.now() + waitMs; Date.now() < end; await sleep(150)) {
    const g = await luma.generations.get(id);
    if (g.state === 'failed') return g;
    const i = order.indexOf(g.state);
    assert(i >= last, `states in order, got ${g.state} after ${order[last]}`);
    last = i;
    if (g.state === 'completed') return g;
  }
  throw new Error(`generation ${id} not finished after ${waitMs} ms`);
}

async function fetchBytes(url, type) {
  const r = await fetch(url);
  assert(r.status === 200, `200 from ${url}, got ${r.status}`);
  assert(r.headers.get('content-type') === type, `Content-Type ${type}`);
  const b = Buffer.from(await r.arrayBuffer());
  assert(Number(r.headers.get('content-length')) === b.length, 'Content-Length matching the body');
  return b;
}

const videoPrompt = `a lighthouse at dusk, slow dolly in (sdk check ${run})`;
const video = await check('lumaai generations.create (video, ray-2) answers a queued Generation', async () => {
  const g = await luma.generations.create({
    model: 'ray-2',
    prompt: videoPrompt,
    aspect_ratio: '16:9',
    duration: '5s',
    resolution: '720p',
    loop: false,
  });
  checkGeneration(g, 'video', 'ray-2');
  assert(g.state === 'queued' || g.state === 'dreaming', `queued or dreaming, got ${g.state}`);
  assert(g.assets === null || g.assets === undefined, 'no assets yet');
  assert(g.request.prompt === videoPrompt, 'the prompt echoed');
  return g;
});

const image = await check('lumaai generations.image.create (photon-1, png) answers a Generation', async () => {
  const g = await luma.generations.image.create({
    model: 'photon-1',
    prompt: `a loaf of bread on a table (sdk check ${run})`,
    aspect_ratio: '1:1',
    format: 'png',
  });
  checkGeneration(g, 'image', 'photon-1');
  return g;
});

await check('lumaai generations.get polls the video to completed with MP4 assets', async () => {
  assert(video, 'the video create to have worked');
  const g = await waitDone(video.id);
  assert(g.state === 'completed', `completed, got ${g.state} (${g.failure_reason})`);
  assert(g.failure_reason === null || g.failure_reason === undefined, 'no failure_reason');
  const b = await fetchBytes(g.assets.video, 'video/mp4');
  assert(b.subarray(4, 8).toString('latin1') === 'ftyp', 'an MP4 (ftyp box first)');
  await fetchBytes(g.assets.progress_video, 'video/mp4');
});

await check('lumaai generations.get polls the image to completed with a PNG asset', async () => {
  assert(image, 'the image create to have worked');
  const g = await waitDone(image.id);
  assert(g.state === 'completed', `completed, got ${g.state}`);
  const b = await fetchBytes(g.assets.image, 'image/png');
  assert(b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
    'the PNG signature');
});

await check('lumaai generations.list has both generations, newest first', async () => {
  const r = await luma.generations.list({ limit: 100, offset: 0 });
  assert(Array.isArray(r.generations), 'a generations array');
  assert(r.count === r.generations.length, 'count == number returned');
  assert(typeof r.has_more === 'boolean' && r.limit === 100 && r.offset === 0, 'has_more, limit, offset');
  const ids = r.generations.map((g) => g.id);
  assert(ids.includes(video.id) && ids.includes(image.id), 'both ids listed');
  assert(ids.indexOf(image.id) < ids.indexOf(video.id), 'the newer (image) first');
});

await check('lumaai generations.create with a moderated prompt ends failed (moderation)', async () => {
  const g = await luma.generations.create({ model: 'ray-flash-2', prompt: `provsim:moderation ${run}` });
  const done = await waitDone(g.id);
  assert(done.state === 'failed', `failed, got ${done.state}`);
  assert(/moderation/i.test(done.failure_reason || ''), `a moderation reason, got ${done.failure_reason}`);
});

await check('lumaai rejects an unknown model with BadRequestError (400)', async () => {
  try {
    await luma.generations.create({ model: 'ray-0', prompt: 'x' });
  } catch (e) {
    assert(e instanceof LumaAI.BadRequestError, `BadRequestError, got ${e && e.constructor.name}`);
    assert(typeof (e.error && e.error.detail) === 'string', 'a detail message');
    return;
  }
  throw new Error('expected the create to fail');
});

await check('lumaai generations.delete, then get is NotFoundError (404)', async () => {
  assert(video, 'the video create to have worked');
  const r = await luma.generations.delete(video.id);
  assert(r === null || r === undefined || r === '', `an empty answer, got ${JSON.stringify(r)}`);
  try {
    await luma.generations.get(video.id);
  } catch (e) {
    assert(e instanceof LumaAI.NotFoundError, `NotFoundError, got ${e && e.constructor.name}`);
    return;
  }
  throw new Error('expected get after delete to fail');
});

console.log(`sdk-check: passed=${passed} failed=${failed} (node ${process.version})`);
process.exit(failed === 0 ? 0 : 1);
