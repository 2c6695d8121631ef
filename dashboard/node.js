// Node view: live status and key values, history charts (1 h, 24 h, 7 d, 30 d, custom)
// that grow with new samples, checks and services, its alerts, and its `info`.
import { t } from "./public/i18n.js";
import {
  el, href, store, api, badge, agoEl, pct, temp, bytes, bps, num, duration, dateTime, section, table, cell, showError,
} from "./ui.js";
import { LineChart } from "./chart.js";
import { alertList } from "./alerts.js";

const RANGES = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
const ms = (v) => (v == null ? "–" : num(v, 1) + " ms");
const dbm = (v) => (v == null ? "–" : num(v, 0) + " dBm");
const axisPct = (v) => num(v, 0) + " %";

// What is charted when the node has the series; `live` reads a value from a full sample.
const CHARTS = [
  { id: "cpu", metrics: ["cpu.usage_pct"], title: "chart.cpu", fmt: pct, axis: axisPct, yMin: 0, yMax: 100, live: (s) => [["", s.cpu?.usage_pct]] },
  { id: "memory", metrics: ["memory.used_pct"], title: "chart.memory", fmt: pct, axis: axisPct, yMin: 0, yMax: 100, live: (s) => [["", s.memory?.used_pct]] },
  { id: "disk", metrics: ["fs.used_pct"], title: "chart.disk", fmt: pct, axis: axisPct, yMin: 0, yMax: 100, live: (s) => (s.filesystems || []).map((f) => [f.mount, f.used_pct]) },
  { id: "temp", metrics: ["temp_c"], title: "chart.temp", fmt: temp, axis: (v) => num(v, 0) + " °C", live: (s) => (s.temperatures || []).map((x) => [x.label, x.temp_c]) },
  { id: "load", metrics: ["cpu.load_1"], title: "chart.load", fmt: (v) => num(v, 2), axis: (v) => num(v, 1), yMin: 0, live: (s) => [["", s.cpu?.load_1]] },
  { id: "net", metrics: ["net.rx_bps", "net.tx_bps"], title: "chart.net", fmt: bps, axis: bps, yMin: 0,
    live: (s) => (s.network || []).flatMap((n) => [[n.name + " ↓", n.rx_bps], [n.name + " ↑", n.tx_bps]]) },
  { id: "probe", metrics: ["probe.rtt_avg_ms"], title: "chart.probe", fmt: ms, axis: (v) => num(v, 0) + " ms", yMin: 0, live: (s) => (s.probes || []).map((p) => [p.target, p.rtt_avg_ms]) },
  { id: "wifi", metrics: ["wifi.signal_dbm"], title: "chart.wifi", fmt: dbm, axis: dbm, live: (s) => (s.wifi || []).map((w) => [w.interface, w.signal_dbm]) },
];

/// "mount=/boot,x=a\,b" → ["/boot", "a,b"] (values only, escapes undone).
function labelValues(labels) {
  if (!labels) return "";
  const out = [];
  let cur = "", esc = false;
  for (const ch of labels + ",") {
    if (esc) { cur += ch; esc = false; } else if (ch === "\\") esc = true;
    else if (ch === ",") { out.push(cur.slice(cur.indexOf("=") + 1)); cur = ""; } else cur += ch;
  }
  return out.join(" ");
}

function tile(label, value, sub) {
  return el("div", { class: "tile" }, el("span", { class: "tile-label" }, label),
    el("span", { class: "tile-value" }, value), sub ? el("span", { class: "tile-sub muted" }, sub) : null);
}

export function mountNode(root, parts, query) {
  const [site = "", node = ""] = parts;
  const key = site + "/" + node;
  const rangeKey = RANGES[query.get("range")] ? query.get("range") : query.get("from") ? "custom" : "24h";
  const custom = rangeKey === "custom";
  const now = Date.now();
  const from = custom ? Number(query.get("from")) : now - RANGES[rangeKey];
  const to = custom ? Number(query.get("to") || now) : now;
  const windowMs = to - from;

  const head = el("div", { class: "view-head" });
  const tiles = el("div", { class: "tiles", "aria-live": "off" });
  const charts = el("div", { class: "charts" });
  const checks = el("div");
  const alerts = el("div");
  const info = el("div");
  const rangeBar = el("div", { class: "range-bar", role: "group", "aria-label": t("node.history") },
    Object.keys(RANGES).map((r) => el("a", { class: "btn" + (r === rangeKey ? " active" : ""), "aria-current": r === rangeKey ? "true" : null, href: href("node", site, node) + "?range=" + r }, r)));
  const fromIn = el("input", { type: "datetime-local", "aria-label": t("range.from"), value: localInput(from) });
  const toIn = el("input", { type: "datetime-local", "aria-label": t("range.to"), value: localInput(to) });
  const customForm = el("form", { class: "custom-range" + (custom ? " active" : "") },
    el("span", {}, t("range.custom") + ":"), fromIn, toIn, el("button", { type: "submit" }, t("range.apply")));
  customForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = Date.parse(fromIn.value), tt = Date.parse(toIn.value);
    if (isFinite(f) && isFinite(tt) && f < tt) location.hash = href("node", site, node) + `?from=${f}&to=${tt}`;
  });
  const exportLink = el("a", { class: "btn", download: "", href: `/api/v1/nodes/${encodeURIComponent(site)}/${encodeURIComponent(node)}/export?format=csv&from=${Math.round(from)}&to=${Math.round(to)}` }, t("node.export"));
  root.append(head, section(t("node.live"), tiles),
    el("section", { class: "card" }, el("h2", {}, t("node.history")), el("div", { class: "toolbar" }, rangeBar, customForm, exportLink), charts),
    section(t("node.checks"), checks), section(t("node.alerts"), alerts), section(t("node.info"), info));

  let detail = null;
  const live = []; // [{def, chart, step}]

  function renderHead() {
    const n = store.nodes.get(key);
    const status = n ? n.status : detail ? detail.status : "unknown";
    head.replaceChildren(
      el("a", { class: "back", href: href("site", site) }, "← " + t("node.back", { site })),
      el("h1", {}, node, " ", badge(status)),
      el("p", { class: "muted" },
        el("span", { class: "hostname" }, (n && n.hostname) || detail?.info?.hostname || ""), " · ",
        t("node.since", { when: dateTime(n ? n.status_since_ms : detail?.status_since_ms) }), " · ",
        t("node.seen", { when: "" }), agoEl(n ? n.last_seen_ms : detail?.last_seen_ms)));
  }

  function renderTiles(s) {
    if (!s) return tiles.replaceChildren(el("p", { class: "muted" }, "–"));
    const fs = (s.filesystems || []).reduce((a, f) => (!a || f.used_pct > a.used_pct ? f : a), null);
    const hot = (s.temperatures || []).reduce((a, x) => (!a || x.temp_c > a.temp_c ? x : a), null);
    tiles.replaceChildren(
      tile(t("col.cpu"), pct(s.cpu?.usage_pct), s.cpu?.freq_mhz ? num(s.cpu.freq_mhz, 0) + " MHz" : null),
      tile(t("col.memory"), pct(s.memory?.used_pct), s.memory ? bytes(s.memory.used_bytes) + " / " + bytes(s.memory.total_bytes) : null),
      tile(t("col.disk"), pct(fs?.used_pct), fs ? fs.mount + " · " + bytes(fs.available_bytes) : null),
      tile(t("col.temp"), temp(hot?.temp_c), hot?.label),
      tile(t("node.load"), num(s.cpu?.load_1, 2), s.cpu ? num(s.cpu.load_5, 2) + " · " + num(s.cpu.load_15, 2) : null),
      tile(t("col.uptime"), duration(s.uptime_s), dateTime(s.ts)));
  }

  function renderChecks(s) {
    const list = (s && s.checks) || [];
    if (!list.length) return checks.replaceChildren(el("p", { class: "muted" }, t("node.nochecks")));
    checks.replaceChildren(table([t("check.name"), t("check.kind"), t("check.state"), t("check.latency"), t("check.detail")],
      list.map((c) => el("tr", { class: c.ok ? "" : "bad" },
        cell(t("check.name"), el("strong", {}, c.name)),
        cell(t("check.kind"), c.kind),
        cell(t("check.state"), badge(c.ok ? "online" : "offline", c.state || (c.ok ? "ok" : "failed"))),
        cell(t("check.latency"), ms(c.latency_ms), "num"),
        cell(t("check.detail"), c.detail || "–")))));
  }

  function renderInfo() {
    const i = detail?.info;
    if (!i) return info.replaceChildren(el("p", { class: "muted" }, "–"));
    const rows = [
      ["info.hostname", i.hostname], ["info.os", i.os], ["info.kernel", i.kernel], ["info.arch", i.arch],
      ["info.board_model", i.board_model], ["info.agent_version", i.agent_version],
      ["info.ips", (i.ips || []).join(", ")], ["info.macs", (i.macs || []).join(", ")],
      ["info.boot_time_ms", i.boot_time_ms ? dateTime(i.boot_time_ms) : null],
      ["info.intervals", i.heartbeat_interval_s != null ? `${i.heartbeat_interval_s} s / ${i.metrics_interval_s} s` : null],
      ["info.serial", i.serial], ["info.machine_id", i.machine_id],
      ["info.first_seen", detail.first_seen_ms ? dateTime(detail.first_seen_ms) : null],
    ].filter(([, v]) => v != null && v !== "");
    info.replaceChildren(el("dl", { class: "info" }, rows.flatMap(([k, v]) => [el("dt", {}, t(k)), el("dd", {}, String(v))])));
  }

  const renderAlerts = () => alerts.replaceChildren(alertList((a) => a.site === site && a.node === node, { compact: true }));

  async function loadCharts() {
    const have = new Set((detail.series || []).map((s) => s.metric));
    const defs = CHARTS.filter((d) => d.metrics.some((m) => have.has(m)));
    if (!defs.length) return charts.replaceChildren(el("p", { class: "muted" }, t("node.nodata")));
    charts.replaceChildren();
    const base = `/api/v1/nodes/${encodeURIComponent(site)}/${encodeURIComponent(node)}/series`;
    // The last hour at full resolution (raw samples; 3,600 at a 1 s interval), longer
    // ranges bucketed to about one point per 2 px.
    const maxPoints = windowMs <= RANGES["1h"] ? 3600 : 720;
    await Promise.all(defs.map(async (def) => {
      const chart = new LineChart({ title: t(def.title), format: (v, axis) => (axis ? def.axis(v) : def.fmt(v)), yMin: def.yMin, yMax: def.yMax });
      chart.root.dataset.chart = def.id;
      charts.append(chart.root);
      try {
        const answers = await Promise.all(def.metrics.filter((m) => have.has(m)).map((m) =>
          api(`${base}?metric=${encodeURIComponent(m)}&from=${Math.round(from)}&to=${Math.round(to)}&max_points=${maxPoints}`)));
        const series = answers.flatMap((a) => a.series.map((s) => ({
          label: labelValues(s.labels) + (a.metric === "net.rx_bps" ? " ↓" : a.metric === "net.tx_bps" ? " ↑" : ""),
          points: s.points,
        })));
        const step = Math.max(...answers.map((a) => a.step_ms));
        chart.set(series, from, to, step);
        chart.root.dataset.tier = answers[0]?.tier || "";
        live.push({ def, chart, step });
      } catch (e) { chart.root.append(el("p", { class: "error" }, e.message)); }
    }));
  }

  // New samples: the charts of a relative range slide forward, one point per bucket.
  function pushLive(s) {
    if (custom || !s) return;
    for (const { def, chart, step } of live) {
      for (const [label, v] of def.live(s)) {
        if (v == null || !isFinite(v)) continue;
        const ser = chart.series.find((x) => x.label === label.trim()) || (chart.series.length === 1 && !label ? chart.series[0] : null);
        const last = ser && ser.points[ser.points.length - 1];
        if (last && s.ts < last[0] + step) continue;
        chart.push(ser ? ser.label : label.trim(), s.ts, v, windowMs);
      }
    }
  }

  let lastTs = 0, fetching = false, stopped = false;
  async function refresh() {
    if (fetching || stopped) return;
    fetching = true;
    try {
      const d = await api(`/api/v1/nodes/${encodeURIComponent(site)}/${encodeURIComponent(node)}`);
      if (stopped) return;
      detail = d;
      renderHead();
      renderTiles(d.latest);
      renderChecks(d.latest);
      renderInfo();
      pushLive(d.latest);
    } catch (e) { if (e.status !== 404) showError(e); } finally { fetching = false; }
  }

  (async () => {
    try {
      detail = await api(`/api/v1/nodes/${encodeURIComponent(site)}/${encodeURIComponent(node)}`);
    } catch (e) {
      root.replaceChildren(el("p", { class: "empty" }, e.status === 404 ? t("node.unknown", { site, node }) : t("common.error", { msg: e.message })));
      return;
    }
    lastTs = detail.latest?.ts || 0;
    renderHead(); renderTiles(detail.latest); renderChecks(detail.latest); renderInfo(); renderAlerts();
    await loadCharts();
    document.body.dataset.nodeCharts = String(live.length);
  })();

  const listener = (kind, keys) => {
    if (kind === "alerts") return renderAlerts();
    if (kind !== "nodes" || (keys && !keys.has(key))) return;
    renderHead();
    const n = store.nodes.get(key);
    const ts = n?.metrics?.ts || 0;
    if (detail && ts > lastTs) { lastTs = ts; refresh(); }
  };
  store.listeners.add(listener);
  return { unmount() { stopped = true; store.listeners.delete(listener); for (const l of live) l.chart.destroy(); } };
}

function localInput(msv) {
  const d = new Date(msv - new Date(msv).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}
