'use strict';
// The S3-compatible server genq's storage tests run against (started by
// scripts/s3rver.sh): s3rver, in the @20minutes fork, which checks AWS SigV4
// signatures (the original s3rver 3.x accepts any V4 signature from a known
// access key). Its one account is S3RVER / S3RVER.
//
// Two checks real S3 makes and s3rver does not are added in front of it:
//   - no anonymous access: a request without a signature is 403 AccessDenied;
//   - the payload hash: a PUT/POST whose x-amz-content-sha256 is a SHA-256
//     must carry exactly that body, else 400 XAmzContentSHA256Mismatch.
//
// Usage: node server.js <data-dir> <port> <bucket>   (listens on 127.0.0.1)
const crypto = require('crypto');
const { Readable } = require('stream');
const S3rver = require('@20minutes/s3rver');

const MAX_BODY = 300 * 1024 * 1024; // above genq's largest object (256 MiB)

const [dir, portArg, bucket] = process.argv.slice(2);
const port = Number(portArg);
if (!dir || !bucket || !Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('usage: node server.js <data-dir> <port> <bucket>');
  process.exit(2);
}

function s3error(ctx, status, code, message) {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  console.log(`${ctx.method} ${ctx.url} -> ${status} ${code}`);
}

async function likeRealS3(ctx, next) {
  const signed =
    'authorization' in ctx.headers ||
    'X-Amz-Algorithm' in ctx.query ||
    'Signature' in ctx.query;
  if (!signed) {
    s3error(ctx, 403, 'AccessDenied', 'Anonymous access is not allowed.');
    return;
  }
  const claimed = ctx.get('x-amz-content-sha256');
  if (/^[0-9a-fA-F]{64}$/.test(claimed) && ['PUT', 'POST'].includes(ctx.method)) {
    const chunks = [];
    let size = 0;
    for await (const chunk of ctx.req) {
      size += chunk.length;
      if (size > MAX_BODY) {
        s3error(ctx, 400, 'EntityTooLarge', 'Your proposed upload exceeds the allowed size.');
        return;
      }
      chunks.push(chunk);
    }
    const body = Buffer.concat(chunks);
    const actual = crypto.createHash('sha256').update(body).digest('hex');
    if (actual !== claimed.toLowerCase()) {
      s3error(
        ctx,
        400,
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
      return;
    }
    // s3rver reads the body from ctx.req: hand it the bytes read here.
    ctx.req = Readable.from(body.length ? [body] : [], { objectMode: false });
  }
  return next();
}

const server = new S3rver({
  address: '127.0.0.1',
  port,
  directory: dir,
  silent: false,
  vhostBuckets: false, // path-style only, as genq addresses it
  configureBuckets: [{ name: bucket, configs: [] }],
});
server.middleware.unshift(likeRealS3); // before s3rver's own middleware

server.run().then(
  ({ address, port: bound }) => console.log(`s3rver listening on ${address}:${bound}`),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref(); // keep-alive sockets
  });
}
