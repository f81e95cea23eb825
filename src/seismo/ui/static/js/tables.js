// The read-mostly tabs: anomalies, SLOs, models, energy and events, as tables and cards
// over the REST API. An endpoint this server does not have (404) says so plainly.
import { api } from "./api.js";
import { escapeHtml, fmtAgo, fmtDateTime, fmtNumber, fmtPercent, labelsHtml, seriesName } from "./format.js";

function unavailable(what) {
  return `<div class="unavailable" data-unavailable>${escapeHtml(what)} is not available on this server.</div>`;
}

function table(headers, rows, empty) {
  if (!rows.length) return `<div class="empty">${escapeHtml(empty)}</div>`;
  return `<div class="table-wrap"><table class="data"><thead><tr>${headers.map((h) => `<th>${h}</th>`).join("")}</tr></thead>
    <tbody>${rows.join("")}</tbody></table></div>`;
}

/** A tab whose content is rendered by `load()`; refreshed on show and every `everyMs`. */
export class TableView {
  constructor(root, { what, load, everyMs = 15000 }) {
    Object.assign(this, { root, what, load, everyMs });
    this.content = root.querySelector(".content");
  }

  async show() {
    clearTimeout(this.timer);
    try {
      this.content.innerHTML = await this.load();
    } catch (err) {
      if (err.status === 404) this.content.innerHTML = unavailable(this.what);
      else if (err.status === 0 && this.content.innerHTML) { /* keep the last table while offline */ }
      else this.content.innerHTML = `<div class="unavailable">Could not load ${escapeHtml(this.what)}: ${escapeHtml(err.message)}</div>`;
    }
    if (!this.root.hidden) this.timer = setTimeout(() => this.show(), this.everyMs);
  }

  hide() { clearTimeout(this.timer); }
}

export async function anomaliesTable() {
  const [list, rates] = await Promise.all([
    api("anomalies", { params: { start: "now-24h", limit: 200 } }),
    api("anomalies/rates").catch(() => null),
  ]);
  const rows = list.anomalies.map((a) => `<tr>
    <td title="${fmtDateTime(a.start_ms)}">${fmtAgo(a.start_ms)}</td><td>${escapeHtml(a.kind)}</td>
    <td><code>${escapeHtml(seriesName(a.metric, a.labels))}</code></td>
    <td class="num">${fmtNumber(a.score)}</td><td class="num">${fmtNumber(a.actual)}</td>
    <td class="num">${fmtNumber(a.expected)} <span class="muted">[${fmtNumber(a.lower)}, ${fmtNumber(a.upper)}]</span></td>
    <td>${escapeHtml((a.detectors || []).join(", "))}</td><td>${escapeHtml(a.state)}</td></tr>`);
  const overall = rates && rates.overall ? `<p class="muted">Anomalous share of scored points: ${fmtPercent(100 * (rates.overall.rate ?? 0), 3)}</p>` : "";
  return overall + table(["Start", "Kind", "Series", "Score", "Actual", "Expected [band]", "Detectors", "State"], rows,
    "No anomalies in the last 24 hours.");
}

export async function slosTable() {
  const { slos } = await api("slos");
  if (!slos.length) return `<div class="empty">No SLOs defined (see docs/slo.md).</div>`;
  return `<div class="cards">${slos.map((s) => {
    const left = s.budget_remaining;
    const pct = left == null ? 0 : Math.max(0, Math.min(100, left * 100));
    const level = pct < 10 ? "low" : pct < 50 ? "mid" : "";
    const burns = Object.entries(s.burn_rates || {}).map(([w, r]) => `${escapeHtml(w)}: ${fmtNumber(r)}`).join(" · ");
    return `<div class="card"><h3>${escapeHtml(s.name)}</h3>
      <div class="value status-${escapeHtml(s.status)}">${left == null ? "–" : fmtPercent(pct)}</div>
      <div class="sub">budget left · objective ${fmtPercent(100 * s.objective, 2)} over ${escapeHtml(s.window || "")} · <span class="status-${escapeHtml(s.status)}">${escapeHtml(s.status || "")}</span></div>
      <div class="meter ${level}"><span style="width:${pct}%"></span></div>
      <div class="sub">burn ${burns || "–"}</div></div>`;
  }).join("")}</div>`;
}

export async function modelsTable() {
  const { models } = await api("models");
  if (!models.length) return `<div class="empty">No models registered (see docs/models.md).</div>`;
  const rows = await Promise.all(models.map(async (m) => {
    const versions = (m.versions || []).map((v) => (typeof v === "string" ? v : v.version));
    let metrics = {};
    try { metrics = await api(`models/${encodeURIComponent(m.name)}/metrics`, { params: { window: "1h" } }); } catch { /* none yet */ }
    const quality = m.task === "regression"
      ? `MAE ${fmtNumber(metrics.mae)} · RMSE ${fmtNumber(metrics.rmse)}`
      : `accuracy ${fmtNumber(metrics.accuracy)} · F1 ${fmtNumber(metrics.f1)}`;
    return `<tr><td><strong>${escapeHtml(m.name)}</strong></td><td>${escapeHtml(m.task)}</td>
      <td>${escapeHtml(versions.join(", "))}</td><td class="num">${fmtNumber(metrics.predictions)}</td>
      <td class="num">${metrics.outcome_coverage == null ? "–" : fmtPercent(100 * metrics.outcome_coverage)}</td>
      <td>${quality}</td><td class="num">${fmtNumber(metrics.latency_p95_ms)}</td></tr>`;
  }));
  return table(["Model", "Task", "Versions", "Predictions (1 h)", "Outcomes", "Quality (1 h)", "p95 latency ms"], rows, "");
}

const ENERGY_FIELDS = [
  ["total_energy_kwh", "Energy", "kWh"], ["avg_power_kw", "Average power", "kW"], ["peak_power_kw", "Peak power", "kW"],
  ["load_factor", "Load factor", ""], ["cost_total", "Cost", ""], ["cost_per_day", "Cost per day", ""],
  ["co2_kg", "CO₂", "kg"], ["active_machines", "Active machines", ""], ["total_readings", "Readings", ""],
  ["uptime_percent", "Uptime", "%"], ["anomalies", "Anomalies", ""], ["data_rate_per_min", "Readings / min", ""],
];

export async function energyTable() {
  const e = await api("energy/stats");
  const cards = ENERGY_FIELDS.filter(([k]) => k in e).map(([k, title, unit]) => `<div class="card"><h3>${title}</h3>
    <div class="value">${fmtNumber(e[k])}${unit ? ` <small class="muted">${unit}</small>` : ""}</div></div>`).join("");
  const machines = (e.machines || []).slice(0, 100).map((m) => `<tr><td>${labelsHtml(m.labels || { machine: m.machine ?? m.name ?? "" })}</td>
    <td class="num">${fmtNumber(m.energy_kwh ?? m.total_energy_kwh)}</td><td class="num">${fmtNumber(m.peak_power_kw)}</td></tr>`);
  return `<p class="muted">Series <code>${escapeHtml(e.selector)}</code> over ${escapeHtml(e.window)}</p><div class="cards">${cards}</div>`
    + table(["Machine", "Energy kWh", "Peak kW"], machines, "No machines reporting.");
}

export async function eventsTable() {
  const { events } = await api("events", { params: { limit: 200 } });
  const rows = events.map((e) => `<tr><td title="${fmtDateTime(e.timestamp)}">${fmtDateTime(e.timestamp)}</td>
    <td><strong>${escapeHtml(e.type)}</strong></td><td>${escapeHtml(e.source || "")}</td>
    <td><span class="sevtag ${escapeHtml(e.severity || "info")}">${escapeHtml(e.severity || "info")}</span></td>
    <td>${escapeHtml(e.message || "")}</td><td class="labels">${labelsHtml(e.attributes)}</td></tr>`);
  return table(["Time", "Type", "Source", "Severity", "Message", "Attributes"], rows, "No events yet.");
}
