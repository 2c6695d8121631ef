// Fleet view (every site and node: search, status filter, sort) and site view (its nodes,
// alerts and LAN devices). Rows are built once and updated in place from live deltas.
import { t } from "./public/i18n.js";
import {
  el, href, store, keyOf, sites, siteStatus, firing, badge, agoEl, pct, temp, duration, section,
} from "./ui.js";
import { alertList } from "./alerts.js";
import { deviceList } from "./devices.js";

/// Rows shown before "Show all": problems sort first, so they are always among them.
const ROW_LIMIT = 200;
const STATUS_RANK = { offline: 0, unknown: 1, online: 2 };
const SORTS = {
  status: (a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status] || name(a, b),
  site: name,
  node: (a, b) => a.node.localeCompare(b.node) || a.site.localeCompare(b.site),
  cpu: metric("cpu_pct"), mem: metric("mem_pct"), disk: metric("disk_pct"), temp: metric("temp_c"),
  seen: (a, b) => (b.last_seen_ms ?? 0) - (a.last_seen_ms ?? 0),
};
function name(a, b) { return a.site.localeCompare(b.site) || a.node.localeCompare(b.node); }
function metric(k) {
  return (a, b) => ((b.metrics && b.metrics[k]) ?? -Infinity) - ((a.metrics && a.metrics[k]) ?? -Infinity) || name(a, b);
}

/// The node table, shared by the fleet and site views.
class NodeTable {
  constructor(withSite) {
    this.withSite = withSite;
    this.rows = new Map(); // key → {tr, c: {cells}}
    this.tbody = el("tbody", { onclick: (e) => this.click(e) });
    const cols = [["status", "col.status"], ["node", "col.node"], withSite && ["site", "col.site"],
      [null, "col.hostname"], ["cpu", "col.cpu"], ["mem", "col.memory"], ["disk", "col.disk"],
      ["temp", "col.temp"], [null, "col.uptime"], ["seen", "col.last_seen"]].filter(Boolean);
    const numeric = new Set(["cpu", "mem", "disk", "temp", "col.uptime"]);
    this.head = el("tr", {}, cols.map(([sort, label]) => el("th", { scope: "col", "data-sort": sort, class: numeric.has(sort || label) ? "num" : null },
      sort ? el("button", { type: "button", class: "sort", onclick: () => this.onSort && this.onSort(sort) }, t(label)) : t(label))));
    this.root = el("div", { class: "table-wrap" }, el("table", { class: "rtable nodes" }, el("thead", {}, this.head), this.tbody));
  }

  click(e) {
    if (e.target.closest("a")) return;
    const tr = e.target.closest("tr[data-key]");
    if (tr) location.hash = tr.querySelector("a.node").getAttribute("href");
  }

  row(n) {
    const k = keyOf(n);
    let r = this.rows.get(k);
    if (!r) {
      const c = {
        status: el("td", { "data-label": t("col.status") }),
        node: el("td", { class: "strong", "data-label": t("col.node") }, el("a", { class: "node", href: href("node", n.site, n.node) }, n.node)),
        site: this.withSite ? el("td", { "data-label": t("col.site") }, el("a", { href: href("site", n.site) }, n.site)) : null,
        hostname: el("td", { class: "host", "data-label": t("col.hostname") }),
        cpu: el("td", { class: "num", "data-label": t("col.cpu") }),
        mem: el("td", { class: "num", "data-label": t("col.memory") }),
        disk: el("td", { class: "num", "data-label": t("col.disk") }),
        temp: el("td", { class: "num", "data-label": t("col.temp") }),
        uptime: el("td", { class: "num", "data-label": t("col.uptime") }),
        seen: el("td", { "data-label": t("col.last_seen") }),
      };
      const tr = el("tr", { "data-key": k }, Object.values(c));
      r = { tr, c, status: null };
      this.rows.set(k, r);
    }
    const m = n.metrics || {};
    if (r.status !== n.status) {
      r.c.status.replaceChildren(badge(n.status));
      r.tr.dataset.status = n.status;
      r.status = n.status;
    }
    // Agent-provided: text only.
    r.c.hostname.textContent = n.hostname ?? "–";
    r.c.hostname.title = n.hostname ?? "";
    r.c.cpu.textContent = pct(m.cpu_pct);
    r.c.mem.textContent = pct(m.mem_pct);
    r.c.disk.textContent = pct(m.disk_pct);
    r.c.temp.textContent = temp(m.temp_c);
    r.c.uptime.textContent = duration(m.uptime_s);
    r.c.seen.replaceChildren(agoEl(n.last_seen_ms));
    return r;
  }

  /// Shows `list` in that order, the first `limit` rows only (a table of thousands of
  /// rows costs the browser a long layout on every live update).
  show(list, limit = Infinity) {
    const rows = list.slice(0, limit).map((n) => this.row(n).tr);
    if (list.length > limit) {
      rows.push(el("tr", { class: "more" }, el("td", { colspan: 10 },
        el("button", { type: "button", id: "show-all", onclick: () => this.onMore && this.onMore() }, t("fleet.show_all", { n: list.length })))));
    }
    this.tbody.replaceChildren(...rows);
  }

  drop(k) { this.rows.delete(k); }

  sorted(sort) {
    for (const th of this.head.children) th.setAttribute("aria-sort", th.dataset.sort === sort ? "descending" : "none");
  }
}

function matches(n, q) {
  if (!q) return true;
  return n.site.includes(q) || n.node.includes(q) || (n.hostname || "").toLowerCase().includes(q);
}

function siteCard(site, list, alerts) {
  const st = siteStatus(list);
  const online = list.filter((n) => n.status === "online").length;
  return el("a", { class: "site-card " + st, href: href("site", site), "data-site": site },
    el("span", { class: "site-name" }, site),
    badge(st),
    el("span", { class: "muted" }, t("fleet.online_of", { online, total: list.length })),
    alerts ? el("span", { class: "alert-pill" }, t(alerts === 1 ? "fleet.alert_1" : "fleet.alerts_n", { n: alerts })) : null);
}

export function mountFleet(root, _parts, query) {
  const state = {
    q: (query.get("q") || "").toLowerCase(),
    status: query.get("status") || "all",
    sort: SORTS[query.get("sort")] ? query.get("sort") : "status",
    limit: ROW_LIMIT,
  };
  const table = new NodeTable(true);
  const summary = el("p", { class: "summary", "aria-live": "polite" });
  const search = el("input", { type: "search", id: "fleet-search", value: state.q, placeholder: t("fleet.search"), "aria-label": t("fleet.search") });
  const status = el("select", { id: "fleet-status", "aria-label": t("fleet.filter") },
    ["all", "problems", "online", "offline", "unknown"].map((s) => el("option", { value: s }, t("status." + s))));
  status.value = state.status;
  const sort = el("select", { id: "fleet-sort", "aria-label": t("fleet.sort") },
    Object.keys(SORTS).map((s) => el("option", { value: s }, t({ status: "col.status", site: "col.site", node: "col.node", cpu: "col.cpu", mem: "col.memory", disk: "col.disk", temp: "col.temp", seen: "col.last_seen" }[s]))));
  sort.value = state.sort;
  const grid = el("div", { class: "site-grid" });
  const shown = el("p", { class: "muted small" });
  const empty = el("p", { class: "empty", hidden: true });
  root.append(
    el("div", { class: "toolbar" }, search,
      el("label", {}, el("span", { class: "sr-only" }, t("fleet.filter")), status),
      el("label", {}, el("span", { class: "muted" }, t("fleet.sort") + " "), sort)),
    summary,
    el("h2", {}, t("fleet.sites")), grid,
    el("h2", {}, t("fleet.nodes")), shown, empty, table.root);

  const firingBySite = () => {
    const m = new Map();
    for (const a of firing()) m.set(a.site, (m.get(a.site) || 0) + 1);
    return m;
  };
  const problem = (n, fs) => n.status !== "online" || fs.has(n.site + "/" + n.node);
  let rendered = false;

  function apply() {
    const fsNodes = new Set(firing().filter((a) => a.node).map((a) => a.site + "/" + a.node));
    const all = [...store.nodes.values()];
    const keep = all.filter((n) => matches(n, state.q) && (state.status === "all"
      || (state.status === "problems" ? problem(n, fsNodes) : n.status === state.status)));
    keep.sort(SORTS[state.sort]);
    table.show(keep, state.limit);
    table.sorted(state.sort);
    shown.textContent = t("fleet.shown", { shown: keep.length, total: all.length });
    empty.hidden = keep.length > 0;
    empty.textContent = all.length ? t("fleet.nomatch") : t("fleet.empty");
    cards(new Set(keep.map((n) => n.site)));
    if (!rendered && all.length) {
      rendered = true;
      performance.mark("sw-fleet-rendered");
      document.body.dataset.fleetRendered = String(all.length);
    }
  }

  function cards(visibleSites) {
    const by = sites();
    const fa = firingBySite();
    const rank = { offline: 0, degraded: 1, unknown: 2, online: 3 };
    const list = [...by.entries()].filter(([s]) => visibleSites.has(s) || (state.q && s.includes(state.q)))
      .map(([s, l]) => [s, l, siteStatus(l)])
      .sort((a, b) => rank[a[2]] - rank[b[2]] || a[0].localeCompare(b[0]));
    grid.replaceChildren(...list.map(([s, l]) => siteCard(s, l, fa.get(s) || 0)));
    const online = [...store.nodes.values()].filter((n) => n.status === "online").length;
    summary.textContent = t("fleet.summary", { sites: by.size, online, nodes: store.nodes.size, firing: firing().length });
  }

  function remember() {
    const p = new URLSearchParams();
    if (state.q) p.set("q", state.q);
    if (state.status !== "all") p.set("status", state.status);
    if (state.sort !== "status") p.set("sort", state.sort);
    const s = p.toString();
    history.replaceState(null, "", "#/" + (s ? "?" + s : ""));
  }

  let pending = 0;
  const soon = () => { if (!pending) pending = requestAnimationFrame(() => { pending = 0; apply(); }); };
  search.addEventListener("input", () => { state.q = search.value.trim().toLowerCase(); remember(); apply(); });
  status.addEventListener("change", () => { state.status = status.value; remember(); apply(); });
  sort.addEventListener("change", () => { state.sort = sort.value; remember(); apply(); });
  table.onMore = () => { state.limit = Infinity; apply(); };
  table.onSort = (s) => { state.sort = s; sort.value = s; remember(); apply(); };

  const listener = (kind, keys) => {
    if (kind === "alerts") return soon();
    if (kind !== "nodes") return;
    if (!keys) return soon();
    // In place: cells of changed rows; a new order only when membership or status moved.
    let reorder = false;
    for (const k of keys) {
      const n = store.nodes.get(k);
      const r = table.rows.get(k);
      if (!n) { table.drop(k); reorder = true; continue; }
      if (!r || r.status !== n.status) reorder = true;
      if (r) table.row(n);
    }
    if (reorder || state.status === "problems") soon();
    else cards(new Set([...table.rows.keys()].filter((k) => matches(store.nodes.get(k) || { site: "", node: "" }, state.q)).map((k) => k.split("/")[0])));
  };
  store.listeners.add(listener);
  apply();
  return { unmount() { store.listeners.delete(listener); if (pending) cancelAnimationFrame(pending); } };
}

export function mountSite(root, parts) {
  const site = parts[0] || "";
  const table = new NodeTable(false);
  const head = el("div", { class: "view-head" });
  const alertsBox = el("div");
  root.append(head,
    section(t("site.nodes"), table.root),
    section(t("site.alerts"), alertsBox),
    section(t("site.devices"), deviceList(site)));

  function apply() {
    const list = [...store.nodes.values()].filter((n) => n.site === site).sort(SORTS.status);
    const st = list.length ? siteStatus(list) : "unknown";
    const online = list.filter((n) => n.status === "online").length;
    head.replaceChildren(
      el("a", { class: "back", href: "#/" }, "← " + t("nav.fleet")),
      el("h1", {}, t("site.title", { site }), " ", badge(st)),
      el("p", { class: "muted" }, list.length ? t("fleet.online_of", { online, total: list.length }) : t("site.unknown", { site })));
    table.show(list);
    alertsBox.replaceChildren(alertList((a) => a.site === site, { compact: true }));
  }
  const listener = (kind) => { if (kind === "nodes" || kind === "alerts") apply(); };
  store.listeners.add(listener);
  apply();
  return { unmount() { store.listeners.delete(listener); } };
}
