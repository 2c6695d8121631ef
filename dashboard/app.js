// sitewatch dashboard: fleet view, live over Server-Sent Events (/api/v1/events).
// Every value coming from agents is inserted with textContent, never as HTML.
"use strict";

const sitesEl = document.getElementById("sites");
const liveEl = document.getElementById("live");
const summaryEl = document.getElementById("summary");
let lastNodes = [];

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function ago(ms) {
  if (ms == null) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function pct(v) { return v == null ? "–" : v.toFixed(1) + " %"; }
function temp(v) { return v == null ? "–" : v.toFixed(1) + " °C"; }
function uptime(s) {
  if (s == null) return "–";
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d > 0 ? `${d} d ${h} h` : h > 0 ? `${h} h ${m} min` : `${m} min`;
}

function siteStatus(nodes) {
  const off = nodes.filter(n => n.status === "offline").length;
  if (off === 0) return "online";
  return off === nodes.length ? "offline" : "degraded";
}

function render(nodes) {
  lastNodes = nodes;
  const bySite = new Map();
  for (const n of nodes) {
    if (!bySite.has(n.site)) bySite.set(n.site, []);
    bySite.get(n.site).push(n);
  }
  const online = nodes.filter(n => n.status === "online").length;
  summaryEl.textContent = `${bySite.size} site(s), ${online}/${nodes.length} node(s) online`;
  if (nodes.length === 0) {
    sitesEl.replaceChildren(el("p", { class: "empty" }, "No node has reported yet."));
    return;
  }
  const sections = [];
  for (const [site, list] of bySite) {
    const st = siteStatus(list);
    const rows = list.map(n => {
      const m = n.metrics || {};
      return el("tr", { "data-node": n.node, "data-status": n.status },
        el("td", {}, el("span", { class: "badge " + n.status }, n.status)),
        el("td", { class: "node" }, n.node),
        el("td", {}, n.hostname || "–"),
        el("td", { class: "num" }, pct(m.cpu_pct)),
        el("td", { class: "num" }, pct(m.mem_pct)),
        el("td", { class: "num" }, pct(m.disk_pct)),
        el("td", { class: "num" }, temp(m.temp_c)),
        el("td", { class: "num" }, uptime(m.uptime_s)),
        el("td", { class: "seen", "data-ms": n.last_seen_ms ?? "" }, ago(n.last_seen_ms)));
    });
    sections.push(el("section", { class: "site", "data-site": site },
      el("h2", {}, el("span", { class: "badge " + st }, st), " ", site),
      el("table", {},
        el("thead", {}, el("tr", {}, ...["status", "node", "hostname", "cpu", "memory", "disk", "temp", "uptime", "last seen"].map(h => el("th", {}, h)))),
        el("tbody", {}, ...rows))));
  }
  sitesEl.replaceChildren(...sections);
}

function setLive(ok) {
  liveEl.textContent = ok ? "live" : "reconnecting…";
  liveEl.className = "live " + (ok ? "on" : "off");
}

function connect() {
  const es = new EventSource("/api/v1/events");
  es.addEventListener("nodes", ev => { setLive(true); render(JSON.parse(ev.data)); });
  es.onerror = () => setLive(false); // EventSource reconnects by itself.
}

// Keep "last seen" ages fresh between events.
setInterval(() => {
  for (const td of document.querySelectorAll("td.seen")) {
    const ms = td.getAttribute("data-ms");
    td.textContent = ago(ms === "" ? null : Number(ms));
  }
}, 1000);

connect();
