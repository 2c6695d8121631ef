// Acceptance tests of the dashboard in Debian's headless Chromium (playwright-core), against
// the real hub and agent binaries on loopback. Run by hub/tests/dashboard_browser.rs, which
// passes the binaries' paths; alone: `npm ci && SITEWATCH_BIN_DIR=target/debug npm test`.
//
// Every process started here is killed by its own pid at the end. Traffic stays on
// 127.0.0.1. Figures (interactive time with 1,000 nodes, first-load weight) are printed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const binDir = process.env.SITEWATCH_BIN_DIR || join(repo, "target/debug");
const bin = (name) => join(binDir, name);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.SITEWATCH_SCREENSHOTS || join(repo, "docs/screenshots");
const PASSWORD = "browser-test-password-1";
const XSS = "<img src=x onerror=alert(1)>";

const procs = [];
const tmp = mkdtempSync(join(tmpdir(), "sitewatch-browser-"));
let hub, browser, ctx, page;
const dialogs = [];

function run(name, cmd, args, env = {}) {
  const p = spawn(cmd, args, { env: { ...process.env, RUST_LOG: "warn", ...env }, stdio: ["ignore", "ignore", "pipe"] });
  p.stderr.on("data", (d) => { if (process.env.SITEWATCH_BROWSER_VERBOSE) process.stderr.write(`[${name}] ${d}`); });
  p.on("error", (e) => { throw new Error(`cannot start ${name} (${cmd}): ${e.message}`); });
  procs.push(p);
  return p;
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => ok(port)); });
    s.on("error", fail);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, timeoutMs, f, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/// The API as a script sees it, with the bearer token made in `before`.
async function apiGet(path) {
  const r = await fetch(hub.url + path, { headers: { Authorization: `Bearer ${hub.token}` } });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}
const nodeOf = async (site, node) => (await apiGet("/api/v1/nodes")).find((n) => n.site === site && n.node === node);

function startAgent(site, node) {
  return run(`agent ${site}/${node}`, bin("sitewatch-agent"), ["--broker", hub.mqtt, "--site", site, "--node", node,
    "--heartbeat-interval", "1", "--metrics-interval", "1", "--keepalive", "2"]);
}

/// An `info` whose hostname is an HTML injection attempt, then heartbeats, as an agent would.
function publishHostile(site, node) {
  const prefix = `sitewatch/v1/${site}/${node}`;
  const info = { ts: Date.now(), session: "xss1", agent_version: "0.0.0", hostname: XSS, os: "<script>alert(2)</script>",
    kernel: "k", arch: "x86_64", ips: ["<b>1.2.3.4</b>"], macs: [], heartbeat_interval_s: 5, metrics_interval_s: 5, keepalive_s: 10 };
  const pub = (topic, msg, retain) => spawnSync("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(hub.mqttPort), "-t", `${prefix}/${topic}`,
    "-m", msg, ...(retain ? ["-r"] : [])], { stdio: "inherit" });
  const r = pub("info", JSON.stringify(info), true);
  assert.equal(r.status, 0, "mosquitto_pub failed: install mosquitto-clients (scripts/install-deps.sh --test)");
  let seq = 1;
  const beat = () => pub("heartbeat", JSON.stringify({ ts: Date.now(), session: "xss1", seq: seq++, uptime_s: seq }), false);
  beat();
  const timer = setInterval(beat, 2000);
  return () => clearInterval(timer);
}

async function login(p, user = "admin", password = PASSWORD) {
  await p.goto(hub.url + "/");
  await p.waitForURL(/\/login/);
  await p.fill("#user", user);
  await p.fill("#password", password);
  await p.click("button[type=submit]");
  await p.waitForSelector("#fleet-search");
}

/// Cookies of a fresh admin login, for new browser contexts (no cache, same session).
async function signedIn() {
  const c = await browser.newContext();
  await login(await c.newPage());
  const state = await c.storageState();
  await c.close();
  return state;
}

let stopHostile = () => {};

before(async () => {
  for (const f of ["sitewatch-hub", "sitewatch-agent", "sitewatch-loadgen"]) {
    assert.ok(existsSync(bin(f)), `${bin(f)} is missing: cargo build --workspace --bins`);
  }
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/install-deps.sh --test)`);
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const config = join(tmp, "hub.toml");
  // Logins required even on loopback: what a hub on a LAN address does.
  writeFileSync(config, "[auth]\nopen-on-loopback = false\n");
  hub = { mqttPort, mqtt: `mqtt://127.0.0.1:${mqttPort}`, url: `http://127.0.0.1:${httpPort}`, started: Date.now() };
  hub.proc = run("hub", bin("sitewatch-hub"), ["--config", config, "--mqtt-listen", `127.0.0.1:${mqttPort}`,
    "--http-listen", `127.0.0.1:${httpPort}`, "--data-dir", join(tmp, "data"), "--no-local-agent", "--allow-unsigned"],
  { SITEWATCH_ADMIN_PASSWORD: PASSWORD });
  await waitFor("hub /healthz", 30000, async () => (await (await fetch(hub.url + "/healthz")).json()).mqtt_connected);
  // A token for the test's own API calls, made through the login API like a script would.
  const r = await fetch(hub.url + "/api/v1/auth/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: "admin", password: PASSWORD }) });
  const me = await r.json();
  const cookie = r.headers.get("set-cookie").split(";")[0];
  const t = await fetch(hub.url + "/api/v1/tokens", { method: "POST", headers: { "Content-Type": "application/json", Cookie: cookie,
    "X-CSRF-Token": me.csrf }, body: JSON.stringify({ name: "browser test", role: "admin" }) });
  assert.equal(t.status, 201, "token creation");
  hub.token = (await t.json()).token;

  hub.agents = { a: startAgent("club-1", "pi-1"), b: startAgent("club-1", "pi-2"), c: startAgent("club-2", "pi-3") };
  stopHostile = publishHostile("club-2", "evil");
  await waitFor("three agents online", 30000, async () =>
    (await apiGet("/api/v1/nodes")).filter((n) => n.status === "online").length >= 4);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage"] });
  ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await ctx.newPage();
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
  page.on("pageerror", (e) => console.error("page error:", e.message));
});

after(async () => {
  stopHostile();
  if (browser) await browser.close().catch(() => {});
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});

test("log in: wrong password refused, then the fleet view lists the nodes", async () => {
  await page.goto(hub.url + "/#/node/club-1/pi-1");
  await page.waitForURL(/\/login/);
  await page.fill("#user", "admin");
  await page.fill("#password", "not the password");
  await page.click("button[type=submit]");
  await page.waitForSelector("#error:not([hidden])");
  await page.fill("#password", PASSWORD);
  await page.click("button[type=submit]");
  // The deep link survives the login.
  await page.waitForSelector("h1:has-text('pi-1')");
  await page.goto(hub.url + "/#/");
  for (const key of ["club-1/pi-1", "club-1/pi-2", "club-2/pi-3"]) {
    await page.waitForSelector(`tr[data-key="${key}"][data-status="online"]`);
  }
  const cookie = (await ctx.cookies()).find((c) => c.name === "sw_session");
  assert.ok(cookie.httpOnly, "session cookie is HttpOnly");
  assert.equal(cookie.sameSite, "Strict");
});

test("a hostname carrying HTML is shown as text and runs nothing", async () => {
  await page.goto(hub.url + "/#/?q=evil");
  const host = page.locator('tr[data-key="club-2/evil"] td.host');
  await host.waitFor();
  assert.equal(await host.textContent(), XSS);
  assert.equal(await page.locator("#view img").count(), 0, "no <img> was created from agent data");
  await page.goto(hub.url + "/#/node/club-2/evil");
  await page.waitForSelector("dl.info");
  assert.equal(await page.locator(".view-head .hostname").textContent(), XSS);
  assert.ok((await page.locator("dl.info").textContent()).includes("<script>alert(2)</script>"));
  assert.equal(await page.locator("#view img, #view script, #view b").count(), 0);
  await sleep(300);
  assert.deepEqual(dialogs, [], "no alert() ran");
});

test("a killed agent turns offline on screen within 2 s of the hub noticing, without reload", async () => {
  await page.goto(hub.url + "/#/");
  await page.waitForSelector('tr[data-key="club-1/pi-2"][data-status="online"]');
  await page.evaluate(() => { window.__noReload = true; });
  const onScreen = page.waitForSelector('tr[data-key="club-1/pi-2"][data-status="offline"]', { timeout: 60000 })
    .then(() => Date.now());
  hub.agents.b.kill("SIGKILL");
  const killed = Date.now();
  const hubNoticed = await waitFor("the hub to mark pi-2 offline", 30000, async () => {
    const n = await nodeOf("club-1", "pi-2");
    return n && n.status === "offline" ? Date.now() : null;
  }, 25);
  const shown = await onScreen;
  assert.ok(await page.evaluate(() => window.__noReload === true), "the page was not reloaded");
  const lag = Math.max(0, shown - hubNoticed);
  console.log(`offline on screen ${shown - killed} ms after SIGKILL, ${lag} ms after the API said so`);
  assert.ok(lag < 2000, `offline shown ${lag} ms after the hub noticed`);
});

test("the node's 24 h chart renders data points and shows values on hover", async () => {
  await page.goto(hub.url + "/#/node/club-1/pi-1?range=24h");
  const cpu = page.locator('figure[data-chart="cpu"] svg.chart-svg');
  await cpu.waitFor();
  const points = await waitFor("points in the CPU chart", 10000, async () => Number(await cpu.getAttribute("data-points")) || null);
  assert.ok(points > 0, "points rendered");
  assert.ok(await page.locator('figure[data-chart="cpu"] path.line, figure[data-chart="cpu"] circle.dot').count() > 0);
  const box = await cpu.boundingBox();
  await page.mouse.move(box.x + box.width - 15, box.y + box.height / 2);
  const tip = page.locator('figure[data-chart="cpu"] .chart-tip');
  await tip.waitFor({ state: "visible" });
  assert.match(await tip.textContent(), /%/);
  // New samples arrive without reload: the chart of the last hour grows.
  await page.goto(hub.url + "/#/node/club-1/pi-1?range=1h");
  const hourly = page.locator('figure[data-chart="cpu"] svg.chart-svg');
  const before = await waitFor("1 h chart", 10000, async () => Number(await hourly.getAttribute("data-points")) || null);
  await waitFor("a live point", 10000, async () => Number(await hourly.getAttribute("data-points")) > before);
});

test("a silence created in the UI is visible in the API", async () => {
  await page.goto(hub.url + "/#/alerts");
  await page.click("#new-silence");
  const form = page.locator("#silence-form");
  await form.locator(".m-label").first().fill("site");
  await form.locator(".m-value").first().fill("club-1");
  await form.locator("input[name=comment]").fill("maintenance from the browser test");
  await form.locator("button[type=submit]").click();
  const s = await waitFor("the silence in the API", 5000, async () =>
    (await apiGet("/api/v1/silences")).find((x) => x.comment === "maintenance from the browser test"));
  assert.deepEqual(s.matchers, [{ label: "site", value: "club-1" }]);
  assert.equal(s.created_by, "admin");
  await page.goto(hub.url + "/#/alerts/silences");
  await page.waitForSelector(`tr[data-silence="${s.id}"]`);
});

test("French and English, remembered by the browser", async () => {
  await page.goto(hub.url + "/#/");
  await page.click("#lang");
  await page.waitForSelector("header nav a:has-text('Parc')");
  await page.reload();
  await page.waitForSelector("header nav a:has-text('Parc')");
  await page.waitForSelector("text=Nœuds");
  await page.click("#lang");
  await page.waitForSelector("header nav a:has-text('Fleet')");
});

test("a viewer account reads but cannot change anything", async () => {
  const me = await page.evaluate(async () => (await fetch("/api/v1/auth/me")).json());
  const made = await page.evaluate(async (csrf) => (await fetch("/api/v1/users", { method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ name: "viewer1", role: "viewer", password: "viewer-password-1" }) })).status, me.csrf);
  assert.equal(made, 201);
  const vctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const v = await vctx.newPage();
  await login(v, "viewer1", "viewer-password-1");
  await v.goto(hub.url + "/#/alerts");
  await v.waitForSelector("h1");
  assert.equal(await v.locator("#new-silence, button.ack").count(), 0, "no write buttons for a viewer");
  const status = await v.evaluate(async () => {
    const me = await (await fetch("/api/v1/auth/me")).json();
    return (await fetch("/api/v1/silences", { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf },
      body: JSON.stringify({ matchers: [{ label: "site", value: "x" }], duration_s: 60, created_by: "v" }) })).status;
  });
  assert.equal(status, 403);
  await vctx.close();
});

test("screenshots of the fleet, node and alerts views at desktop and phone widths", async () => {
  mkdirSync(SHOTS, { recursive: true });
  for (const [name, width, height] of [["desktop", 1280, 860], ["phone", 375, 812]]) {
    const sctx = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1, colorScheme: "light",
      storageState: await signedIn() });
    const p = await sctx.newPage();
    // The node's charts over the minute or so this hub has been running (a custom range).
    const range = `from=${hub.started - 2000}&to=${Date.now() + 2000}`;
    for (const [view, hash, ready] of [["fleet", "#/", "tr[data-key]"], ["node", `#/node/club-1/pi-1?${range}`, 'figure[data-chart="cpu"] svg[data-points]'],
      ["alerts", "#/alerts", "h1"]]) {
      await p.goto(hub.url + "/" + hash);
      await p.waitForSelector(ready);
      await sleep(600);
      const file = join(SHOTS, `${view}-${name}.png`);
      await p.screenshot({ path: file, fullPage: true });
      // The phone view must not scroll sideways.
      if (name === "phone") {
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 1, `${view} view is ${overflow} px wider than a 375 px screen`);
      }
    }
    await sctx.close();
  }
  console.log(`screenshots written to ${SHOTS}`);
});

test("1,000 simulated nodes: time until the fleet view is interactive, and first-load weight (printed)", { timeout: 120000 }, async () => {
  const load = run("loadgen", bin("sitewatch-loadgen"), ["run", "--broker", hub.mqtt, "--agents", "1000", "--sites", "50",
    "--interval-s", "10", "--heartbeat-s", "5", "--keepalive-s", "30", "--warmup-s", "10", "--duration-s", "300"]);
  try {
    await waitFor("1,000 simulated nodes online", 90000, async () =>
      (await apiGet("/api/v1/nodes")).filter((n) => n.site.startsWith("load-") && n.status === "online").length >= 1000, 500);
    // A fresh context: nothing cached, as on a first visit (the session cookie only).
    const fresh = await browser.newContext({ viewport: { width: 1280, height: 800 }, storageState: await signedIn() });
    const p = await fresh.newPage();
    await p.goto(hub.url + "/", { waitUntil: "commit" });
    await p.waitForFunction(() => Number(document.body.dataset.fleetRendered) >= 1000, null, { timeout: 20000 });
    const m = await p.evaluate(() => {
      const mark = performance.getEntriesByName("sw-fleet-rendered")[0];
      const res = performance.getEntriesByType("resource").filter((r) => !r.name.includes("/api/"));
      const nav = performance.getEntriesByType("navigation")[0];
      return {
        rendered: mark.startTime,
        started: performance.getEntriesByName("sw-app-start")[0].startTime,
        received: performance.getEntriesByName("sw-nodes-received")[0]?.startTime ?? NaN,
        assets: res.reduce((s, r) => s + r.encodedBodySize, 0) + nav.encodedBodySize,
        files: res.length + 1,
        nodes: Number(document.body.dataset.fleetRendered),
        rows: document.querySelectorAll("table.nodes tbody tr[data-key]").length,
      };
    });
    // Interactive: measured in the page, from the event to the next painted frame.
    const search = await p.evaluate(async () => {
      const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      const input = document.getElementById("fleet-search");
      const t0 = performance.now();
      input.value = "node-00042";
      input.dispatchEvent(new Event("input"));
      await frame();
      const found = document.querySelectorAll("table.nodes tbody tr[data-key]").length;
      input.value = "";
      input.dispatchEvent(new Event("input"));
      await frame();
      return { ms: performance.now() - t0, found };
    });
    assert.equal(search.found, 1, "the search found node-00042");
    const all = await p.evaluate(async () => {
      const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      const t0 = performance.now();
      document.getElementById("show-all").click();
      await frame();
      return { ms: performance.now() - t0, rows: document.querySelectorAll("table.nodes tbody tr[data-key]").length };
    });
    const list = await (await fetch(hub.url + "/api/v1/nodes", { headers: { Authorization: `Bearer ${hub.token}` } })).text();
    console.log(`fleet view with ${m.nodes} nodes (${m.rows} rows shown first): interactive ` +
      `${Math.round(m.rendered)} ms after navigation start (scripts running at ${Math.round(m.started)} ms, ` +
      `node list received at ${Math.round(m.received)} ms); a search filters them in ${Math.round(search.ms)} ms; ` +
      `"show all" draws ${all.rows} rows in ${Math.round(all.ms)} ms`);
    console.log(`first-load weight: ${(m.assets / 1024).toFixed(1)} KB of HTML/CSS/JS in ${m.files} files ` +
      `(+ ${(list.length / 1024).toFixed(0)} KB node list over the live stream)`);
    assert.ok(m.nodes >= 1000 && all.rows >= 1000);
    assert.ok(m.assets < 200 * 1024, `first-load weight ${m.assets} B`);
    await fresh.close();
  } finally {
    load.kill("SIGKILL");
  }
});
