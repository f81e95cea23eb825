// The read-mostly tabs: anomalies, SLOs, models, energy (seed 003's 16 statistics and
// consumption per machine) and events, as tables and cards over the REST API. An endpoint
// this server does not have (404) says so plainly.
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

// Seed 003's 16 statistics (docs/energy.md): its name, the API's field, a title, a unit
// (a function of the reply for the currency) and how to show the number.
const ENERGY_STATS = [
  ["total_energy", "total_energy_kwh", "Total energy", "kWh"],
  ["energy_per_hour", "energy_per_hour_kwh", "Energy per hour", "kWh"],
  ["avg_power", "avg_power_kw", "Average power", "kW"],
  ["peak_power", "peak_power_kw", "Peak power", "kW"],
  ["efficiency", "load_factor", "Efficiency (load factor)", "%", (v) => fmtNumber(100 * v, 1)],
  ["estimated_cost", "cost_total", "Estimated cost", (e) => e.currency],
  ["cost_per_day", "cost_per_day", "Cost per day", (e) => e.currency],
  ["carbon_footprint", "co2_kg", "CO₂ footprint", "kg"],
  ["carbon_per_day", "co2_kg_per_day", "CO₂ per day", "kg"],
  ["active_machines_today", "active_machines", "Active machines", (e) => `of ${fmtNumber(e.machines_total)}`],
  ["total_anomalies", "anomalies", "Anomalies", ""],
  ["total_readings", "total_readings", "Readings", ""],
  ["readings_per_minute", "readings_per_min", "Readings per minute", "/min"],
  ["data_rate", "data_rate_per_min", "Data rate (last 5 min)", "/min"],
  ["uptime_percent", "uptime_percent", "Uptime", "%", (v) => fmtNumber(v, 1)],
  ["uptime_days", "uptime_days", "Reporting time", "days", (v) => fmtNumber(v, 3)],
];
export const ENERGY_SELECTOR = "machine_power_watts";

export async function energyTable() {
  const e = await api("energy/stats", { params: { selector: ENERGY_SELECTOR } });
  const cards = ENERGY_STATS.map(([seed, field, title, unit, show]) => {
    const v = e[field];
    const text = v == null ? "–" : (show || fmtNumber)(v);
    const u = typeof unit === "function" ? unit(e) : unit;
    return `<div class="card" data-stat="${seed}"><h3>${escapeHtml(title)}</h3>
      <div class="value">${text}${u ? ` <small class="muted">${escapeHtml(u)}</small>` : ""}</div>
      <div class="sub"><code class="seed" title="seed 003 name; API field ${field}">${seed}</code></div></div>`;
  }).join("");
  const machines = (e.machines || []).slice(0, 100).map((m) => `<tr data-machine="${escapeHtml(m.machine)}">
    <td><strong>${escapeHtml(m.machine)}</strong> <span class="labels">${labelsHtml(m.labels, ["machine"])}</span></td>
    <td class="num">${fmtNumber(m.energy_kwh)}</td><td class="num">${fmtNumber(m.cost)}</td>
    <td class="num">${fmtNumber(m.co2_kg)}</td><td class="num">${fmtNumber(m.avg_power_kw)}</td>
    <td class="num">${fmtNumber(m.peak_power_kw)}</td><td class="num">${fmtPercent(m.uptime_percent)}</td>
    <td title="${fmtDateTime(m.last_ms)}">${m.active ? `<span class="pill ok">active</span>` : fmtAgo(m.last_ms)}</td></tr>`);
  const more = e.machines_total > machines.length ? `<p class="muted">The ${machines.length} largest of ${fmtNumber(e.machines_total)} machines.</p>` : "";
  return `<p class="muted">Power series <code>${escapeHtml(e.selector)}</code> (${escapeHtml(e.unit)}) over the last ${escapeHtml(e.window)}
      · ${fmtNumber(e.tariff_per_kwh)} ${escapeHtml(e.currency)}/kWh · ${fmtNumber(e.carbon_kg_per_kwh)} kg CO₂/kWh</p>
    <div class="cards" id="energy-cards">${cards}</div>
    <h2 class="table-title">Consumption per machine</h2>`
    + table(["Machine", "Energy kWh", `Cost ${escapeHtml(e.currency)}`, "CO₂ kg", "Avg kW", "Peak kW", "Uptime", "Last reading"], machines,
      "No machines reporting.") + more;
}

export async function eventsTable() {
  const { events } = await api("events", { params: { limit: 200 } });
  const rows = events.map((e) => `<tr><td title="${fmtDateTime(e.timestamp)}">${fmtDateTime(e.timestamp)}</td>
    <td><strong>${escapeHtml(e.type)}</strong></td><td>${escapeHtml(e.source || "")}</td>
    <td><span class="sevtag ${escapeHtml(e.severity || "info")}">${escapeHtml(e.severity || "info")}</span></td>
    <td>${escapeHtml(e.message || "")}</td><td class="labels">${labelsHtml(e.attributes)}</td></tr>`);
  return table(["Time", "Type", "Source", "Severity", "Message", "Attributes"], rows, "No events yet.");
}
