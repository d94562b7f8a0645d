// Drives genq's admin dashboard (GET /admin) in Debian's headless Chromium
// with playwright-core, as an operator would: the page loads under its CSP
// without a console error, signs in with an admin token, shows the queues,
// a queued job and a dead job, goes live on its event stream, and its retry
// button brings the dead job back; a non-admin token is told the admin API
// answered 404 and sees no data. Run by tests/e2e/e2e_admin_browser.sh.
//
// Environment: GENQ_API_URL, ADMIN_TOKEN, USER_TOKEN (not an admin),
// QUEUED_JOB (a job that stays queued: no worker runs), DEAD_JOB (a job in
// the dead-letter set), SCREENSHOT (where to save the page), CHROMIUM
// (default /usr/bin/chromium). Prints one "ok - ..." or "FAIL - ..." line
// per check and "N passed, N failed"; exits 1 when any failed.
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) {
    console.error(`dashboard.mjs: ${k} must be set`);
    process.exit(2);
  }
  return v;
};
const API = env("GENQ_API_URL").replace(/\/$/, "");
const ADMIN_TOKEN = env("ADMIN_TOKEN");
const USER_TOKEN = env("USER_TOKEN");
const QUEUED_JOB = env("QUEUED_JOB");
const DEAD_JOB = env("DEAD_JOB");
const SCREENSHOT = env("SCREENSHOT");
const WAIT = 20000;

let passed = 0, failed = 0;
function check(name, ok, detail) {
  if (ok) {
    passed++;
    console.log(`ok   - ${name}`);
  } else {
    failed++;
    console.log(`FAIL - ${name}${detail ? `\n       ${detail}` : ""}`);
  }
}
async function attempt(name, fn) {
  try {
    const r = await fn();
    check(name, r !== false);
  } catch (e) {
    check(name, false, String(e && e.message ? e.message.split("\n")[0] : e));
  }
}

const args = process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args,
});
const context = await browser.newContext({ viewport: { width: 1400, height: 1100 } });
const page = await context.newPage();
const consoleErrors = [];
page.on("console", (m) => {
  if (m.type() === "error") consoleErrors.push(m.text());
});
page.on("pageerror", (e) => consoleErrors.push(String(e)));
const adminAnswers = []; // [status, path] of every /v1/admin answer the page got
page.on("response", (r) => {
  const u = new URL(r.url());
  if (u.pathname.startsWith("/v1/admin")) adminAnswers.push([r.status(), u.pathname]);
});

try {
  // ---- the page itself ----
  const res = await page.goto(`${API}/admin`, { waitUntil: "load" });
  check("GET /admin answers 200 with the page", res && res.status() === 200);
  const csp = (res && res.headers()["content-security-policy"]) || "";
  check("it carries a strict Content-Security-Policy (scripts and styles of this origin only)",
        /default-src 'none'/.test(csp) && /script-src 'self'(;|$)/.test(csp) &&
        /style-src 'self'(;|$)/.test(csp) && !/unsafe-inline|unsafe-eval/.test(csp), csp);
  await attempt("the sign-in form is shown, the dashboard is not", async () =>
    (await page.locator("#token").isVisible()) && !(await page.locator("#dash").isVisible()));

  // ---- signed in as an admin ----
  await page.fill("#token", ADMIN_TOKEN);
  await page.click("#signin-form button[type=submit]");
  await attempt("an admin token signs in: the dashboard shows", () =>
    page.locator("#dash").waitFor({ state: "visible", timeout: WAIT }));
  await attempt("the token is kept in sessionStorage", async () =>
    (await page.evaluate(() => sessionStorage.getItem("genq_admin_token"))) === ADMIN_TOKEN);
  await attempt("the queues table has a row per kind", async () => {
    await page.locator('#queues tr[data-kind="campaign"]').waitFor({ timeout: WAIT });
    return (await page.locator("#queues tbody tr[data-kind]").count()) === 5;
  });
  await attempt("the storyboard queue counts the queued job", async () => {
    const cell = page.locator('#queues tr[data-kind="storyboard"] td:nth-child(2)');
    await page.waitForFunction((el) => el && Number(el.textContent) >= 1,
                               await cell.elementHandle(), { timeout: WAIT });
  });
  const queuedRow = page.locator(`#active tr[data-job-id="${QUEUED_JOB}"]`);
  await attempt("the submitted job is listed, queued, in its queue", async () => {
    await queuedRow.waitFor({ timeout: WAIT });
    return (await queuedRow.getAttribute("data-status")) === "queued" &&
      (await queuedRow.locator("td:nth-child(2)").textContent()) === "storyboard";
  });
  await attempt("the live badge says the event stream is up", () =>
    page.waitForFunction(() => document.getElementById("live").textContent === "live", null,
                         { timeout: WAIT }));
  await attempt("the workers and providers tables are filled from the stream", async () => {
    await page.locator('#providers tr[data-provider="luma"]').waitFor({ timeout: WAIT });
    await page.waitForFunction(() => document.querySelector("#workers tbody tr") !== null, null,
                               { timeout: WAIT });
  });
  const deadRow = page.locator(`#dead tr[data-job-id="${DEAD_JOB}"]`);
  await attempt("the dead job is listed with its error and a retry button", async () => {
    await deadRow.waitFor({ timeout: WAIT });
    return (await deadRow.locator("td.err").textContent()).length > 0 &&
      (await deadRow.locator("button.retry").isEnabled());
  });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  check("a screenshot of the dashboard is saved", true);

  // ---- the retry button ----
  await deadRow.locator("button.retry").click();
  await attempt("the retry is confirmed on the page", () =>
    page.locator("#toast div", { hasText: `retried ${DEAD_JOB}` }).waitFor({ timeout: WAIT }));
  await attempt("the retried job leaves the dead list", () =>
    deadRow.waitFor({ state: "detached", timeout: WAIT }));
  await attempt("and shows among the queued jobs", () =>
    page.locator(`#active tr[data-job-id="${DEAD_JOB}"]`).waitFor({ timeout: WAIT }));
  await attempt("the audit table shows the retry", () =>
    page.locator("#actions tbody tr", { hasText: DEAD_JOB }).filter({ hasText: "job.retry" })
      .waitFor({ timeout: WAIT }));

  check("no console error while signed in (CSP violations included)", consoleErrors.length === 0,
        consoleErrors.join(" | "));
  const errorsBefore = consoleErrors.length;

  // ---- signed out; a token that is not an admin's ----
  await page.click("#signout");
  await attempt("signing out forgets the token", async () =>
    (await page.evaluate(() => sessionStorage.getItem("genq_admin_token"))) === null &&
    (await page.locator("#token").isVisible()));
  const before = adminAnswers.length;
  await page.fill("#token", USER_TOKEN);
  await page.click("#signin-form button[type=submit]");
  await attempt("a non-admin token is refused: the page says the admin API answered 404", () =>
    page.locator("#signin-error", { hasText: "404" }).waitFor({ timeout: WAIT }));
  const after = adminAnswers.slice(before);
  check("the admin API answered that token 404, nothing else",
        after.length > 0 && after.every(([s]) => s === 404), JSON.stringify(after));
  await attempt("and the dashboard stays hidden", async () =>
    !(await page.locator("#dash").isVisible()) &&
    (await page.evaluate(() => sessionStorage.getItem("genq_admin_token"))) === null);

  // the browser reports the 404 itself; nothing else may go wrong
  const others = consoleErrors.slice(errorsBefore)
    .filter((m) => !/status of 404/.test(m));
  check("no other console error after the refusal", others.length === 0, others.join(" | "));
} catch (e) {
  check("the browser run finished", false, String(e));
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
