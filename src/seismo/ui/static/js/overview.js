// Overview: stats cards (the `stats` topic, active alerts, SLO budgets), live host charts
// (the `samples` topic) and a feed of alerts, anomalies and events.
import { api } from "./api.js";
import { TimeChart } from "./chart.js";
import { SEVERITIES } from "./alerts.js";
import { animateNumber, escapeHtml, fmtNumber, fmtPercent, fmtTime, labelsHtml, seriesName } from "./format.js";

const HOST_METRICS = ["host_cpu_usage_percent", "host_memory_usage_percent", "host_load1"];
const HOST_SELECTOR = `{__name__=~"${HOST_METRICS.join("|")}"}`;
const CHART_WINDOW_MS = 15 * 60 * 1000;
const FEED_MAX = 100;

const CARDS = [
  { key: "ingest", title: "Ingest rate", format: (v) => fmtNumber(v, 1) + " /s" },
  { key: "series", title: "Series", format: (v) => fmtNumber(Math.round(v)) },
  { key: "alerts", title: "Active alerts", custom: true },
  { key: "anomaly", title: "Anomaly rate", format: (v) => fmtPercent(v * 100, 2) },
  { key: "slo", title: "SLO budget left", format: (v) => fmtPercent(v * 100, 1), optional: true },
  { key: "cpu", title: "Host CPU", format: (v) => fmtPercent(v) },
  { key: "memory", title: "Host memory", format: (v) => fmtPercent(v) },
  { key: "load", title: "Load (1 min)", format: (v) => v.toFixed(2) },
];

export class OverviewView {
  constructor(root, stream, alerts) {
    this.root = root;
    this.stream = stream;
    this.alerts = alerts;
    this.updated = {}; // card key -> ms of the value shown
    this.staleAfterMs = 10000;
    this._buildCards();
    this.hostChart = new TimeChart(root.querySelector("#chart-host"), { windowMs: CHART_WINDOW_MS, series: [
      { label: "CPU %", color: "--s1" }, { label: "memory %", color: "--s2" }] });
    this.loadChart = new TimeChart(root.querySelector("#chart-load"), { windowMs: CHART_WINDOW_MS, series: [
      { label: "load1", color: "--s3" }, { label: "ingest /s", color: "--s4", scale: "rate" }] });
    this.hostOf = {}; // metric -> the one host charted
    this.feed = root.querySelector("#feed");
    alerts.addEventListener("change", (e) => {
      this._showAlertCounts();
      if (e.detail.alert) this._feedAlert(e.detail.alert);
    });
    setInterval(() => this._markStale(), 1000);
    stream.addEventListener("state", () => this._markStale());
  }

  async start() {
    this.stream.subscribe("stats", {}, (m) => m.type === "stats" && this._showStats(m.stats));
    this.stream.subscribe("samples", { selector: HOST_SELECTOR }, (m) => m.type === "samples" && this._chartSamples(m.series));
    this.stream.subscribe("events", {}, (m) => m.type === "event" && this._feedItem("event", m.event.timestamp,
      `<strong>${escapeHtml(m.event.type)}</strong> <span class="muted">${escapeHtml(m.event.source || "")}</span> ${escapeHtml(m.event.message || "")}`));
    this.stream.subscribe("anomalies", {}, (m) => m.type === "anomaly" && this._feedAnomaly(m.anomaly));
    await Promise.allSettled([this._loadLatestStats(), this._loadHistory(), this._loadFeed(), this._loadSlos()]);
  }

  _buildCards() {
    const box = this.root.querySelector("#cards");
    box.innerHTML = CARDS.map((c) => `<div class="card" data-card="${c.key}" ${c.optional ? "hidden" : ""}>
      <h3>${c.title}</h3>${c.custom
        ? `<div class="value" data-value="">–</div><div class="sev">${SEVERITIES.map((s) => `<span title="${s}"><span class="sevtag ${s}">${s[0].toUpperCase()}</span> <b data-sev="${s}">0</b></span>`).join("")}</div>`
        : `<div class="value" data-value="">–</div>`}
      <div class="sub"></div></div>`).join("");
  }

  _card(key) { return this.root.querySelector(`[data-card="${key}"]`); }

  _set(key, value, sub) {
    const spec = CARDS.find((c) => c.key === key);
    const card = this._card(key);
    if (value == null) return;
    animateNumber(card.querySelector(".value"), value, spec.format);
    card.querySelector(".sub").textContent = sub ?? "";
    this.updated[key] = Date.now();
    card.classList.remove("stale");
  }

  _showStats(s) {
    if (this.lastStatsTs && s.ts > this.lastStatsTs) this.staleAfterMs = Math.max(5000, 3 * (s.ts - this.lastStatsTs));
    this.lastStatsTs = s.ts;
    const at = "at " + fmtTime(s.ts);
    this._set("ingest", s.ingest_samples_per_s, at);
    this._set("series", s.series, at);
    this._set("anomaly", s.anomaly_rate, `${fmtNumber(s.anomalies_per_min ?? 0)} /min · ${s.anomalies_open ?? 0} open`);
    const host = s.host || {};
    this._set("cpu", host.cpu_percent, at);
    this._set("memory", host.memory_percent, at);
    this._set("load", host.load1, at);
    if (this.stream.state === "live" || this.stream.state === "polling") this.loadChart.set(1, s.ts, s.ingest_samples_per_s);
    this.root.dataset.statsSeq = String((Number(this.root.dataset.statsSeq) || 0) + 1);
  }

  _showAlertCounts() {
    const counts = this.alerts.counts();
    for (const s of SEVERITIES) this.root.querySelector(`[data-sev="${s}"]`).textContent = counts[s];
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    animateNumber(this._card("alerts").querySelector(".value"), total, (v) => String(Math.round(v)));
    this._card("alerts").querySelector(".sub").textContent = "firing or acknowledged";
    this.updated.alerts = Date.now();
    const badge = document.getElementById("alerts-badge");
    badge.hidden = !total;
    badge.textContent = total;
  }

  _markStale() {
    const live = this.stream.state === "live" || this.stream.state === "polling";
    const now = Date.now();
    for (const c of CARDS) {
      const card = this._card(c.key);
      const age = now - (this.updated[c.key] || 0);
      // Alert counts and SLOs change by message, not by clock: only the connection matters.
      const tooOld = !["alerts", "slo"].includes(c.key) && age > this.staleAfterMs;
      card.classList.toggle("stale", !live || tooOld || !this.updated[c.key]);
    }
    for (const id of ["#chart-host", "#chart-load"]) this.root.querySelector(id).classList.toggle("stale", !live);
  }

  async _loadLatestStats() {
    const reply = await api("stream/recent", { params: { topic: "stats", limit: 1 } });
    const last = reply.messages[reply.messages.length - 1];
    if (last && !this.lastStatsTs) this._showStats(last.stats);
  }

  async _loadHistory() {
    const reply = await api("query_range", { params: { selector: HOST_SELECTOR, start: "now-15m", step: "5s" } });
    this._chartSamples(reply.series);
  }

  _chartSamples(series) {
    for (const s of series) {
      if (s.metric === "host_cpu_usage_percent" && s.labels.cpu !== "total") continue;
      const host = s.labels.host || "";
      this.hostOf[s.metric] ??= host;
      if (this.hostOf[s.metric] !== host) continue; // one host per chart line
      const [chart, index] = s.metric === "host_load1" ? [this.loadChart, 0]
        : [this.hostChart, s.metric === "host_cpu_usage_percent" ? 0 : 1];
      chart.setColumn(index, s.timestamps, s.values);
    }
  }

  async _loadFeed() {
    const reply = await api("events", { params: { limit: 20 } });
    for (const e of (reply.events || []).slice().reverse()) {
      this._feedItem("event", e.timestamp, `<strong>${escapeHtml(e.type)}</strong> <span class="muted">${escapeHtml(e.source || "")}</span> ${escapeHtml(e.message || "")}`);
    }
  }

  async _loadSlos() {
    try {
      const reply = await api("slos");
      const slos = reply.slos || [];
      if (!slos.length) return;
      const worst = slos.reduce((w, s) => (s.budget_remaining ?? 1) < (w.budget_remaining ?? 1) ? s : w);
      this._card("slo").hidden = false;
      this._set("slo", worst.budget_remaining ?? null, `lowest: ${worst.name} (${slos.length} SLOs)`);
    } catch { /* 404: not on this server; the card stays hidden */ }
    clearTimeout(this._sloTimer);
    this._sloTimer = setTimeout(() => this._loadSlos(), 30000);
  }

  _feedAlert(a) {
    this._feedItem("alert", a.updated_ms || Date.now(),
      `<span class="sevtag ${escapeHtml(a.severity)}">${escapeHtml(a.severity)}</span> <strong>${escapeHtml(a.labels.alertname || a.rule)}</strong> → <span class="state ${escapeHtml(a.state)}">${escapeHtml(a.state)}</span> ${labelsHtml(a.labels, ["alertname", "severity"])}`);
  }

  _feedAnomaly(a) {
    this._feedItem("anomaly", a.start_ms, `<strong>${escapeHtml(a.kind)}</strong> on ${escapeHtml(seriesName(a.metric, a.labels))} · score ${fmtNumber(a.score)} · actual ${fmtNumber(a.actual)} (expected ${fmtNumber(a.expected)})`);
  }

  _feedItem(kind, ts, html) {
    const li = document.createElement("li");
    li.innerHTML = `<time>${fmtTime(ts)}</time><span class="kind ${kind}">${kind}</span><span>${html}</span>`;
    this.feed.prepend(li);
    while (this.feed.children.length > FEED_MAX) this.feed.lastChild.remove();
  }

  retheme() { this.hostChart.rebuild(); this.loadChart.rebuild(); }
}
