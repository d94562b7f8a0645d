// spec.mjs — api/openapi.yaml as the checks here read it: the document,
// its operations, which path template a raw path falls under, and JSON
// Schema validators (Ajv, draft 2020-12, the dialect of OpenAPI 3.1) for any
// schema in it.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import YAML from "yaml";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_SPEC = path.resolve(HERE, "../../api/openapi.yaml");
export const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const DOC_ID = "genq:openapi";

export function loadSpec(file = DEFAULT_SPEC) {
  return YAML.parse(fs.readFileSync(file, "utf8"));
}

// "#/a/b~1c" -> the node there, following $refs on the way and at the end;
// returns {node, pointer} with pointer where the node really is.
export function resolve(doc, pointer) {
  let node = doc;
  let at = "";
  for (const raw of pointer.replace(/^#/, "").split("/").slice(1)) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (node === undefined || node === null) break;
    node = node[key];
    at += "/" + raw;
    while (node && typeof node === "object" && typeof node.$ref === "string") {
      at = node.$ref.replace(/^#/, "");
      ({ node } = resolve(doc, node.$ref));
    }
  }
  return { node, pointer: "#" + at };
}

export const escapePointer = (s) => s.replace(/~/g, "~0").replace(/\//g, "~1");

// Every operation: [{method (upper case), template, op, pointer}].
export function operations(doc) {
  const out = [];
  for (const [template, item] of Object.entries(doc.paths || {})) {
    for (const m of METHODS) {
      if (item[m]) {
        out.push({
          method: m.toUpperCase(),
          template,
          op: item[m],
          pointer: `#/paths/${escapePointer(template)}/${m}`,
        });
      }
    }
  }
  return out;
}

// A matcher of raw paths (no query) to path templates: literal templates
// before templated ones, as OpenAPI wants; a parameter is one segment.
export function pathMatcher(doc) {
  const list = Object.keys(doc.paths || {}).map((template) => {
    const params = (template.match(/\{[^}]+\}/g) || []).length;
    const re = new RegExp(
      "^" +
        template
          .split(/(\{[^}]+\})/)
          .map((part) => (/^\{.+\}$/.test(part) ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
          .join("") +
        "$",
    );
    return { template, params, re };
  });
  list.sort((a, b) => a.params - b.params);
  return (rawPath) => {
    const p = rawPath.split("?")[0];
    const hit = list.find((t) => t.re.test(p));
    return hit ? hit.template : null;
  };
}

// Every object schema that lists properties gets unevaluatedProperties:
// false, unless it says otherwise: a response field the document does not
// name fails the check, so the document keeps up with the server. Inside
// allOf the members' objects are merged, so the $refs there are copied in
// and only the allOf's own level is closed.
function closeObjects(doc) {
  const copy = structuredClone(doc);
  const seen = new Set();
  const visit = (s, inAllOf) => {
    if (!s || typeof s !== "object") return s;
    if (Array.isArray(s)) return s.map((x) => visit(x, false));
    if (inAllOf && typeof s.$ref === "string") {
      const target = resolve(doc, s.$ref).node;
      return visit(structuredClone(target), true);
    }
    if (!inAllOf && seen.has(s)) return s;
    seen.add(s);
    for (const [k, v] of Object.entries(s)) {
      if (k === "allOf" && Array.isArray(v)) s[k] = v.map((x) => visit(x, true));
      else if (k !== "examples" && k !== "example" && k !== "enum" && k !== "const") s[k] = visit(v, false);
    }
    const isObject = s.properties && (s.type === undefined || s.type === "object" ||
      (Array.isArray(s.type) && s.type.includes("object")));
    if (isObject && !inAllOf && s.additionalProperties === undefined && s.unevaluatedProperties === undefined)
      s.unevaluatedProperties = false;
    if (s.allOf && !inAllOf && s.unevaluatedProperties === undefined) s.unevaluatedProperties = false;
    return s;
  };
  for (const key of ["paths", "components"]) copy[key] = visit(copy[key], false);
  return copy;
}

// validator(pointer) -> an Ajv validate function for the schema at that
// pointer of the document (cached), or throws when there is none.
export function validators(doc, { closed = true } = {}) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addFormat("binary", true);
  ajv.addSchema({ ...(closed ? closeObjects(doc) : doc), $id: DOC_ID });
  const cache = new Map();
  return (pointer) => {
    if (!cache.has(pointer)) {
      const v = ajv.getSchema(DOC_ID + pointer);
      if (!v) throw new Error(`no schema at ${pointer}`);
      cache.set(pointer, v);
    }
    return cache.get(pointer);
  };
}

// Ajv's errors, one line each, at most n of them.
export function explain(errors, n = 4) {
  const lines = (errors || []).map((e) => {
    const where = e.instancePath || "(body)";
    const extra =
      e.keyword === "unevaluatedProperties"
        ? ` (${e.params.unevaluatedProperty})`
        : e.keyword === "enum"
          ? ` (${JSON.stringify(e.params.allowedValues)})`
          : "";
    return `${where} ${e.message}${extra}`;
  });
  const uniq = [...new Set(lines)];
  return uniq.slice(0, n).join("; ") + (uniq.length > n ? `; … ${uniq.length - n} more` : "");
}
