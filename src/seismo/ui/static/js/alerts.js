// Alerts: the active set (kept live from the `alerts` topic), the table with filters and
// history, and the operator actions (acknowledge, resolve, silence).
import { api } from "./api.js";
import { escapeHtml, fmtAgo, fmtDateTime, fmtNumber, labelsHtml, toast } from "./format.js";

export const SEVERITIES = ["critical", "high", "medium", "low", "info"];
const ACTIVE = ["pending", "firing", "acknowledged"];

/** The active alerts, by id; `change` fires on every transition. */
export class AlertStore extends EventTarget {
  constructor() { super(); this.active = new Map(); this.loadedAt = null; }

  async load() {
    const reply = await api("alerts", { params: { state: ACTIVE.join(","), limit: 1000 } });
    this.active = new Map(reply.alerts.map((a) => [a.id, a]));
    this.loadedAt = Date.now();
    this.dispatchEvent(new CustomEvent("change", { detail: { reload: true } }));
  }

  apply(alert) {
    // The stream's alert messages name the fingerprint `fingerprint`; the REST API `id`.
    if (alert.id == null) alert = { id: alert.fingerprint, ...alert };
    if (ACTIVE.includes(alert.state)) this.active.set(alert.id, alert);
    else this.active.delete(alert.id);
    this.dispatchEvent(new CustomEvent("change", { detail: { alert } }));
  }

  counts() {
    const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
    for (const a of this.active.values()) if (a.state !== "pending") counts[a.severity] = (counts[a.severity] || 0) + 1;
    return counts;
  }
}

export class AlertsView {
  constructor(root, store, session) {
    this.root = root;
    this.store = store;
    this.session = session;
    this.form = root.querySelector("#alert-filters");
    this.body = root.querySelector("#alerts-table tbody");
    this.note = root.querySelector("#alerts-note");
    this.rows = []; // alerts shown, newest change first
    this.form.addEventListener("change", () => this.refresh());
    this.form.addEventListener("submit", (e) => e.preventDefault());
    store.addEventListener("change", (e) => this._onChange(e.detail));
    this.body.addEventListener("click", (e) => this._onClick(e));
    this._setupSilenceDialog();
  }

  show() { this.refresh(); }

  filters() {
    const data = new FormData(this.form);
    return { state: data.get("state"), severity: data.get("severity") };
  }

  _matches(alert) {
    const { state, severity } = this.filters();
    if (severity && alert.severity !== severity) return false;
    if (state === "all") return true;
    if (state === "active") return ACTIVE.includes(alert.state);
    return alert.state === state;
  }

  async refresh() {
    const { state, severity } = this.filters();
    try {
      const params = { limit: 200, severity };
      if (state === "active") params.state = ACTIVE.join(",");
      else if (state !== "all") params.state = state;
      const reply = await api("alerts", { params });
      this.rows = reply.alerts;
      this.note.textContent = "";
    } catch (err) {
      this.note.textContent = err.status === 0 ? "server unreachable: showing the last list" : err.message;
    }
    this.render();
  }

  _onChange({ alert, reload }) {
    if (reload) { if (!this.root.hidden) this.refresh(); return; }
    this.rows = this.rows.filter((a) => a.id !== alert.id);
    if (this._matches(alert)) this.rows.unshift(alert);
    if (!this.root.hidden) this.render(alert.id);
  }

  render(flashId) {
    const can = this.session.canOperate;
    if (!this.rows.length) {
      this.body.innerHTML = `<tr><td colspan="7" class="empty">No alerts match.</td></tr>`;
      return;
    }
    this.body.innerHTML = this.rows.map((a) => {
      const active = ACTIVE.includes(a.state);
      const summary = (a.annotations && (a.annotations.summary || a.annotations.description)) || "";
      const silenced = a.silenced_by && a.silenced_by.length ? ` <span class="muted" title="silenced">🔕</span>` : "";
      const actions = !can ? `<span class="muted" title="your token is read-only">read-only</span>` : `
        <button type="button" class="small" data-act="ack" ${a.state === "firing" ? "" : "disabled"}>Acknowledge</button>
        <button type="button" class="small" data-act="resolve" ${active ? "" : "disabled"}>Resolve</button>
        <button type="button" class="small" data-act="silence" ${active ? "" : "disabled"}>Silence</button>`;
      const since = a.fired_ms || a.started_ms;
      return `<tr data-id="${escapeHtml(a.id)}" class="${a.id === flashId ? "flash" : ""}">
        <td><span class="sevtag ${escapeHtml(a.severity)}">${escapeHtml(a.severity)}</span></td>
        <td><strong>${escapeHtml(a.labels.alertname || a.rule)}</strong>${silenced}<div class="muted">${escapeHtml(summary)}</div></td>
        <td><span class="state ${escapeHtml(a.state)}">${escapeHtml(a.state)}</span>${a.ack_by ? `<div class="muted">by ${escapeHtml(a.ack_by)}</div>` : ""}</td>
        <td class="num">${fmtNumber(a.value)}</td>
        <td title="${fmtDateTime(since)}">${fmtAgo(since)}</td>
        <td class="labels">${labelsHtml(a.labels, ["alertname", "severity"])}</td>
        <td class="actions">${actions}</td></tr>`;
    }).join("");
  }

  async _onClick(e) {
    const button = e.target.closest("button[data-act]");
    if (!button) return;
    const id = button.closest("tr").dataset.id;
    const alert = this.rows.find((a) => a.id === id);
    if (!alert) return;
    if (button.dataset.act === "silence") { this._openSilence(alert); return; }
    button.disabled = true;
    try {
      const done = await api(`alerts/${encodeURIComponent(id)}/${button.dataset.act}`,
        { method: "POST", body: { comment: "from the dashboard" } });
      this.store.apply(done);
      toast(`${alert.labels.alertname || alert.rule}: ${done.state}`);
    } catch (err) {
      toast(`Could not ${button.dataset.act}: ${err.message}`);
      button.disabled = false;
    }
  }

  _setupSilenceDialog() {
    this.dialog = document.getElementById("silence-dialog");
    const form = this.dialog.querySelector("form");
    form.addEventListener("submit", async (e) => {
      const submitter = e.submitter;
      if (!submitter || submitter.value !== "ok") return;
      e.preventDefault();
      const data = new FormData(form);
      const error = form.querySelector(".error");
      try {
        await api("silences", { method: "POST", body: {
          matchers: this._silenced.labels, ends_at: "now+" + data.get("duration"), comment: data.get("comment") } });
        this.dialog.close();
        toast(`Silenced ${this._silenced.labels.alertname || ""} for ${data.get("duration")}`);
        setTimeout(() => this.refresh(), 300);
      } catch (err) {
        error.textContent = err.message;
      }
    });
  }

  _openSilence(alert) {
    this._silenced = alert;
    const form = this.dialog.querySelector("form");
    form.reset();
    form.querySelector(".error").textContent = "";
    this.dialog.querySelector("#silence-matchers").innerHTML = "Matches " + labelsHtml(alert.labels);
    this.dialog.showModal();
  }
}
