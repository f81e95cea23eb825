// The dashboard's entry point: theme, tabs, who is signed in, the shared live stream and
// its indicator. Everything else lives in one module per tab.
import { api, auth, setToken, token } from "./api.js";
import { AlertStore, AlertsView } from "./alerts.js";
import { ExplorerView } from "./explorer.js";
import { OverviewView } from "./overview.js";
import { SessionsView } from "./sessions.js";
import { Stream } from "./stream.js";
import { TableView, anomaliesTable, energyTable, eventsTable, modelsTable, slosTable } from "./tables.js";
import { toast, zone } from "./format.js";

// Tunables from the page's query string (docs/dashboard.md), e.g. ?poll_s=2&retry_max_s=5
const query = new URLSearchParams(location.search);
const num = (name, fallback) => (Number(query.get(name)) > 0 ? Number(query.get(name)) : fallback);
const streamOptions = {
  retryMaxMs: num("retry_max_s", 10) * 1000,
  failuresBeforePolling: num("poll_after", 3),
  pollMs: num("poll_s", 5) * 1000,
};

const session = { name: null, role: null, auth: false, get canOperate() { return this.role === "operator" || this.role === "admin"; } };

// -- theme ---------------------------------------------------------------------------
const root = document.documentElement;
const prefersDark = matchMedia("(prefers-color-scheme: dark)");
const isDark = () => (root.dataset.theme ? root.dataset.theme === "dark" : prefersDark.matches);
const views = [];
function retheme() { for (const v of views) if (v.retheme) v.retheme(); }
document.getElementById("theme-btn").addEventListener("click", () => {
  root.dataset.theme = isDark() ? "light" : "dark";
  try { localStorage.setItem("seismo.theme", root.dataset.theme); } catch { /* private mode */ }
  document.getElementById("theme-btn").setAttribute("aria-pressed", String(isDark()));
  retheme();
});
prefersDark.addEventListener("change", () => { if (!root.dataset.theme) retheme(); });

// -- stream and its indicator --------------------------------------------------------
const stream = new Stream(streamOptions);
const conn = document.getElementById("conn");
function showState() {
  const state = stream.state;
  conn.dataset.state = state;
  document.body.dataset.conn = state;
  let label = state;
  if ((state === "reconnecting" || state === "polling" || state === "offline") && stream.nextRetryAt) {
    label += ` · retry in ${Math.max(0, Math.ceil((stream.nextRetryAt - Date.now()) / 1000))} s`;
  }
  conn.querySelector(".label").textContent = label;
  conn.title = { live: "Live: WebSocket connected", reconnecting: "WebSocket lost: reconnecting",
    polling: "WebSocket unavailable: polling the REST API", offline: "Server unreachable",
    connecting: "Connecting" }[state] || state;
}
stream.addEventListener("state", showState);
setInterval(showState, 1000);

// -- sign in -------------------------------------------------------------------------
const loginDialog = document.getElementById("login-dialog");
const loginButton = document.getElementById("login-btn");
function askToken(message = "") {
  if (loginDialog.open) return;
  loginDialog.querySelector("#login-error").textContent = message;
  loginDialog.querySelector("form").reset();
  loginDialog.showModal();
}
auth.addEventListener("unauthorized", () => { loginButton.hidden = false; askToken(token() ? "That token was refused." : ""); });
loginButton.addEventListener("click", () => askToken());
loginDialog.querySelector("form").addEventListener("submit", async (e) => {
  if (!e.submitter || e.submitter.value !== "ok") return;
  e.preventDefault();
  setToken(new FormData(e.target).get("token").trim());
  try {
    await whoami();
    loginDialog.close();
    stream.restart();
    for (const v of views) if (v.reload) v.reload();
  } catch (err) {
    loginDialog.querySelector("#login-error").textContent = err.status === 401 ? "That token was refused." : err.message;
  }
});

async function whoami() {
  const me = await api("whoami");
  Object.assign(session, me);
  document.getElementById("who").textContent = me.auth ? `${me.name} (${me.role})` : "";
  loginButton.hidden = !me.auth;
  loginButton.textContent = me.auth ? "Switch token" : "Sign in";
  document.body.dataset.role = me.role;
  return me;
}

// -- tabs ------------------------------------------------------------------------------
const alertStore = new AlertStore();
const overview = new OverviewView(document.getElementById("tab-overview"), stream, alertStore);
const alertsView = new AlertsView(document.getElementById("tab-alerts"), alertStore, session);
const explorer = new ExplorerView(document.getElementById("tab-explorer"), streamOptions);
const sessionsView = new SessionsView(document.getElementById("tab-sessions"), stream);
const tabs = {
  overview, alerts: alertsView, explorer,
  anomalies: new TableView(document.getElementById("tab-anomalies"), { what: "Anomaly detection", load: anomaliesTable }),
  slos: new TableView(document.getElementById("tab-slos"), { what: "SLO tracking", load: slosTable }),
  models: new TableView(document.getElementById("tab-models"), { what: "Model monitoring", load: modelsTable }),
  sessions: sessionsView,
  energy: new TableView(document.getElementById("tab-energy"), { what: "Energy statistics", load: energyTable }),
  events: new TableView(document.getElementById("tab-events"), { what: "Events", load: eventsTable }),
};
views.push(overview, explorer, sessionsView);
alertStore.reload = () => alertStore.load().catch(() => {});
views.push(alertStore);

let current = null;
function selectTab(name, focus = false) {
  if (!tabs[name]) name = "overview";
  if (name === current) return;
  const previous = tabs[current];
  if (previous && previous.hide) previous.hide();
  current = name;
  for (const link of document.querySelectorAll("nav.tabs [role=tab]")) {
    const on = link.dataset.tab === name;
    link.setAttribute("aria-selected", String(on));
    link.tabIndex = on ? 0 : -1;
    if (on && focus) link.focus();
  }
  for (const panel of document.querySelectorAll("[role=tabpanel]")) panel.hidden = panel.dataset.panel !== name;
  if (tabs[name].show) tabs[name].show();
}
const tabOfHash = () => location.hash.replace(/^#\/?/, "").split(/[/?]/)[0];
addEventListener("hashchange", () => selectTab(tabOfHash()));
document.querySelector("nav.tabs").addEventListener("keydown", (e) => {
  const links = [...document.querySelectorAll("nav.tabs [role=tab]")];
  const at = links.findIndex((l) => l.dataset.tab === current);
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: links.length - 1 }[e.key];
  if (to === undefined) return;
  e.preventDefault();
  const link = links[(to + links.length) % links.length];
  location.hash = link.getAttribute("href");
  selectTab(link.dataset.tab, true);
});

// -- start -----------------------------------------------------------------------------
async function main() {
  document.getElementById("theme-btn").setAttribute("aria-pressed", String(isDark()));
  conn.setAttribute("aria-label", "connection");
  document.body.dataset.zone = zone;
  try {
    await whoami();
  } catch (err) {
    if (err.status !== 401) toast(`Server unreachable: ${err.message}`);
  }
  stream.subscribe("alerts", {}, (m) => {
    if (m.type === "alert") alertStore.apply(m.alert);
    else if (m.type === "gap") alertStore.load().catch(() => {}); // missed transitions: reload
  });
  alertStore.load().catch(() => {});
  overview.start();
  sessionsView.start();
  stream.start();
  selectTab(tabOfHash());
  window.seismo = { stream, session, alertStore }; // for tests and the curious
}
main();
