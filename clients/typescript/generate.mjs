// generate.mjs — src/schema.d.ts, the TypeScript types of api/openapi.yaml
// (openapi-typescript, at the version package-lock.json pins).
//
//   npm run generate          writes src/schema.d.ts
//   npm run check-generated   exits 1 when src/schema.d.ts is not what
//                             api/openapi.yaml generates now
//   node generate.mjs --spec FILE --out FILE   another document, elsewhere
//                             (tests/e2e/e2e_ts_client.sh's breaking change)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import openapiTS, { astToString } from "openapi-typescript";

const HEADER = `// Generated from api/openapi.yaml by \`npm run generate\` (clients/typescript/generate.mjs).
// Do not edit: change api/openapi.yaml and generate again.

`;
let spec = new URL("../../api/openapi.yaml", import.meta.url);
let out = fileURLToPath(new URL("./src/schema.d.ts", import.meta.url));
let check = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--check") check = true;
  else if (argv[i] === "--spec") spec = pathToFileURL(path.resolve(argv[++i]));
  else if (argv[i] === "--out") out = path.resolve(argv[++i]);
  else {
    console.error("usage: node generate.mjs [--check] [--spec FILE] [--out FILE]");
    process.exit(2);
  }
}

const text = HEADER + astToString(await openapiTS(spec));
if (check) {
  const committed = fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "";
  if (committed !== text) {
    console.error(`${path.relative(process.cwd(), out)} is not what the document generates: run \`npm run generate\` in clients/typescript`);
    process.exit(1);
  }
  console.log(`${path.relative(process.cwd(), out)} matches the document`);
} else {
  fs.writeFileSync(out, text);
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
}
