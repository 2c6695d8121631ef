// Settings: language and theme (this browser), own password, and for admins the accounts
// and API tokens.
import { t, lang, setLang, theme, setTheme } from "./public/i18n.js";
import { el, store, api, canWrite, toast, showError, table, cell, dateTime, section } from "./ui.js";

function field(label, input) { return el("label", { class: "field" }, el("span", {}, label), input); }

function prefs() {
  const l = el("select", { id: "pref-lang" }, el("option", { value: "en" }, "English"), el("option", { value: "fr" }, "Français"));
  l.value = lang;
  l.addEventListener("change", () => { setLang(l.value); location.reload(); });
  const th = el("select", { id: "pref-theme" }, ["system", "light", "dark"].map((v) => el("option", { value: v }, t("theme." + v))));
  th.value = theme();
  th.addEventListener("change", () => setTheme(th.value));
  return el("div", { class: "form-row" }, field(t("settings.language"), l), field(t("settings.theme"), th));
}

function account() {
  const me = store.me;
  if (me.via !== "session") return el("p", { class: "muted" }, me.via === "local" ? t("settings.local") : me.user);
  const cur = el("input", { type: "password", autocomplete: "current-password", required: true });
  const nw = el("input", { type: "password", autocomplete: "new-password", minlength: 10, required: true });
  const form = el("form", { class: "form-row" }, field(t("settings.current"), cur), field(t("settings.new"), nw),
    el("button", { type: "submit" }, t("settings.change")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("/api/v1/auth/password", { method: "POST", body: { current: cur.value, new: nw.value } });
      form.reset();
      toast(t("settings.changed"));
    } catch (err) { showError(err); }
  });
  return el("div", {}, el("p", {}, t("settings.signed_as", { user: me.user, role: t("role." + me.role) })),
    el("h3", {}, t("settings.password")), form);
}

function secretBox(text) {
  return el("p", { class: "secret", role: "status" }, el("code", {}, text));
}

function users() {
  const box = el("div");
  const out = el("div");
  const load = async () => {
    try {
      const list = await api("/api/v1/users");
      box.replaceChildren(table([t("login.user"), t("settings.role"), t("common.created"), t("alerts.actions")],
        list.map((u) => el("tr", { "data-user": u.name },
          cell(t("login.user"), el("strong", {}, u.name)),
          cell(t("settings.role"), t("role." + u.role)),
          cell(t("common.created"), dateTime(u.created_ms)),
          cell(t("alerts.actions"), el("div", { class: "actions" },
            el("button", { type: "button", onclick: async () => {
              try {
                const r = await api(`/api/v1/users/${encodeURIComponent(u.name)}/password`, { method: "POST", body: {} });
                out.replaceChildren(secretBox(t("settings.generated", { user: u.name, password: r.password })));
              } catch (e) { showError(e); }
            } }, t("settings.reset")),
            u.name === store.me.user ? null : el("button", { type: "button", class: "danger", onclick: async () => {
              if (!confirm(t("settings.confirm_delete", { what: u.name }))) return;
              try { await api(`/api/v1/users/${encodeURIComponent(u.name)}`, { method: "DELETE" }); load(); } catch (e) { showError(e); }
            } }, t("settings.delete"))))))));
    } catch (e) { box.replaceChildren(el("p", { class: "error" }, e.message)); }
  };
  const name = el("input", { required: true, pattern: "[A-Za-z0-9_.@-]{1,64}", autocomplete: "off" });
  const role = el("select", {}, el("option", { value: "viewer" }, t("role.viewer")), el("option", { value: "admin" }, t("role.admin")));
  const pass = el("input", { type: "password", autocomplete: "new-password", minlength: 10 });
  const form = el("form", { class: "form-row" }, field(t("login.user"), name), field(t("settings.role"), role),
    field(t("settings.password_opt"), pass), el("button", { type: "submit" }, t("settings.create")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const r = await api("/api/v1/users", { method: "POST", body: { name: name.value, role: role.value, password: pass.value || undefined } });
      out.replaceChildren(r.password ? secretBox(t("settings.generated", { user: r.name, password: r.password })) : "");
      form.reset();
      load();
    } catch (err) { showError(err); }
  });
  load();
  return el("div", {}, box, el("h3", {}, t("settings.add_user")), form, out);
}

function tokens() {
  const box = el("div");
  const out = el("div");
  const load = async () => {
    try {
      const list = await api("/api/v1/tokens");
      box.replaceChildren(list.length ? table(["id", t("settings.token_name"), t("settings.role"), t("settings.created_by"), t("common.created"), t("alerts.actions")],
        list.map((k) => el("tr", {},
          cell("id", el("code", {}, k.id)), cell(t("settings.token_name"), k.name), cell(t("settings.role"), t("role." + k.role)),
          cell(t("settings.created_by"), k.created_by), cell(t("common.created"), dateTime(k.created_ms)),
          cell(t("alerts.actions"), el("button", { type: "button", class: "danger", onclick: async () => {
            if (!confirm(t("settings.confirm_delete", { what: k.name }))) return;
            try { await api(`/api/v1/tokens/${encodeURIComponent(k.id)}`, { method: "DELETE" }); load(); } catch (e) { showError(e); }
          } }, t("settings.revoke")))))) : el("p", { class: "muted" }, "–"));
    } catch (e) { box.replaceChildren(el("p", { class: "error" }, e.message)); }
  };
  const name = el("input", { required: true, maxlength: 100 });
  const role = el("select", {}, el("option", { value: "viewer" }, t("role.viewer")), el("option", { value: "admin" }, t("role.admin")));
  const form = el("form", { class: "form-row" }, field(t("settings.token_name"), name), field(t("settings.role"), role),
    el("button", { type: "submit" }, t("settings.create")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const r = await api("/api/v1/tokens", { method: "POST", body: { name: name.value, role: role.value } });
      out.replaceChildren(el("p", {}, t("settings.token_new")), secretBox(r.token));
      form.reset();
      load();
    } catch (err) { showError(err); }
  });
  load();
  return el("div", {}, box, form, out);
}

export function mountSettings(root) {
  root.append(el("h1", {}, t("settings.title")),
    section(t("settings.language") + " · " + t("settings.theme"), prefs()),
    section(t("settings.account"), account()));
  if (canWrite() && store.me.accounts && store.me.via !== "token") {
    root.append(section(t("settings.users"), users()), section(t("settings.tokens"), tokens()));
  }
  return null;
}
