// sitewatch dashboard: the shell (header, hash router, live connection). Views live in
// fleet.js (fleet and site), node.js, alerts.js, devices.js and settings.js.
import { t, lang, setLang, applyStatic } from "./public/i18n.js";
import { el, store, emit, keyOf, api, refreshAges, firing, showError } from "./ui.js";
import { mountFleet, mountSite } from "./fleet.js";
import { mountNode } from "./node.js";
import { mountAlerts } from "./alerts.js";
import { mountDevices } from "./devices.js";
import { mountSettings } from "./settings.js";

const main = document.getElementById("view");
const liveEl = document.getElementById("live");
let current = null;

/// "#/node/club/pi?range=24h" → {parts: ["node","club","pi"], query: URLSearchParams}
export function route() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, q] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  return { parts, query: new URLSearchParams(q || "") };
}

const VIEWS = {
  "": mountFleet, site: mountSite, node: mountNode, alerts: mountAlerts,
  devices: mountDevices, settings: mountSettings,
};

function render() {
  const { parts, query } = route();
  const mount = VIEWS[parts[0] || ""] || mountFleet;
  if (current && current.unmount) current.unmount();
  main.replaceChildren();
  current = mount(main, parts.slice(1), query) || null;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", (a.getAttribute("href").slice(2) || "") === (parts[0] || ""));
  }
  main.focus({ preventScroll: true });
}

function updateHeader() {
  const n = firing().length;
  const b = document.getElementById("alert-count");
  b.textContent = n ? String(n) : "";
  b.hidden = !n;
  document.title = (n ? `(${n}) ` : "") + "sitewatch";
}

function setLive(ok) {
  store.live = ok;
  liveEl.textContent = t(ok ? "live.on" : "live.off");
  liveEl.className = "live " + (ok ? "on" : "off");
}

function connect() {
  const es = new EventSource("/api/v1/events?delta=true&alerts=true");
  es.addEventListener("open", () => setLive(true));
  es.addEventListener("nodes", (ev) => {
    if (!store.nodes.size) performance.mark("sw-nodes-received");
    setLive(true);
    store.nodes = new Map(JSON.parse(ev.data).map((n) => [keyOf(n), n]));
    emit("nodes", null);
  });
  es.addEventListener("nodes-delta", (ev) => {
    const d = JSON.parse(ev.data);
    const keys = new Set();
    for (const n of d.changed) { const k = keyOf(n); store.nodes.set(k, n); keys.add(k); }
    for (const [s, n] of d.removed) { const k = s + "/" + n; store.nodes.delete(k); keys.add(k); }
    emit("nodes", keys);
  });
  es.addEventListener("alerts", (ev) => {
    store.alerts = JSON.parse(ev.data);
    updateHeader();
    emit("alerts");
  });
  es.onerror = () => {
    setLive(false);
    // A closed stream after a logout or a hub restart: check the session, then retry.
    if (es.readyState === EventSource.CLOSED) {
      setTimeout(() => api("/api/v1/auth/me").then(connect, () => setTimeout(connect, 3000)), 1000);
    }
  };
}

function header() {
  const me = store.me;
  const langBtn = document.getElementById("lang");
  langBtn.textContent = t("lang.code");
  langBtn.title = t("lang.switch");
  const user = document.getElementById("user");
  user.replaceChildren();
  if (me && me.via === "session") {
    user.append(el("span", { class: "who", title: me.role }, me.user),
      el("button", { class: "link", type: "button", onclick: logout }, t("logout")));
  }
  applyStatic(document.querySelector("header"));
  setLive(store.live);
  updateHeader();
}

async function logout() {
  try { await api("/api/v1/auth/logout", { method: "POST" }); } catch (e) { showError(e); }
  location.assign("/login");
}

document.getElementById("lang").addEventListener("click", () => {
  setLang(lang === "fr" ? "en" : "fr");
  header();
  render();
});

// Keep "3 min ago" fresh.
setInterval(() => refreshAges(main), 1000);

async function start() {
  performance.mark("sw-app-start");
  // The live stream and the identity are fetched together: the fleet shows sooner.
  connect();
  try {
    store.me = await api("/api/v1/auth/me");
  } catch (e) {
    if (e.status !== 401) showError(e);
    return;
  }
  header();
  window.addEventListener("hashchange", render);
  render();
}

start();
