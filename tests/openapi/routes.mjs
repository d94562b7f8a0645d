// routes.mjs — genq-api's routes and api/openapi.yaml's paths are the same
// set: every "METHOD TEMPLATE" that `genq-api --routes` prints is an
// operation of the document, and every operation of the document is a
// route. With --probes, prints instead one line per operation for the live
// check in tests/e2e/e2e_openapi.sh: "METHOD TEMPLATE PATH", PATH the
// template with each parameter filled in (the parameter's example if it has
// one, a fresh UUID for format uuid, else "x").
//
//   genq-api --routes | node routes.mjs [--spec FILE]
//   node routes.mjs --probes [--spec FILE]
import crypto from "node:crypto";
import fs from "node:fs";

import { DEFAULT_SPEC, loadSpec, operations, resolve } from "./spec.mjs";

let spec = DEFAULT_SPEC;
let probes = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--spec") spec = argv[++i];
  else if (argv[i] === "--probes") probes = true;
  else {
    console.error("usage: genq-api --routes | node routes.mjs [--spec FILE]; node routes.mjs --probes [--spec FILE]");
    process.exit(2);
  }
}
const doc = loadSpec(spec);
const ops = operations(doc);

if (probes) {
  for (const { method, template, op } of ops) {
    const params = [...(doc.paths[template].parameters || []), ...(op.parameters || [])].map((p) =>
      p.$ref ? resolve(doc, p.$ref).node : p,
    );
    const filled = template.replace(/\{([^}]+)\}/g, (_, name) => {
      const p = params.find((x) => x && x.in === "path" && x.name === name) || {};
      const ex = p.example ?? (p.examples && Object.values(p.examples)[0]?.value) ?? p.schema?.examples?.[0];
      if (ex !== undefined) return encodeURIComponent(String(ex));
      return p.schema?.format === "uuid" ? crypto.randomUUID() : "x";
    });
    console.log(`${method} ${template} ${filled}`);
  }
  process.exit(0);
}

const served = new Set(
  fs.readFileSync(0, "utf8").split("\n").map((l) => l.trim()).filter(Boolean),
);
const documented = new Set(ops.map((o) => `${o.method} ${o.template}`));
let bad = 0;
for (const r of [...served].sort()) {
  if (!documented.has(r)) {
    console.log(`FAIL: genq-api serves ${r}, which api/openapi.yaml does not document`);
    bad++;
  }
}
for (const d of [...documented].sort()) {
  if (!served.has(d)) {
    console.log(`FAIL: api/openapi.yaml documents ${d}, which genq-api does not serve`);
    bad++;
  }
}
console.log(`routes: ${served.size} served, ${documented.size} documented, ${bad} differences`);
process.exit(bad ? 1 : 0);
