// validate.mjs — every response genq-api gave the e2e tests, checked
// against api/openapi.yaml.
//
//   node validate.mjs [--spec FILE] [--min N] DIR
//
// DIR holds the exchanges tests/e2e/helpers.bash's api_record kept: for
// each, NAME.req ("METHOD RAW-PATH"), NAME.headers (the response's header
// block as curl -D wrote it) and NAME.body. Each response must be one the
// document describes:
//   - a path no template matches is 404 not_found; a method the path does
//     not list is 405 method_not_allowed with an Allow of exactly the
//     methods the path lists;
//   - otherwise its status is one of the operation's responses, its
//     Content-Type one of that response's media types (none when it has
//     none), its required headers are there and every documented header
//     that came matches its schema;
//   - a JSON body parses and validates against the media type's schema, in
//     which an object that lists its properties has no others (a field the
//     server sends must be documented);
//   - a text/event-stream body: every complete event is one the media type
//     names in x-event-data, and its data validates against that schema;
//   - every response carries X-Request-Id (1-64 of [A-Za-z0-9._-]), and an
//     error body's error.request_id is that id.
// Prints one line per failure (the test that made the request, the
// exchange, what is wrong), then the counts and "openapi-summary: ..." for
// scripts/test. Exits 1 on any failure or when fewer than N (default 1)
// responses were checked.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { DEFAULT_SPEC, escapePointer, explain, loadSpec, METHODS, pathMatcher, resolve, validators } from "./spec.mjs";

const ERROR_SCHEMA = "#/components/schemas/Error";
const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

// The last header block of curl -D (after any 100 Continue): {status, headers}.
export function parseHeaders(text) {
  const blocks = text.split(/\r?\n\r?\n/).filter((b) => /^HTTP\/\S+ \d{3}/.test(b));
  if (!blocks.length) return null;
  const lines = blocks[blocks.length - 1].split(/\r?\n/);
  const status = Number(lines[0].split(" ")[1]);
  const headers = new Map();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    if (i > 0) {
      const name = l.slice(0, i).trim().toLowerCase();
      const value = l.slice(i + 1).trim();
      headers.set(name, headers.has(name) ? headers.get(name) + ", " + value : value);
    }
  }
  return { status, headers };
}

// The complete events of an event stream (a cut-off last one is left out):
// [{event, data, id}], comment-only blocks skipped.
export function parseEvents(text) {
  const blocks = text.replace(/\r\n?/g, "\n").split("\n\n");
  blocks.pop(); // after the last blank line: an event not finished (or nothing)
  const out = [];
  for (const b of blocks) {
    let event = "message";
    let id = null;
    const data = [];
    let fields = 0;
    for (const line of b.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const name = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      fields++;
      if (name === "event") event = value;
      else if (name === "data") data.push(value);
      else if (name === "id") id = value;
    }
    if (fields) out.push({ event, data: data.join("\n"), id });
  }
  return out;
}

const mediaOf = (ct) => (ct || "").split(";")[0].trim().toLowerCase();
const isJson = (media) => media === "application/json" || media.endsWith("+json");

function mediaMatch(keys, media) {
  return keys.find((k) => {
    const key = k.toLowerCase();
    if (key === media || key === "*/*") return true;
    return key.endsWith("/*") && media.startsWith(key.slice(0, -1));
  });
}

// A header's text as its schema's type wants it.
function headerValue(schema, text) {
  const type = schema && (Array.isArray(schema.type) ? schema.type[0] : schema.type);
  if ((type === "integer" || type === "number") && /^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (type === "boolean" && (text === "true" || text === "false")) return text === "true";
  return text;
}

export function makeChecker(doc) {
  const validator = validators(doc);
  const matchPath = pathMatcher(doc);

  const validateJson = (pointer, value) => {
    const v = validator(pointer);
    return v(value) ? null : explain(v.errors);
  };

  // One exchange -> {key, problems[], events}. key names what was checked
  // ("GET /v1/jobs/{id} 200"), for the counts.
  return function check(method, rawPath, headerText, body) {
    const problems = [];
    const res = parseHeaders(headerText);
    if (!res) return { key: null, problems: ["no HTTP response in the recorded headers"], events: 0 };
    const { status, headers } = res;
    const rid = headers.get("x-request-id");
    if (!rid) problems.push("no X-Request-Id header");
    else if (!REQUEST_ID.test(rid)) problems.push(`X-Request-Id ${JSON.stringify(rid)} is not 1-64 of [A-Za-z0-9._-]`);
    const media = mediaOf(headers.get("content-type"));
    const text = body.toString("utf8");

    let parsed;
    const jsonBody = () => {
      if (parsed === undefined) {
        try {
          parsed = { value: JSON.parse(text) };
        } catch (e) {
          parsed = { error: `the body is not JSON (${e.message}): ${JSON.stringify(text.slice(0, 120))}` };
        }
      }
      return parsed;
    };
    // The error shape and its request_id, on any 4xx/5xx with a JSON body.
    const checkError = () => {
      if (!isJson(media)) {
        problems.push(`an error answered with Content-Type ${JSON.stringify(media)}, not application/json`);
        return null;
      }
      const j = jsonBody();
      if (j.error) {
        problems.push(j.error);
        return null;
      }
      const bad = validateJson(ERROR_SCHEMA, j.value);
      if (bad) problems.push(`not the error shape: ${bad}`);
      else if (rid && j.value.error.request_id !== rid)
        problems.push(`error.request_id ${JSON.stringify(j.value.error.request_id)} is not the X-Request-Id ${JSON.stringify(rid)}`);
      return j.value;
    };

    const template = matchPath(rawPath);
    if (!template) {
      const e = checkError();
      if (status !== 404 || (e && e.error && e.error.code !== "not_found"))
        problems.push(`${rawPath.split("?")[0]} is in no path of the document, yet the answer is ${status}${e && e.error ? " " + e.error.code : ""} (want 404 not_found)`);
      return { key: `${method} (no such path) ${status}`, problems, events: 0 };
    }
    const item = doc.paths[template];
    const m = method.toLowerCase();
    if (!METHODS.includes(m) || !item[m]) {
      const listed = METHODS.filter((x) => item[x]).map((x) => x.toUpperCase());
      const e = checkError();
      // Under /v1/admin anyone but an admin gets 404 not_found for every
      // path and method (api/admin.c; the admin tag says so): not a 405.
      const hidden = template.startsWith("/v1/admin/") && status === 404 &&
        e && e.error && e.error.code === "not_found";
      if (hidden) {
        // as documented
      } else if (status !== 405 || (e && e.error && e.error.code !== "method_not_allowed")) {
        problems.push(`${method} is not a method of ${template} in the document (${listed.join(", ")}), yet the answer is ${status} (want 405 method_not_allowed)`);
      } else {
        const allow = (headers.get("allow") || "").split(",").map((x) => x.trim()).filter(Boolean);
        if (allow.slice().sort().join(", ") !== listed.slice().sort().join(", "))
          problems.push(`Allow: ${allow.join(", ")} but the document lists ${listed.join(", ")} for ${template}`);
      }
      return { key: `${method} ${template} (method not listed) ${status}`, problems, events: 0 };
    }

    const opPointer = `#/paths/${escapePointer(template)}/${m}`;
    const key = `${method} ${template} ${status}`;
    const responses = item[m].responses || {};
    const code = [String(status), `${String(status)[0]}XX`, "default"].find((c) => responses[c]);
    if (!code) {
      const e = status >= 400 && isJson(media) ? jsonBody().value : undefined;
      const what = e && e.error ? ` (${e.error.code}: ${e.error.message})` : "";
      problems.push(`status ${status}${what} is not a documented response of ${method} ${template} (${Object.keys(responses).join(", ")})`);
      return { key, problems, events: 0 };
    }
    const { node: response, pointer: resPointer } = resolve(doc, `${opPointer}/responses/${code}`);

    for (const [name, hdr] of Object.entries(response.headers || {})) {
      const { node: h, pointer: hPointer } = resolve(doc, `${resPointer}/headers/${escapePointer(name)}`);
      const got = headers.get(name.toLowerCase());
      if (got === undefined) {
        if (h.required) problems.push(`the required header ${name} is missing`);
        continue;
      }
      if (h.schema) {
        const bad = validateJson(`${hPointer}/schema`, headerValue(resolve(doc, `${hPointer}/schema`).node, got));
        if (bad) problems.push(`header ${name}: ${JSON.stringify(got)}: ${bad}`);
      }
    }

    const contents = response.content || {};
    const keys = Object.keys(contents);
    let events = 0;
    if (method === "HEAD" || status === 204 || status === 304) {
      if (body.length) problems.push(`a ${method} ${status} answer has a body of ${body.length} bytes`);
    } else if (!keys.length) {
      if (body.length) problems.push(`the document gives this response no content, yet it has ${body.length} bytes (${media || "no Content-Type"})`);
    } else {
      const mk = mediaMatch(keys, media);
      if (!mk) {
        problems.push(`Content-Type ${JSON.stringify(media || "(none)")} is not one of ${keys.join(", ")}`);
      } else {
        const mPointer = `${resPointer}/content/${escapePointer(mk)}`;
        const mediaObj = resolve(doc, mPointer).node;
        if (isJson(media)) {
          const j = jsonBody();
          if (j.error) problems.push(j.error);
          else if (mediaObj.schema) {
            const bad = validateJson(`${mPointer}/schema`, j.value);
            if (bad) problems.push(`the body does not match the schema: ${bad}`);
            if (status >= 400 && !bad && j.value && j.value.error && rid && j.value.error.request_id !== rid)
              problems.push(`error.request_id ${JSON.stringify(j.value.error.request_id)} is not the X-Request-Id ${JSON.stringify(rid)}`);
          }
        } else if (media === "text/event-stream") {
          const named = mediaObj["x-event-data"] || {};
          for (const ev of parseEvents(text)) {
            events++;
            if (!named[ev.event]) {
              problems.push(`event ${JSON.stringify(ev.event)} is not one of x-event-data's (${Object.keys(named).join(", ")})`);
              continue;
            }
            let data;
            try {
              data = JSON.parse(ev.data);
            } catch (e) {
              problems.push(`event ${ev.event} ${ev.id ?? ""}: its data is not JSON (${e.message})`);
              continue;
            }
            const bad = validateJson(`${mPointer}/x-event-data/${escapePointer(ev.event)}`, data);
            if (bad) problems.push(`event ${ev.event} id ${ev.id}: ${bad}`);
          }
        }
      }
    }
    if (status >= 400 && !isJson(media)) problems.push(`an error answered with Content-Type ${JSON.stringify(media)}, not application/json`);
    return { key, problems, events };
  };
}

function main(argv) {
  let spec = DEFAULT_SPEC;
  let min = 1;
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--spec") spec = argv[++i];
    else if (argv[i] === "--min") min = Number(argv[++i]);
    else rest.push(argv[i]);
  }
  if (rest.length !== 1 || !Number.isInteger(min)) {
    console.error("usage: node validate.mjs [--spec FILE] [--min N] DIR");
    return 2;
  }
  const dir = rest[0];
  const doc = loadSpec(spec);
  const check = makeChecker(doc);
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".req")).sort() : [];
  const counts = new Map();
  let failures = 0;
  let checked = 0;
  let events = 0;
  for (const f of names) {
    const base = path.join(dir, f.slice(0, -4));
    const [method, rawPath] = fs.readFileSync(base + ".req", "utf8").trim().split(" ");
    const headerText = fs.readFileSync(base + ".headers", "utf8");
    const body = fs.readFileSync(base + ".body");
    const r = check(method, rawPath, headerText, body);
    checked++;
    events += r.events;
    if (r.key) counts.set(r.key, (counts.get(r.key) || 0) + 1);
    for (const p of r.problems) {
      failures++;
      console.log(`FAIL ${f.slice(0, -4)}: ${method} ${rawPath}: ${p}`);
    }
  }
  const ops = new Set([...counts.keys()].filter((k) => !k.includes("(")).map((k) => k.replace(/ \d{3}$/, "")));
  // what the document promises and no test saw (not a failure: a map of what is left to test)
  const unseen = [];
  for (const [template, item] of Object.entries(doc.paths || {}))
    for (const m of METHODS)
      for (const code of Object.keys((item[m] && item[m].responses) || {}))
        if (!counts.has(`${m.toUpperCase()} ${template} ${code}`)) unseen.push(`${m.toUpperCase()} ${template} ${code}`);
  console.log(`checked ${checked} responses (${events} events in event streams) against ${path.relative(process.cwd(), spec)}:`);
  for (const [k, n] of [...counts].sort()) console.log(`  ${String(n).padStart(5)}  ${k}`);
  console.log(`documented responses no test received (${unseen.length}): ${unseen.join("; ") || "none"}`);
  console.log(`openapi-summary: responses=${checked} events=${events} operations=${ops.size} statuses=${counts.size} failures=${failures}`);
  if (checked < min) {
    console.log(`FAIL: ${checked} responses recorded, fewer than ${min}`);
    return 1;
  }
  return failures ? 1 : 0;
}

if (import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) process.exitCode = main(process.argv.slice(2));
