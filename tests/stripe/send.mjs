// send.mjs — signs a Stripe event as Stripe does (the stripe package's
// webhooks.generateTestHeaderString) and POSTs it to genq's
// /v1/webhooks/stripe. Prints "<HTTP status> <response body>" and exits 0
// on any answer, 2 when the request could not be made.
//
//   node send.mjs --url http://127.0.0.1:8080/v1/webhooks/stripe \
//        --secret whsec_… [--secret whsec_other …] [--timestamp UNIX] \
//        [--tamper] [--no-signature] EVENT.json|-
//
// Each --secret adds one v1 (Stripe sends one per active secret while a
// secret is rolled); --timestamp signs for that time (default now);
// --tamper changes one byte of the body after signing. With GENQ_API_RECORD
// set (scripts/test), the exchange is kept there as tests/e2e/helpers.bash's
// api_record keeps one, for tests/openapi/validate.mjs.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Stripe from 'stripe';

const args = process.argv.slice(2);
const secrets = [];
let url = '', timestamp = Math.floor(Date.now() / 1000), tamper = false, unsigned = false, file = '';
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--url') url = args[++i];
  else if (a === '--secret') secrets.push(args[++i]);
  else if (a === '--timestamp') timestamp = Number(args[++i]);
  else if (a === '--tamper') tamper = true;
  else if (a === '--no-signature') unsigned = true;
  else file = a;
}
if (!url || !file || (!secrets.length && !unsigned)) {
  console.error('usage: node send.mjs --url URL --secret S [--secret S2] [--timestamp T] [--tamper] FILE|-');
  process.exit(2);
}
const payload = readFileSync(file === '-' ? 0 : file, 'utf8');
const stripe = new Stripe('sk_test_genq_unused');
// one header per secret, then their v1 values joined into one header
const v1 = secrets.map((secret) =>
  stripe.webhooks
    .generateTestHeaderString({ payload, secret, timestamp })
    .split(',')
    .find((p) => p.startsWith('v1=')));
const header = `t=${timestamp},${v1.join(',')}`;
let body = payload;
if (tamper) {
  body = payload.replace(/"credits":\s*"?(\d)/, (m, d) => m.slice(0, -1) + ((+d + 1) % 10));
  if (body === payload) body = payload + ' ';
}
const headers = { 'Content-Type': 'application/json' };
if (!unsigned) headers['Stripe-Signature'] = header;
try {
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  if (process.env.GENQ_API_RECORD) {
    const base = join(process.env.GENQ_API_RECORD, `stripe-send-${process.pid}-${Date.now()}`);
    const head = [`HTTP/1.1 ${res.status} ${res.statusText}`, ...[...res.headers].map(([k, v]) => `${k}: ${v}`)];
    writeFileSync(`${base}.headers`, head.join('\r\n') + '\r\n\r\n');
    writeFileSync(`${base}.body`, text);
    writeFileSync(`${base}.req`, `POST ${new URL(url).pathname}\n`);
  }
  console.log(`${res.status} ${text}`);
} catch (e) {
  console.error(`send.mjs: ${e.message}`);
  process.exit(2);
}
