// sitewatch dashboard: English and French texts, the language and theme remembered per
// browser (localStorage). Public (served before login): it holds no data.

const en = {
  "app.title": "sitewatch",
  "nav.fleet": "Fleet", "nav.alerts": "Alerts", "nav.devices": "Devices", "nav.settings": "Settings",
  "live.on": "live", "live.off": "reconnecting…", "live.title": "live connection to the hub",
  "logout": "Log out", "lang.switch": "Français", "lang.code": "FR",
  "login.title": "Log in to sitewatch", "login.user": "User name", "login.password": "Password",
  "login.submit": "Log in", "login.failed": "Wrong user name or password.",
  "login.hint": "The first admin password is printed once by the hub at its first start.",
  "status.online": "online", "status.offline": "offline", "status.unknown": "unknown", "status.degraded": "degraded",
  "status.all": "all", "status.problems": "problems",
  "fleet.summary": "{sites} sites · {online}/{nodes} nodes online · {firing} firing alerts",
  "fleet.search": "Search site, node, hostname…", "fleet.filter": "Status", "fleet.sort": "Sort by",
  "fleet.sites": "Sites", "fleet.nodes": "Nodes", "fleet.empty": "No node has reported yet.",
  "fleet.nomatch": "No node matches.", "fleet.online_of": "{online}/{total} online",
  "fleet.alerts_n": "{n} alerts", "fleet.alert_1": "1 alert", "fleet.shown": "{shown} of {total} nodes", "fleet.show_all": "Show all {n} nodes",
  "col.status": "Status", "col.node": "Node", "col.site": "Site", "col.hostname": "Hostname", "col.cpu": "CPU",
  "col.memory": "Memory", "col.disk": "Disk", "col.temp": "Temp.", "col.uptime": "Uptime", "col.last_seen": "Last seen",
  "site.title": "Site {site}", "site.nodes": "Nodes", "site.alerts": "Alerts of this site", "site.devices": "LAN devices",
  "site.unknown": "No node of site {site} is known to this hub.",
  "node.back": "Site {site}", "node.since": "since {when}", "node.seen": "last seen {when}",
  "node.live": "Now", "node.history": "History", "node.checks": "Checks and services", "node.info": "Information",
  "node.alerts": "Alerts of this node", "node.nochecks": "No check configured on this agent.",
  "node.unknown": "Node {site}/{node} is unknown to this hub.", "node.export": "Export CSV",
  "node.load": "Load", "node.nodata": "No data in this range.",
  "range.custom": "Custom", "range.from": "From", "range.to": "To", "range.apply": "Show",
  "chart.cpu": "CPU usage", "chart.load": "Load average (1 min)", "chart.memory": "Memory used",
  "chart.disk": "Disk used", "chart.temp": "Temperature", "chart.net": "Network", "chart.probe": "Latency (avg)",
  "chart.wifi": "Wi-Fi signal",
  "info.hostname": "Hostname", "info.os": "OS", "info.kernel": "Kernel", "info.arch": "Architecture",
  "info.board_model": "Board", "info.agent_version": "Agent version", "info.ips": "Addresses", "info.macs": "MAC addresses",
  "info.boot_time_ms": "Booted", "info.serial": "Serial", "info.machine_id": "Machine id",
  "info.intervals": "Intervals (heartbeat / metrics)", "info.first_seen": "First seen",
  "check.name": "Name", "check.kind": "Kind", "check.state": "State", "check.latency": "Latency", "check.detail": "Detail",
  "alerts.title": "Alerts", "alerts.active": "Active", "alerts.silences": "Silences", "alerts.history": "History",
  "alerts.none": "No active alert. All quiet.", "alerts.ack": "Acknowledge", "alerts.silence": "Silence",
  "alerts.acked_by": "acknowledged by {by}", "alerts.silenced": "silenced", "alerts.inhibited": "inhibited (site offline)",
  "alerts.severity": "Severity", "alerts.state": "State", "alerts.alert": "Alert", "alerts.where": "Where",
  "alerts.value": "Value", "alerts.since": "Since", "alerts.resolved": "Resolved", "alerts.actions": "Actions",
  "alerts.nohistory": "No alert in the history.",
  "state.firing": "firing", "state.pending": "pending", "state.resolved": "resolved",
  "sev.critical": "critical", "sev.warning": "warning", "sev.info": "info",
  "silence.new": "New silence", "silence.matchers": "Matchers (every one must match; * is a wildcard)",
  "silence.label": "Label", "silence.value": "Value", "silence.add_matcher": "Add a matcher",
  "silence.duration": "Duration", "silence.comment": "Comment", "silence.create": "Create the silence",
  "silence.cancel": "Cancel", "silence.ends": "Ends", "silence.by": "Created by", "silence.expire": "Expire",
  "silence.none": "No silence in force.", "silence.created": "Silence created.", "silence.expired": "Silence expired.",
  "dur.1h": "1 hour", "dur.4h": "4 hours", "dur.1d": "1 day", "dur.7d": "7 days",
  "devices.title": "LAN devices", "devices.site": "Site", "devices.unknown_only": "Unknown devices only",
  "devices.none": "No device seen on this site's network (LAN scans are off, or none ran yet).",
  "devices.name": "Name", "devices.ip": "IP address", "devices.mac": "MAC", "devices.vendor": "Vendor",
  "devices.known": "Known", "devices.present": "Present", "devices.seen_by": "Seen by", "devices.ports": "Open ports",
  "devices.save": "Save", "devices.saved": "Saved.", "devices.gone": "gone", "devices.here": "present",
  "devices.nosite": "No site yet.",
  "settings.title": "Settings", "settings.language": "Language", "settings.theme": "Theme",
  "theme.system": "Follow the system", "theme.light": "Light", "theme.dark": "Dark",
  "settings.account": "Your account", "settings.signed_as": "Signed in as {user} ({role}).",
  "settings.local": "Open access from this machine (loopback, no login).",
  "settings.password": "Change your password", "settings.current": "Current password", "settings.new": "New password (10 characters or more)",
  "settings.change": "Change", "settings.changed": "Password changed; your other sessions were closed.",
  "settings.users": "Accounts", "settings.add_user": "Add an account", "settings.role": "Role",
  "settings.password_opt": "Password (empty: generate one)", "settings.create": "Create", "settings.delete": "Delete",
  "settings.reset": "New password", "settings.generated": "Password of {user} (shown only once): {password}",
  "settings.tokens": "API tokens", "settings.token_name": "What it is for", "settings.token_new": "Token (shown only once, copy it now):",
  "settings.revoke": "Revoke", "settings.confirm_delete": "Delete {what}?", "settings.created_by": "Created by",
  "role.admin": "admin", "role.viewer": "viewer (read only)",
  "common.never": "never", "common.loading": "Loading…", "common.error": "Error: {msg}", "common.none": "–",
  "common.created": "Created", "common.yes": "yes", "common.no": "no",
  "ago.s": "{n} s ago", "ago.m": "{n} min ago", "ago.h": "{n} h ago", "ago.d": "{n} d ago", "in": "in {d}",
};

const fr = {
  "nav.fleet": "Parc", "nav.alerts": "Alertes", "nav.devices": "Appareils", "nav.settings": "Réglages",
  "live.on": "en direct", "live.off": "reconnexion…", "live.title": "connexion en direct au hub",
  "logout": "Se déconnecter", "lang.switch": "English", "lang.code": "EN",
  "login.title": "Connexion à sitewatch", "login.user": "Nom d'utilisateur", "login.password": "Mot de passe",
  "login.submit": "Se connecter", "login.failed": "Nom d'utilisateur ou mot de passe incorrect.",
  "login.hint": "Le premier mot de passe admin est affiché une seule fois par le hub à son premier démarrage.",
  "status.online": "en ligne", "status.offline": "hors ligne", "status.unknown": "inconnu", "status.degraded": "dégradé",
  "status.all": "tous", "status.problems": "problèmes",
  "fleet.summary": "{sites} sites · {online}/{nodes} nœuds en ligne · {firing} alertes actives",
  "fleet.search": "Chercher un site, un nœud, un nom d'hôte…", "fleet.filter": "État", "fleet.sort": "Trier par",
  "fleet.sites": "Sites", "fleet.nodes": "Nœuds", "fleet.empty": "Aucun nœud ne s'est encore manifesté.",
  "fleet.nomatch": "Aucun nœud ne correspond.", "fleet.online_of": "{online}/{total} en ligne",
  "fleet.alerts_n": "{n} alertes", "fleet.alert_1": "1 alerte", "fleet.shown": "{shown} nœuds sur {total}", "fleet.show_all": "Afficher les {n} nœuds",
  "col.status": "État", "col.node": "Nœud", "col.site": "Site", "col.hostname": "Nom d'hôte", "col.cpu": "CPU",
  "col.memory": "Mémoire", "col.disk": "Disque", "col.temp": "Temp.", "col.uptime": "Allumé depuis", "col.last_seen": "Vu",
  "site.title": "Site {site}", "site.nodes": "Nœuds", "site.alerts": "Alertes du site", "site.devices": "Appareils du réseau local",
  "site.unknown": "Aucun nœud du site {site} n'est connu de ce hub.",
  "node.back": "Site {site}", "node.since": "depuis {when}", "node.seen": "vu {when}",
  "node.live": "Maintenant", "node.history": "Historique", "node.checks": "Vérifications et services", "node.info": "Informations",
  "node.alerts": "Alertes du nœud", "node.nochecks": "Aucune vérification configurée sur cet agent.",
  "node.unknown": "Le nœud {site}/{node} est inconnu de ce hub.", "node.export": "Exporter en CSV",
  "node.load": "Charge", "node.nodata": "Aucune donnée sur cette période.",
  "range.custom": "Personnalisée", "range.from": "Du", "range.to": "Au", "range.apply": "Afficher",
  "chart.cpu": "Utilisation CPU", "chart.load": "Charge moyenne (1 min)", "chart.memory": "Mémoire utilisée",
  "chart.disk": "Disque utilisé", "chart.temp": "Température", "chart.net": "Réseau", "chart.probe": "Latence (moy.)",
  "chart.wifi": "Signal Wi-Fi",
  "info.hostname": "Nom d'hôte", "info.os": "Système", "info.kernel": "Noyau", "info.arch": "Architecture",
  "info.board_model": "Carte", "info.agent_version": "Version de l'agent", "info.ips": "Adresses", "info.macs": "Adresses MAC",
  "info.boot_time_ms": "Démarré le", "info.serial": "Numéro de série", "info.machine_id": "Identifiant machine",
  "info.intervals": "Intervalles (battement / mesures)", "info.first_seen": "Vu la première fois",
  "check.name": "Nom", "check.kind": "Type", "check.state": "État", "check.latency": "Latence", "check.detail": "Détail",
  "alerts.title": "Alertes", "alerts.active": "En cours", "alerts.silences": "Silences", "alerts.history": "Historique",
  "alerts.none": "Aucune alerte en cours. Tout est calme.", "alerts.ack": "Acquitter", "alerts.silence": "Mettre en silence",
  "alerts.acked_by": "acquittée par {by}", "alerts.silenced": "en silence", "alerts.inhibited": "inhibée (site hors ligne)",
  "alerts.severity": "Gravité", "alerts.state": "État", "alerts.alert": "Alerte", "alerts.where": "Où",
  "alerts.value": "Valeur", "alerts.since": "Depuis", "alerts.resolved": "Résolue", "alerts.actions": "Actions",
  "alerts.nohistory": "Aucune alerte dans l'historique.",
  "state.firing": "active", "state.pending": "en attente", "state.resolved": "résolue",
  "sev.critical": "critique", "sev.warning": "avertissement", "sev.info": "info",
  "silence.new": "Nouveau silence", "silence.matchers": "Critères (tous doivent correspondre ; * est un joker)",
  "silence.label": "Étiquette", "silence.value": "Valeur", "silence.add_matcher": "Ajouter un critère",
  "silence.duration": "Durée", "silence.comment": "Commentaire", "silence.create": "Créer le silence",
  "silence.cancel": "Annuler", "silence.ends": "Fin", "silence.by": "Créé par", "silence.expire": "Terminer",
  "silence.none": "Aucun silence en vigueur.", "silence.created": "Silence créé.", "silence.expired": "Silence terminé.",
  "dur.1h": "1 heure", "dur.4h": "4 heures", "dur.1d": "1 jour", "dur.7d": "7 jours",
  "devices.title": "Appareils du réseau local", "devices.site": "Site", "devices.unknown_only": "Appareils inconnus seulement",
  "devices.none": "Aucun appareil vu sur le réseau de ce site (scans désactivés, ou pas encore faits).",
  "devices.name": "Nom", "devices.ip": "Adresse IP", "devices.mac": "MAC", "devices.vendor": "Fabricant",
  "devices.known": "Connu", "devices.present": "Présent", "devices.seen_by": "Vu par", "devices.ports": "Ports ouverts",
  "devices.save": "Enregistrer", "devices.saved": "Enregistré.", "devices.gone": "absent", "devices.here": "présent",
  "devices.nosite": "Aucun site pour l'instant.",
  "settings.title": "Réglages", "settings.language": "Langue", "settings.theme": "Thème",
  "theme.system": "Celui du système", "theme.light": "Clair", "theme.dark": "Sombre",
  "settings.account": "Votre compte", "settings.signed_as": "Connecté en tant que {user} ({role}).",
  "settings.local": "Accès libre depuis cette machine (boucle locale, sans connexion).",
  "settings.password": "Changer de mot de passe", "settings.current": "Mot de passe actuel", "settings.new": "Nouveau mot de passe (10 caractères ou plus)",
  "settings.change": "Changer", "settings.changed": "Mot de passe changé ; vos autres sessions ont été fermées.",
  "settings.users": "Comptes", "settings.add_user": "Ajouter un compte", "settings.role": "Rôle",
  "settings.password_opt": "Mot de passe (vide : en générer un)", "settings.create": "Créer", "settings.delete": "Supprimer",
  "settings.reset": "Nouveau mot de passe", "settings.generated": "Mot de passe de {user} (affiché une seule fois) : {password}",
  "settings.tokens": "Jetons d'API", "settings.token_name": "À quoi il sert", "settings.token_new": "Jeton (affiché une seule fois, copiez-le maintenant) :",
  "settings.revoke": "Révoquer", "settings.confirm_delete": "Supprimer {what} ?", "settings.created_by": "Créé par",
  "role.admin": "admin", "role.viewer": "lecteur (lecture seule)",
  "common.never": "jamais", "common.loading": "Chargement…", "common.error": "Erreur : {msg}",
  "common.created": "Créé le", "common.yes": "oui", "common.no": "non",
  "ago.s": "il y a {n} s", "ago.m": "il y a {n} min", "ago.h": "il y a {n} h", "ago.d": "il y a {n} j", "in": "dans {d}",
};

const DICTS = { en, fr };
const stored = (k) => { try { return localStorage.getItem(k); } catch { return null; } };
const store = (k, v) => { try { localStorage.setItem(k, v); } catch { /* private mode */ } };

export let lang = DICTS[stored("sw-lang")] ? stored("sw-lang")
  : (navigator.language || "en").toLowerCase().startsWith("fr") ? "fr" : "en";

/// Translates `key`, replacing `{name}` with vars.name (as text: callers insert the result
/// with textContent).
export function t(key, vars) {
  let s = DICTS[lang][key] ?? en[key] ?? key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

export function setLang(l) {
  if (!DICTS[l]) return;
  lang = l;
  store("sw-lang", l);
  document.documentElement.lang = l;
}

/// Fills elements marked data-i18n (text), data-i18n-placeholder, data-i18n-title.
export function applyStatic(root = document) {
  for (const e of root.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of root.querySelectorAll("[data-i18n-placeholder]")) e.placeholder = t(e.dataset.i18nPlaceholder);
  for (const e of root.querySelectorAll("[data-i18n-title]")) e.title = t(e.dataset.i18nTitle);
}

/// "system" (default), "light" or "dark"; applied as <html data-theme>.
export function theme() { return stored("sw-theme") || "system"; }
export function setTheme(v) {
  store("sw-theme", v);
  applyTheme();
}
function applyTheme() {
  const v = theme();
  if (v === "light" || v === "dark") document.documentElement.dataset.theme = v;
  else delete document.documentElement.dataset.theme;
}

document.documentElement.lang = lang;
applyTheme();
