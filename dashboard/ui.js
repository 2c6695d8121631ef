// Shared pieces of the dashboard: DOM building (text only: every value from agents goes
// in as a text node or an attribute, never parsed as HTML), the API client (CSRF header on
// writes), the live store fed by Server-Sent Events, and number/time formatting.
import { t, lang } from "./public/i18n.js";

/// el("td", {class: "num", "data-label": "CPU"}, "12 %", childNode, …). Attributes whose
/// name starts with "on" must be functions (listeners); strings become text nodes.
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const c of children.flat()) if (c != null && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

const SVGNS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  setAttrs(e, attrs);
  for (const c of children.flat()) if (c != null) e.append(c instanceof Node ? c : String(c));
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "value") e.value = v;
    else if (k === "checked") e.checked = !!v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
}

/// A link to a dashboard route (hash routing): parts are encoded one by one.
export function href(...parts) {
  return "#/" + parts.map(encodeURIComponent).join("/");
}

// ---- live store ---------------------------------------------------------------------

export const store = {
  me: null,
  /** "site/node" → NodeView */
  nodes: new Map(),
  alerts: { alerts: [], silences: [] },
  live: false,
  listeners: new Set(),
};

export function keyOf(n) { return n.site + "/" + n.node; }

/// kind: "nodes" (changed keys, or null for everything), "alerts", "live".
export function emit(kind, keys) { for (const f of store.listeners) f(kind, keys); }

export function siteStatus(list) {
  let online = 0, unknown = 0;
  for (const n of list) { if (n.status === "online") online++; else if (n.status === "unknown") unknown++; }
  if (online === list.length) return "online";
  if (unknown === list.length) return "unknown";
  return online === 0 ? "offline" : "degraded";
}

export function sites() {
  const by = new Map();
  for (const n of store.nodes.values()) {
    if (!by.has(n.site)) by.set(n.site, []);
    by.get(n.site).push(n);
  }
  return by;
}

export function firing(filter) {
  return store.alerts.alerts.filter((a) => a.state === "firing" && (!filter || filter(a)));
}

// ---- API ----------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && store.me && store.me.csrf) headers["X-CSRF-Token"] = store.me.csrf;
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 401) {
    location.assign("/login" + location.hash);
    throw new ApiError(401, "not logged in");
  }
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, (data && data.error) || resp.statusText);
  return data;
}

export const canWrite = () => store.me && store.me.role === "admin";

// ---- feedback -----------------------------------------------------------------------

export function toast(message, kind = "ok") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = el("div", { class: "toast " + kind, role: kind === "error" ? "alert" : "status" }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

export function showError(err) { toast(t("common.error", { msg: err.message || String(err) }), "error"); }

// ---- formatting ---------------------------------------------------------------------

const dash = "–";
// Intl formatters are costly to build: one per language and option set, reused (a fleet
// of 1,000 nodes formats thousands of values per update).
const formatters = new Map();
function formatter(kind, opts) {
  const k = kind + lang + JSON.stringify(opts);
  let f = formatters.get(k);
  if (!f) {
    f = kind === "n" ? new Intl.NumberFormat(lang, opts) : new Intl.DateTimeFormat(lang, opts);
    formatters.set(k, f);
  }
  return f;
}
export const num = (v, d = 1) => (v == null || !isFinite(v) ? dash : formatter("n", { maximumFractionDigits: d, minimumFractionDigits: d }).format(v));
export const fmtDate = (ms, opts) => formatter("d", opts).format(ms);
export const pct = (v) => (v == null ? dash : num(v) + " %");
export const temp = (v) => (v == null ? dash : num(v) + " °C");

export function bytes(v) {
  if (v == null) return dash;
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return num(v, i ? 1 : 0) + " " + u[i];
}

export function bps(v) {
  if (v == null) return dash;
  const u = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"];
  let x = v * 8, i = 0;
  while (Math.abs(x) >= 1000 && i < u.length - 1) { x /= 1000; i++; }
  return num(x, i ? 1 : 0) + " " + u[i];
}

export function duration(s) {
  if (s == null) return dash;
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  const j = lang === "fr" ? "j" : "d";
  return d > 0 ? `${d} ${j} ${h} h` : h > 0 ? `${h} h ${m} min` : `${m} min`;
}

export function ago(ms) {
  if (ms == null) return t("common.never");
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return t("ago.s", { n: s });
  if (s < 3600) return t("ago.m", { n: Math.round(s / 60) });
  if (s < 86400) return t("ago.h", { n: Math.round(s / 3600) });
  return t("ago.d", { n: Math.round(s / 86400) });
}

export function until(ms) { return t("in", { d: duration(Math.max(0, (ms - Date.now()) / 1000)) }); }

export function dateTime(ms) {
  if (ms == null) return dash;
  return fmtDate(ms, { dateStyle: "short", timeStyle: "medium" });
}

/// A <time> element showing "3 min ago", refreshed by the page's ticker, full date on hover.
export function agoEl(ms) {
  return el("time", { class: "ago", "data-ms": ms ?? "", title: dateTime(ms) }, ago(ms));
}

export function refreshAges(root = document) {
  for (const e of root.querySelectorAll("time.ago")) {
    const ms = e.getAttribute("data-ms");
    const text = ago(ms === "" ? null : Number(ms));
    if (e.textContent !== text) e.textContent = text; // unchanged text costs no layout
  }
}

export function badge(status, text) {
  return el("span", { class: "badge " + status }, text ?? t("status." + status));
}

/// A section with a heading.
export function section(title, ...children) {
  return el("section", { class: "card" }, el("h2", {}, title), ...children);
}

/// A responsive table: on narrow screens each row becomes a card whose cells show their
/// column name (data-label).
export function table(columns, rows, attrs = {}) {
  return el("div", { class: "table-wrap" },
    el("table", { class: "rtable " + (attrs.class || "") },
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c)))),
      el("tbody", {}, rows)));
}

export function cell(label, content, cls) {
  return el("td", { "data-label": label, class: cls }, content);
}
