// The login page: the only page served without a session. On success the hub sets an
// HttpOnly session cookie; the dashboard opens where the deep link pointed (#…).
import { t, lang, setLang, applyStatic } from "./i18n.js";

const form = document.getElementById("login");
const error = document.getElementById("error");
const langBtn = document.getElementById("lang");
const target = () => "/" + (location.hash || "");

function labels() {
  applyStatic();
  langBtn.textContent = t("lang.code");
  langBtn.title = t("lang.switch");
}

langBtn.addEventListener("click", () => { setLang(lang === "fr" ? "en" : "fr"); labels(); });

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  error.hidden = true;
  const body = JSON.stringify({ user: form.user.value.trim(), password: form.password.value });
  try {
    const resp = await fetch("/api/v1/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" }, body, credentials: "same-origin",
    });
    if (resp.ok) return location.replace(target());
    const data = await resp.json().catch(() => ({}));
    error.textContent = resp.status === 401 ? t("login.failed") : (data.error || resp.statusText);
  } catch (err) {
    error.textContent = String(err);
  }
  error.hidden = false;
  form.password.select();
});

labels();
// Already signed in (or an open loopback hub): straight to the dashboard.
fetch("/api/v1/auth/me", { credentials: "same-origin" }).then((r) => { if (r.ok) location.replace(target()); }, () => {});
