// Alerts view: active alerts (acknowledge, silence), silences (create, expire) and the
// history. `alertList` is also used by the site and node views.
import { t } from "./public/i18n.js";
import {
  el, href, store, api, canWrite, toast, showError, table, cell, agoEl, dateTime, until, num, section,
} from "./ui.js";

const SEV_RANK = { critical: 0, warning: 1, info: 2 };

function where(a) {
  return el("span", {}, el("a", { href: href("site", a.site) }, a.site),
    a.node ? ["/", el("a", { href: href("node", a.site, a.node) }, a.node)] : null);
}

function what(a) {
  // Labels other than the obvious ones say what the alert is about (mount, check, mac…).
  const extra = Object.entries(a.labels || {}).filter(([k]) => !["rule", "site", "node"].includes(k))
    .map(([k, v]) => k + "=" + v).join(", ");
  return el("div", {},
    el("strong", {}, a.rule),
    extra ? el("span", { class: "muted" }, " (" + extra + ")") : null,
    a.summary ? el("div", { class: "small" }, a.summary) : null,
    a.detail ? el("div", { class: "small muted" }, a.detail) : null,
    a.acked_by ? el("div", { class: "small muted" }, t("alerts.acked_by", { by: a.acked_by })) : null,
    a.silenced_by ? el("div", { class: "small muted" }, t("alerts.silenced")) : null,
    a.inhibited ? el("div", { class: "small muted" }, t("alerts.inhibited")) : null);
}

function value(a) {
  if (a.value == null) return "–";
  return num(a.value, 1) + (a.op && a.threshold != null ? ` (${a.op} ${num(a.threshold, 1)})` : "");
}

/// A table of the active alerts passing `filter`, newest problems first.
export function alertList(filter, opts = {}) {
  const list = store.alerts.alerts.filter((a) => !filter || filter(a))
    .sort((a, b) => (a.state === b.state ? 0 : a.state === "firing" ? -1 : 1)
      || SEV_RANK[a.severity] - SEV_RANK[b.severity] || b.started_ms - a.started_ms);
  if (!list.length) return el("p", { class: "empty" }, t("alerts.none"));
  const cols = [t("alerts.severity"), t("alerts.alert"), t("alerts.where"), t("alerts.value"), t("alerts.since")];
  if (canWrite() && !opts.compact) cols.push(t("alerts.actions"));
  return table(cols, list.map((a) => el("tr", { "data-fingerprint": a.fingerprint, "data-state": a.state },
    cell(t("alerts.severity"), [el("span", { class: "sev " + a.severity }, t("sev." + a.severity)), " ",
      el("span", { class: "state " + a.state }, t("state." + a.state))]),
    cell(t("alerts.alert"), what(a)),
    cell(t("alerts.where"), where(a)),
    cell(t("alerts.value"), value(a), "num"),
    cell(t("alerts.since"), agoEl(a.fired_ms ?? a.started_ms)),
    canWrite() && !opts.compact ? cell(t("alerts.actions"), el("div", { class: "actions" },
      a.acked_by ? null : el("button", { type: "button", class: "ack", onclick: () => ack(a) }, t("alerts.ack")),
      el("button", { type: "button", class: "silence", onclick: () => opts.onSilence && opts.onSilence(a) }, t("alerts.silence")))) : null,
  )));
}

async function ack(a) {
  try {
    await api(`/api/v1/alerts/${encodeURIComponent(a.fingerprint)}/ack`, { method: "POST", body: { by: store.me.user } });
  } catch (e) { showError(e); }
}

const DURATIONS = [["1h", 3600], ["4h", 4 * 3600], ["1d", 86400], ["7d", 7 * 86400]];

/// The form creating a silence; `prefill` are matchers [{label, value}].
function silenceForm(prefill, done) {
  const rows = el("div", { class: "matchers" });
  const addRow = (m = { label: "", value: "" }) => {
    const row = el("div", { class: "matcher" },
      el("input", { class: "m-label", value: m.label, placeholder: t("silence.label"), "aria-label": t("silence.label"), list: "matcher-labels", required: true }),
      el("span", {}, "="),
      el("input", { class: "m-value", value: m.value, placeholder: t("silence.value"), "aria-label": t("silence.value"), required: true }),
      el("button", { type: "button", class: "link", "aria-label": "×", onclick: () => row.remove() }, "×"));
    rows.append(row);
  };
  (prefill.length ? prefill : [{ label: "site", value: "" }]).forEach(addRow);
  const dur = el("select", { name: "duration" }, DURATIONS.map(([k, s]) => el("option", { value: s }, t("dur." + k))));
  dur.value = "3600";
  const comment = el("input", { name: "comment", placeholder: t("silence.comment") });
  const form = el("form", { class: "silence-form card", id: "silence-form" },
    el("h2", {}, t("silence.new")),
    el("datalist", { id: "matcher-labels" }, ["site", "node", "rule", "severity", "kind", "mount", "check", "sensor"].map((v) => el("option", { value: v }))),
    el("p", { class: "muted small" }, t("silence.matchers")), rows,
    el("button", { type: "button", class: "link", onclick: () => addRow() }, "+ " + t("silence.add_matcher")),
    el("div", { class: "form-row" },
      el("label", {}, t("silence.duration") + " ", dur),
      el("label", { class: "grow" }, t("silence.comment") + " ", comment)),
    el("div", { class: "form-row" },
      el("button", { type: "submit", class: "primary" }, t("silence.create")),
      el("button", { type: "button", onclick: () => done(false) }, t("silence.cancel"))));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const matchers = [...rows.querySelectorAll(".matcher")].map((r) => ({
      label: r.querySelector(".m-label").value.trim(), value: r.querySelector(".m-value").value.trim(),
    })).filter((m) => m.label);
    try {
      await api("/api/v1/silences", {
        method: "POST",
        body: { matchers, duration_s: Number(dur.value), created_by: store.me.user, comment: comment.value },
      });
      toast(t("silence.created"));
      done(true);
    } catch (err) { showError(err); }
  });
  return form;
}

function silenceList() {
  const list = store.alerts.silences;
  if (!list.length) return el("p", { class: "empty" }, t("silence.none"));
  const cols = [t("silence.matchers"), t("silence.ends"), t("silence.by"), t("silence.comment")];
  if (canWrite()) cols.push(t("alerts.actions"));
  return table(cols, list.map((s) => el("tr", { "data-silence": s.id },
    cell(t("silence.matchers"), s.matchers.map((m) => el("code", { class: "matcher-chip" }, m.label + "=" + m.value))),
    cell(t("silence.ends"), el("span", { title: dateTime(s.ends_ms) }, until(s.ends_ms))),
    cell(t("silence.by"), s.created_by),
    cell(t("silence.comment"), s.comment || "–"),
    canWrite() ? cell(t("alerts.actions"), el("button", { type: "button", onclick: async () => {
      try { await api(`/api/v1/silences/${encodeURIComponent(s.id)}`, { method: "DELETE" }); toast(t("silence.expired")); }
      catch (e) { showError(e); }
    } }, t("silence.expire"))) : null)));
}

async function history(box) {
  box.replaceChildren(el("p", { class: "muted" }, t("common.loading")));
  try {
    const list = await api("/api/v1/alerts?state=all&limit=300");
    if (!list.length) return box.replaceChildren(el("p", { class: "empty" }, t("alerts.nohistory")));
    box.replaceChildren(table(
      [t("alerts.severity"), t("alerts.alert"), t("alerts.where"), t("alerts.since"), t("alerts.resolved")],
      list.map((a) => el("tr", {},
        cell(t("alerts.severity"), [el("span", { class: "sev " + a.severity }, t("sev." + a.severity)), " ",
          el("span", { class: "state " + a.state }, t("state." + a.state))]),
        cell(t("alerts.alert"), what(a)),
        cell(t("alerts.where"), where(a)),
        cell(t("alerts.since"), dateTime(a.fired_ms ?? a.started_ms)),
        cell(t("alerts.resolved"), a.resolved_ms ? dateTime(a.resolved_ms) : "–")))));
  } catch (e) { box.replaceChildren(el("p", { class: "error" }, t("common.error", { msg: e.message }))); }
}

export function mountAlerts(root, parts) {
  const tab = ["silences", "history"].includes(parts[0]) ? parts[0] : "active";
  const tabs = el("nav", { class: "tabs", "aria-label": t("alerts.title") },
    [["active", "#/alerts"], ["silences", "#/alerts/silences"], ["history", "#/alerts/history"]].map(([k, h]) =>
      el("a", { href: h, class: k === tab ? "active" : null, "aria-current": k === tab ? "page" : null }, t("alerts." + k))));
  const formBox = el("div");
  const body = el("div");
  root.append(el("h1", {}, t("alerts.title")), tabs, formBox, body);
  const openForm = (prefill) => {
    formBox.replaceChildren(silenceForm(prefill, () => formBox.replaceChildren()));
    formBox.querySelector("input")?.focus();
  };
  const fromAlert = (a) => openForm(["site", "node", "rule"].filter((k) => a.labels?.[k] ?? a[k])
    .map((k) => ({ label: k, value: a.labels?.[k] ?? a[k] })).concat(
      Object.entries(a.labels || {}).filter(([k]) => !["site", "node", "rule"].includes(k)).map(([label, value]) => ({ label, value }))));
  const render = () => {
    if (tab === "history") return;
    const newBtn = canWrite() ? el("button", { type: "button", class: "primary", id: "new-silence", onclick: () => openForm([]) }, t("silence.new")) : null;
    body.replaceChildren(
      tab === "active" ? el("div", {}, alertList(null, { onSilence: fromAlert }), el("div", { class: "form-row" }, newBtn))
        : el("div", {}, el("div", { class: "form-row" }, newBtn), silenceList()));
  };
  if (tab === "history") history(body); else render();
  const listener = (kind) => { if (kind === "alerts") render(); };
  store.listeners.add(listener);
  return { unmount() { store.listeners.delete(listener); } };
}
