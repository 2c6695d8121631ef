// LAN device inventory of a site: what the agents' scans found, named and marked known by
// an admin (PATCH /api/v1/sites/{site}/devices/{key}).
import { t } from "./public/i18n.js";
import { el, href, store, sites, api, canWrite, toast, showError, table, cell, agoEl, badge, num } from "./ui.js";

function deviceRow(site, d, reload) {
  const name = el("input", { class: "dev-name", value: d.name || "", placeholder: d.hostname || d.vendor || "", "aria-label": t("devices.name"), maxlength: 100, disabled: !canWrite() });
  const known = el("input", { type: "checkbox", class: "dev-known", checked: d.known, "aria-label": t("devices.known"), disabled: !canWrite() });
  const save = async (patch) => {
    try {
      await api(`/api/v1/sites/${encodeURIComponent(site)}/devices/${encodeURIComponent(d.key)}`, { method: "PATCH", body: patch });
      toast(t("devices.saved"));
      reload();
    } catch (e) { showError(e); }
  };
  const form = el("form", { class: "inline" }, name,
    canWrite() ? el("button", { type: "submit" }, t("devices.save")) : null);
  form.addEventListener("submit", (e) => { e.preventDefault(); save({ name: name.value.trim() }); });
  known.addEventListener("change", () => save({ known: known.checked }));
  return el("tr", { "data-device": d.key, class: d.known ? "known" : "unknown-device" },
    cell(t("devices.name"), form),
    cell(t("col.hostname"), d.hostname || "–"),
    cell(t("devices.ip"), el("code", {}, d.ip)),
    cell(t("devices.mac"), d.mac ? el("code", {}, d.mac) : "–"),
    cell(t("devices.vendor"), d.vendor || "–"),
    cell(t("devices.known"), known),
    cell(t("devices.present"), badge(d.present ? "online" : "offline", t(d.present ? "devices.here" : "devices.gone"))),
    cell(t("col.last_seen"), agoEl(d.last_seen_ms)),
    cell(t("devices.seen_by"), el("a", { href: href("node", site, d.seen_by) }, d.seen_by)),
    cell(t("devices.ports"), d.open_ports && d.open_ports.length ? d.open_ports.join(", ") : "–"),
    cell("RTT", d.rtt_ms == null ? "–" : num(d.rtt_ms, 1) + " ms", "num"));
}

/// The device table of one site, loaded now; `opts.unknownOnly` filters.
export function deviceList(site, opts = {}) {
  const box = el("div", { class: "devices" }, el("p", { class: "muted" }, t("common.loading")));
  const load = async () => {
    try {
      let list = await api(`/api/v1/sites/${encodeURIComponent(site)}/devices`);
      if (opts.unknownOnly) list = list.filter((d) => !d.known);
      list.sort((a, b) => Number(b.present) - Number(a.present) || Number(a.known) - Number(b.known) || a.ip.localeCompare(b.ip, undefined, { numeric: true }));
      box.replaceChildren(list.length ? table(
        [t("devices.name"), t("col.hostname"), t("devices.ip"), t("devices.mac"), t("devices.vendor"), t("devices.known"),
          t("devices.present"), t("col.last_seen"), t("devices.seen_by"), t("devices.ports"), "RTT"],
        list.map((d) => deviceRow(site, d, load)), { class: "devices" }) : el("p", { class: "empty" }, t("devices.none")));
    } catch (e) { box.replaceChildren(el("p", { class: "error" }, t("common.error", { msg: e.message }))); }
  };
  load();
  return box;
}

export function mountDevices(root, parts, query) {
  const known = [...sites().keys()].sort();
  const site = parts[0] || known[0] || "";
  const unknownOnly = query.get("unknown") === "1";
  const select = el("select", { id: "device-site", "aria-label": t("devices.site") }, known.map((s) => el("option", { value: s }, s)));
  select.value = site;
  const only = el("input", { type: "checkbox", checked: unknownOnly });
  const go = () => { location.hash = href("devices", select.value) + (only.checked ? "?unknown=1" : ""); };
  select.addEventListener("change", go);
  only.addEventListener("change", go);
  root.append(el("h1", {}, t("devices.title")),
    el("div", { class: "toolbar" }, el("label", {}, t("devices.site") + " ", select), el("label", {}, only, " " + t("devices.unknown_only"))),
    site ? deviceList(site, { unknownOnly }) : el("p", { class: "empty" }, t("devices.nosite")));
  // The site list arrives with the first live event when the page opens here.
  if (!known.length) {
    const listener = (kind) => { if (kind === "nodes" && store.nodes.size) { store.listeners.delete(listener); root.replaceChildren(); mountDevices(root, parts, query); } };
    store.listeners.add(listener);
    return { unmount() { store.listeners.delete(listener); } };
  }
  return null;
}
