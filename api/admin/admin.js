// genq admin dashboard (docs/admin.md). Plain JavaScript, no build step.
// Signs in with a pasted token (kept in sessionStorage), calls /v1/admin
// with Authorization: Bearer, and stays live on GET /v1/admin/events (read
// with fetch, since EventSource cannot send the header); while that stream
// is down it polls the JSON endpoints. Every value is put in the page as
// text (never as HTML).
"use strict";

const TOKEN_KEY = "genq_admin_token";
const POLL_MS = 5000;
const LIST_LIMIT = 50;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let stream = null; // the AbortController of the open event stream
let pollTimer = null;
let reconnectMs = 1000;
let lastCounts = "";
let listsTimer = null;

// ---- HTTP ----

async function api(path, opts = {}) {
  if (!token) return { status: 0, body: null }; // signed out meanwhile
  const headers = { Authorization: "Bearer " + token };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method: opts.method || "GET",
    headers,
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    cache: "no-store",
  });
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    body = null;
  }
  return { status: r.status, body };
}

function errorText(res) {
  const e = res.body && res.body.error;
  return e ? `${e.code}: ${e.message}` : `HTTP ${res.status}`;
}

// ---- small DOM helpers ----

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells, attrs) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    if (c instanceof Node) {
      const td = document.createElement("td");
      td.appendChild(c);
      tr.appendChild(td);
    } else if (c && typeof c === "object") {
      tr.appendChild(el("td", c.text, c.cls));
    } else {
      tr.appendChild(el("td", c));
    }
  }
  for (const [k, v] of Object.entries(attrs || {})) tr.setAttribute(k, v);
  return tr;
}

function fill(tableId, rows, emptyText, cols) {
  const tbody = $(tableId).tBodies[0];
  tbody.replaceChildren(...rows);
  if (!rows.length) {
    const tr = row([emptyText]);
    tr.className = "empty";
    tr.firstChild.colSpan = cols;
    tbody.appendChild(tr);
  }
}

function button(text, onClick, cls) {
  const b = el("button", text, cls);
  b.type = "button";
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await onClick();
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

function toast(text, bad) {
  const d = el("div", text, bad ? "bad" : "");
  $("toast").appendChild(d);
  setTimeout(() => d.remove(), 6000);
}

function age(s) {
  if (s === null || s === undefined) return "-";
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function when(t) {
  if (!t) return "-";
  const d = new Date(t);
  return isNaN(d) ? t : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function errText(e) {
  return e ? `${e.code || "error"}: ${e.message || ""}` : "";
}

// ---- rendering ----

function renderStats(st) {
  $("stats-at").textContent = "at " + when(st.at);
  const num = (v) => ({ text: v, cls: "num" });
  fill(
    "queues",
    (st.kinds || []).map((k) =>
      row([k.kind, num(k.queued), num(k.ready), num(k.retry_waiting), age(k.oldest_age_s),
           num(k.running), { text: k.dead, cls: k.dead > 0 ? "num hot" : "num" }],
          { "data-kind": k.kind })),
    "no kinds", 7);
  const foot = $("queues").tFoot;
  foot.replaceChildren(row(["all", num(st.queued), num(st.ready), num(st.retry_waiting), "",
                            num(st.running), num(st.dead)]));
  // the lists change when these do: read them again
  const counts = JSON.stringify([st.queued, st.running, st.dead,
                                 (st.kinds || []).map((k) => [k.queued, k.running, k.dead])]);
  if (counts !== lastCounts) {
    lastCounts = counts;
    scheduleLists();
  }
}

function renderWorkers(w) {
  if (w.error) {
    fill("workers", [], "unknown: " + w.error, 6);
    return;
  }
  fill(
    "workers",
    (w.workers || []).map((x) =>
      row([{ text: x.id, cls: "mono" }, { text: x.state, cls: "state-" + x.state },
           (x.kinds || []).join(", "), `${x.in_flight} / ${x.concurrency}`,
           age((x.last_beat_age_ms || 0) / 1000),
           workerButtons(x)], { "data-worker-id": x.id })),
    "no live worker", 6);
}

function workerButtons(w) {
  const span = el("span");
  if (w.state === "running")
    span.appendChild(button("quiet", () => workerCommand(w.id, "quiet")));
  if (w.state !== "stopping") span.appendChild(button("stop", () => workerCommand(w.id, "stop")));
  return span;
}

async function workerCommand(id, command) {
  if (!confirm(`${command} worker ${id}?`)) return;
  const res = await api(`/v1/admin/workers/${encodeURIComponent(id)}/${command}`, { method: "POST" });
  if (res.status === 202) toast(`${command} sent to ${id}`);
  else toast(`${command} ${id}: ${errorText(res)}`, true);
}

function renderProviders(p) {
  if (p.error) {
    fill("providers", [], "unknown: " + p.error, 6);
    return;
  }
  fill(
    "providers",
    (p.providers || []).map((x) =>
      row([x.provider,
           x.max_in_flight > 0 ? `${x.in_use} / ${x.window} / ${x.max_in_flight}` : `${x.in_use} (no limit)`,
           x.paused ? `${Math.ceil(x.paused_for_ms / 1000)} s` : "-",
           x.rate_per_minute > 0 ? x.rate_per_minute : "-",
           { text: x.breaker, cls: "br-" + x.breaker }, x.failures],
          { "data-provider": x.provider })),
    "no providers", 6);
}

function jobCell(id) {
  return { text: id, cls: "mono" };
}

function renderActive(jobs) {
  fill(
    "active",
    jobs.map((j) =>
      row([jobCell(j.id), j.kind, j.status, j.user_id, when(j.created_at),
           `${j.attempt}/${j.max_attempts}`,
           button("cancel", () => cancelJob(j.id))],
          { "data-job-id": j.id, "data-status": j.status })),
    "nothing queued or running", 7);
}

function renderDead(jobs) {
  fill(
    "dead",
    jobs.map((j) =>
      row([jobCell(j.id), j.kind, j.user_id, when(j.dead_at), { text: errText(j.error), cls: "err" },
           button("retry", () => retryJob(j.id), "retry primary")],
          { "data-job-id": j.id })),
    "the dead-letter set is empty", 6);
}

function renderFailed(jobs) {
  fill(
    "failed",
    jobs.map((j) =>
      row([jobCell(j.id), j.kind, j.user_id, when(j.finished_at), { text: errText(j.error), cls: "err" },
           j.dead_at ? "dead" : ""], { "data-job-id": j.id })),
    "no failures", 6);
}

function actorText(a) {
  if (!a) return "-";
  return a.kind === "api_key" ? `key ${a.id} (${a.user})` : `${a.kind} ${a.id}`;
}

function renderActions(actions) {
  fill(
    "actions",
    actions.map((a) =>
      row([a.id, when(a.at), actorText(a.actor), a.action, { text: a.target, cls: "mono" },
           { text: a.request_id || "-", cls: "mono" }], { "data-action-id": a.id })),
    "no admin action yet", 6);
}

// ---- actions ----

async function retryJob(id) {
  const res = await api(`/v1/admin/jobs/${id}/retry`, { method: "POST" });
  if (res.status === 200) {
    toast(`retried ${id}: ${res.body.status}`);
    refreshLists();
  } else {
    toast(`retry ${id}: ${errorText(res)}`, true);
  }
}

async function cancelJob(id) {
  if (!confirm(`cancel job ${id}?`)) return;
  const res = await api(`/v1/admin/jobs/${id}/cancel`, { method: "POST" });
  if (res.status === 200) toast(`job ${id}: ${res.body.status}`);
  else toast(`cancel ${id}: ${errorText(res)}`, true);
  refreshLists();
}

async function retryAllDead() {
  const dry = await api("/v1/admin/jobs/retry", { method: "POST", body: { status: "dead", max: 1000, dry_run: true } });
  if (dry.status !== 200) {
    toast(`retry all: ${errorText(dry)}`, true);
    return;
  }
  if (!dry.body.matched) {
    toast("no dead job to retry");
    return;
  }
  const more = dry.body.more ? " (more match: run it again after)" : "";
  if (!confirm(`Retry ${dry.body.matched} dead jobs, oldest first${more}?`)) return;
  const res = await api("/v1/admin/jobs/retry", { method: "POST", body: { status: "dead", max: 1000 } });
  if (res.status === 200)
    toast(`retried ${res.body.retried.length} of ${res.body.matched}; ${res.body.not_retried.length} refused`,
          res.body.not_retried.length > 0);
  else toast(`retry all: ${errorText(res)}`, true);
  refreshLists();
}

// ---- reading ----

async function refreshLists() {
  const q = (s) => api(`/v1/admin/jobs?status=${s}&limit=${LIST_LIMIT}`);
  const [queued, running, dead, failed, actions] = await Promise.all([
    q("queued"), q("running"), q("dead"), api("/v1/admin/jobs?status=failed&limit=20"),
    api("/v1/admin/actions?limit=20"),
  ]);
  if (!token) return;
  if ([queued, running, dead, failed, actions].some((r) => r.status === 401 || r.status === 404)) {
    signOut("the admin API refused this token");
    return;
  }
  if (queued.status === 200 && running.status === 200)
    renderActive(running.body.data.concat(queued.body.data));
  if (dead.status === 200) renderDead(dead.body.data);
  if (failed.status === 200) renderFailed(failed.body.data);
  if (actions.status === 200) renderActions(actions.body.data);
}

// at most one read of the lists a second, however many changes arrive
function scheduleLists() {
  if (listsTimer) return;
  listsTimer = setTimeout(() => {
    listsTimer = null;
    refreshLists();
  }, 300);
}

async function pollOnce() {
  const [stats, workers, providers] = await Promise.all([
    api("/v1/admin/stats"), api("/v1/admin/workers"), api("/v1/admin/providers"),
  ]);
  if (!token) return;
  if (stats.status === 200) renderStats(stats.body);
  if (workers.status === 200) renderWorkers(workers.body);
  else renderWorkers({ error: errorText(workers) });
  if (providers.status === 200) renderProviders(providers.body);
  else renderProviders({ error: errorText(providers) });
  refreshLists();
}

function setLive(state) {
  const b = $("live");
  b.className = "badge " + (state === "live" ? "live" : state === "polling" ? "poll" : "off");
  b.textContent = state;
}

function startPolling() {
  if (pollTimer) return;
  setLive("polling");
  pollTimer = setInterval(pollOnce, POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

function onEvent(name, data) {
  let o;
  try {
    o = JSON.parse(data);
  } catch (e) {
    return;
  }
  if (name === "stats") renderStats(o);
  else if (name === "workers") renderWorkers(o);
  else if (name === "providers") renderProviders(o);
  else if (name === "action") {
    toast(`${actorText(o.actor)}: ${o.action} ${o.target}`);
    scheduleLists();
  }
}

// GET /v1/admin/events as a stream of text/event-stream events.
async function openStream() {
  if (!token) return;
  const ctl = new AbortController();
  stream = ctl;
  let res;
  try {
    res = await fetch("/v1/admin/events", { headers: { Authorization: "Bearer " + token },
                                            signal: ctl.signal, cache: "no-store" });
  } catch (e) {
    return streamLost(ctl);
  }
  if (res.status === 401 || res.status === 404) {
    signOut("the admin API refused this token");
    return;
  }
  if (res.status !== 200 || !res.body) return streamLost(ctl);
  stopPolling();
  setLive("live");
  reconnectMs = 1000;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let name = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) onEvent(name, data);
      }
    }
  } catch (e) {
    // aborted or cut: reconnect below
  }
  streamLost(ctl);
}

function streamLost(ctl) {
  if (stream !== ctl || !token) return; // signed out or replaced
  stream = null;
  startPolling();
  setTimeout(openStream, reconnectMs);
  reconnectMs = Math.min(reconnectMs * 2, 10000);
}

// ---- signing in and out ----

async function signIn(t) {
  token = t.trim();
  $("signin-error").textContent = "";
  if (!token) return;
  let res;
  try {
    res = await api("/v1/admin/stats");
  } catch (e) {
    res = { status: 0, body: null };
  }
  if (res.status !== 200) {
    const why = res.status === 404
      ? "This token is not an admin's: the admin API answered 404."
      : res.status === 401 ? "Invalid or expired token (401)." : "Sign-in failed: " + errorText(res);
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    $("signin-error").textContent = why;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("signin").hidden = true;
  $("dash").hidden = false;
  $("signout").hidden = false;
  $("who").textContent = token.startsWith("gq_") ? "API key " + token.slice(0, 10) + "…" : "session token";
  renderStats(res.body);
  pollOnce();
  openStream();
}

function signOut(why) {
  token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  if (stream) stream.abort();
  stream = null;
  stopPolling();
  lastCounts = "";
  setLive("signed out");
  $("dash").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("who").textContent = "";
  $("signin-error").textContent = why || "";
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("token").value);
    $("token").value = "";
  });
  $("signout").addEventListener("click", () => signOut(""));
  $("retry-dead-all").addEventListener("click", retryAllDead);
  if (token) signIn(token);
});
