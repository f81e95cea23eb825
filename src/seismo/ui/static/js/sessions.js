// Sessions: the running sessions (GET /api/v1/sessions, kept live from the `sessions`
// topic's start/update/end messages), per-kind cards (GET /api/v1/sessions/stats) and a
// badge per row for overdue, failure risk and the expected time left (docs/sessions.md).
import { api } from "./api.js";
import { escapeHtml, fmtAgo, fmtDateTime, fmtNumber, fmtPercent, labelsHtml } from "./format.js";

const LIST = { state: "active", sort: "duration", limit: 100 };
const MAX_ROWS = 100;
const RISKY = 0.5; // failure risk from which the row says so
const TICK_MS = 5000; // durations and "left" move on between messages
const STATS_MS = 15000;

/** 75 s → "1 min 15 s"; 2 h 5 min → "2 h 5 min". */
export function fmtDuration(s) {
  if (s == null || Number.isNaN(s)) return "–";
  const t = Math.max(0, Math.round(s));
  if (t < 60) return `${t} s`;
  if (t < 3600) return `${Math.floor(t / 60)} min${t % 60 ? ` ${t % 60} s` : ""}`;
  if (t < 86400) return `${Math.floor(t / 3600)} h${t % 3600 >= 60 ? ` ${Math.floor((t % 3600) / 60)} min` : ""}`;
  return `${(t / 86400).toFixed(1)} d`;
}

function badges(p) {
  if (!p) return "";
  const out = [];
  if (p.overdue) out.push(`<span class="pill bad" title="running longer than the overdue quantile of its kind">overdue</span>`);
  if (p.failure_risk != null && p.failure_risk >= RISKY) {
    out.push(`<span class="pill warn" title="probability of failure (${escapeHtml(p.model || "")})">risk ${fmtPercent(100 * p.failure_risk, 0)}</span>`);
  }
  const left = p.completion && p.completion.remaining_s;
  if (left != null && !p.overdue) out.push(`<span class="pill" title="expected time left (median of longer runs)">~${fmtDuration(left)} left</span>`);
  return out.join(" ");
}

export class SessionsView {
  constructor(root, stream) {
    Object.assign(this, { root, stream });
    this.active = new Map(); // id -> session (as the API and the stream give it)
    this.receivedAt = Date.now(); // when the durations in `active` were true
    this.form = root.querySelector("#session-filters");
    this.body = root.querySelector("#sessions-table tbody");
    this.cards = root.querySelector("#session-kinds");
    this.note = root.querySelector("#sessions-note");
    this.count = root.querySelector("#sessions-count");
    this.form.addEventListener("change", () => this.render());
    this.form.addEventListener("submit", (e) => e.preventDefault());
  }

  /** Follow the `sessions` topic from page load, so the table is current when shown. */
  start() {
    this.stream.subscribe("sessions", {}, (m) => this._onMessage(m));
  }

  async show() {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.render(), TICK_MS);
    clearInterval(this.statsTimer);
    this.statsTimer = setInterval(() => this._loadStats(), STATS_MS);
    await Promise.allSettled([this.reload(), this._loadStats()]);
  }

  hide() { clearInterval(this.timer); clearInterval(this.statsTimer); }

  async reload() {
    try {
      const reply = await api("sessions", { params: LIST });
      this.active = new Map(reply.sessions.map((s) => [s.id, s]));
      this.receivedAt = Date.now();
      this.note.textContent = reply.cursor ? `showing the ${MAX_ROWS} longest-running` : "";
    } catch (err) {
      if (err.status === 404) { this.root.querySelector(".content").innerHTML = `<div class="unavailable" data-unavailable>Sessions are not available on this server.</div>`; return; }
      this.note.textContent = err.status === 0 ? "server unreachable: showing the last list" : err.message;
    }
    this.render();
  }

  _onMessage(m) {
    if (m.type === "gap") { if (!this.root.hidden) this.reload(); return; }
    const s = m.session;
    if (!s) return;
    const { change, ...session } = s;
    if (session.state === "active") {
      // An update's duration is its elapsed time now; age the others to the same instant.
      this._age();
      this.active.set(session.id, session);
    } else {
      this.active.delete(session.id);
    }
    if (!this.root.hidden) {
      this.render(session.id);
      if (change === "start" || change === "end") this._loadStatsSoon();
    }
  }

  _age() {
    const dt = (Date.now() - this.receivedAt) / 1000;
    if (dt <= 0) return;
    for (const s of this.active.values()) {
      s.duration_s = (s.duration_s || 0) + dt;
      if (s.prediction && s.prediction.completion && s.prediction.completion.remaining_s != null) {
        s.prediction.completion.remaining_s = Math.max(0, s.prediction.completion.remaining_s - dt);
      }
    }
    this.receivedAt = Date.now();
  }

  _loadStatsSoon() {
    clearTimeout(this.statsSoon);
    this.statsSoon = setTimeout(() => this._loadStats(), 1000);
  }

  async _loadStats() {
    let stats;
    try { stats = await api("sessions/stats"); } catch { return; }
    const kinds = Object.entries(stats.kinds || {}).sort((a, b) => (b[1].active - a[1].active) || a[0].localeCompare(b[0]));
    const select = this.form.querySelector("select[name=kind]");
    const chosen = select.value;
    select.innerHTML = `<option value="">any</option>` + kinds.map(([k]) => `<option>${escapeHtml(k)}</option>`).join("");
    select.value = kinds.some(([k]) => k === chosen) ? chosen : "";
    if (!kinds.length) {
      this.cards.innerHTML = `<div class="empty">No sessions yet: send <code>session.start</code> events (see docs/sessions.md).</div>`;
      return;
    }
    this.cards.innerHTML = kinds.slice(0, 24).map(([kind, k]) => {
      const p = k.duration_s || {};
      const outcomes = Object.entries(k.by_status || {}).map(([st, n]) => `${escapeHtml(st)} ${fmtNumber(n)}`).join(" · ");
      return `<div class="card" data-kind="${escapeHtml(kind)}"><h3>${escapeHtml(kind)}</h3>
        <div class="value">${fmtNumber(k.active)} <small class="muted">running</small></div>
        <div class="sub">success ${k.success_rate == null ? "–" : fmtPercent(100 * k.success_rate, 0)} · median ${fmtDuration(p.p50)} · p95 ${fmtDuration(p.p95)}</div>
        <div class="sub">${fmtNumber(k.finished)} finished${outcomes ? ` (${outcomes})` : ""}${k.stale ? ` · ${fmtNumber(k.stale)} stale` : ""}</div></div>`;
    }).join("");
  }

  render(flashId) {
    this._age();
    const kind = new FormData(this.form).get("kind");
    const rows = [...this.active.values()].filter((s) => !kind || s.kind === kind)
      .sort((a, b) => (b.duration_s || 0) - (a.duration_s || 0)).slice(0, MAX_ROWS);
    this.count.textContent = String(this.active.size);
    if (!rows.length) {
      this.body.innerHTML = `<tr><td colspan="8" class="empty">No running sessions${kind ? ` of kind ${escapeHtml(kind)}` : ""}.</td></tr>`;
      return;
    }
    this.body.innerHTML = rows.map((s) => {
      const p = s.prediction || {};
      const extra = Object.fromEntries(Object.entries(s.attributes || {}).filter(([k]) => !["kind", "user", "session"].includes(k)).slice(0, 4));
      return `<tr data-id="${escapeHtml(s.id)}" class="${s.id === flashId ? "flash" : ""}">
        <td><strong>${escapeHtml(s.id)}</strong></td><td>${escapeHtml(s.kind || "–")}</td><td>${escapeHtml(s.user || "–")}</td>
        <td title="${fmtDateTime(s.started_ms)}">${fmtAgo(s.started_ms)}</td>
        <td class="num">${fmtDuration(s.duration_s)}</td><td class="num">${fmtNumber(s.events)}</td>
        <td class="num">${p.success_probability == null ? "–" : fmtPercent(100 * p.success_probability, 0)}</td>
        <td>${badges(p)} <span class="labels">${labelsHtml(extra)}</span></td></tr>`;
    }).join("");
  }
}
