// Explorer: any series over 5 min … 30 d, several at once, with the detectors' expected
// band, anomaly markers, a forecast overlay and a live tail (its own stream connection).
import { api } from "./api.js";
import { TimeChart, PALETTE } from "./chart.js";
import { durationMs, escapeHtml, seriesName } from "./format.js";
import { Stream } from "./stream.js";

const MAX_SERIES = 30;

export class ExplorerView {
  constructor(root, streamOptions) {
    this.root = root;
    this.form = root.querySelector("#explorer-form");
    this.note = root.querySelector("#explorer-note");
    this.list = root.querySelector("#selector-list");
    this.chart = null;
    this.tail = new Stream(streamOptions);
    this.index = new Map(); // series key -> chart index (live tail)
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.draw(); });
    this.form.addEventListener("change", (e) => { if (e.target.name !== "selector") this.draw(); });
    this.form.selector.addEventListener("input", () => this._suggest());
    this.names = null;
  }

  async show() {
    if (!this.chart) this.chart = new TimeChart(this.root.querySelector("#chart-explorer"), { height: 380 });
    if (this.names == null) {
      try { this.names = (await api("metric_names")).metrics || []; } catch { this.names = []; }
      this._fillList(this.names);
      const asked = new URLSearchParams(location.hash.split("?")[1] || ""); // #explorer?selector=…&range=…
      if (asked.get("range") && this.form.range.querySelector(`option[value="${CSS.escape(asked.get("range"))}"]`)) this.form.range.value = asked.get("range");
      const fromHash = asked.get("selector");
      if (fromHash) this.form.selector.value = fromHash;
      else if (!this.form.selector.value && this.names.length) {
        this.form.selector.value = this.names.includes("host_cpu_usage_percent") ? 'host_cpu_usage_percent{cpu="total"}' : this.names[0];
      }
      if (this.form.selector.value) this.draw();
    } else if (this.form.live.checked && this.tail.stopped && this.selector) {
      this.tail.start();
    }
  }

  hide() { this.tail.stop(); }

  _fillList(options) {
    this.list.innerHTML = options.slice(0, 200).map((o) => `<option value="${escapeHtml(o)}">`).join("");
  }

  async _suggest() {
    const text = this.form.selector.value.trim();
    const metric = text.split("{")[0];
    if (!this.names) return;
    if (!text.includes("{") && !this.names.includes(metric)) {
      this._fillList(this.names.filter((n) => n.includes(text)));
      return;
    }
    if (metric === this._suggestedFor) return;
    this._suggestedFor = metric;
    try {
      const reply = await api("series", { params: { selector: metric, limit: 200 } });
      this._fillList([metric, ...reply.series.map((s) => seriesName(s.metric, s.labels))]);
    } catch { /* a half-typed selector: no suggestions */ }
  }

  async draw() {
    const selector = this.form.selector.value.trim();
    if (!selector) return;
    const range = this.form.range.value;
    const rangeMs = durationMs(range);
    const withBand = this.form.band.checked, withForecast = this.form.forecast.checked;
    this.selector = selector;
    this.note.textContent = "loading…";
    let reply;
    try {
      reply = await api("query_range", { params: { selector, start: "now-" + range, band: withBand ? "true" : undefined } });
    } catch (err) {
      this.note.textContent = err.message;
      return;
    }
    const shown = reply.series.slice(0, MAX_SERIES);
    const series = [], bands = [];
    this.index.clear();
    shown.forEach((s, i) => {
      const color = PALETTE[i % PALETTE.length];
      this.index.set(seriesName(s.metric, s.labels), series.length);
      series.push({ label: seriesName(s.metric, s.labels), color });
      if (withBand && s.expected) {
        series.push({ label: "expected", color, kind: "band", dash: [2, 3] });
        series.push({ label: "upper", color, kind: "band" }, { label: "lower", color, kind: "band" });
        bands.push([series.length - 2, series.length - 1, "--band"]);
      }
    });
    const anomalyIndex = series.length;
    series.push({ label: "anomalies", color: "--critical", kind: "points" });
    this.chart.windowMs = this.form.live.checked ? rangeMs : null;
    this.chart.reset(series, bands);
    shown.forEach((s, i) => {
      const base = this.index.get(seriesName(s.metric, s.labels));
      this.chart.setColumn(base, s.timestamps, s.values);
      if (withBand && s.expected) {
        this.chart.setColumn(base + 1, s.timestamps, s.expected);
        this.chart.setColumn(base + 2, s.timestamps, s.upper);
        this.chart.setColumn(base + 3, s.timestamps, s.lower);
      }
    });
    const notes = [`${reply.series.length} series${reply.series.length > MAX_SERIES ? `, first ${MAX_SERIES} shown` : ""}`];
    try {
      const anomalies = await api("anomalies", { params: { selector, start: "now-" + range, limit: 500 } });
      for (const a of anomalies.anomalies) this.chart.set(anomalyIndex, a.start_ms, a.actual);
      notes.push(`${anomalies.anomalies.length} anomalies`);
    } catch { /* anomalies not available */ }
    if (withForecast) notes.push(await this._forecast(selector, rangeMs, series.length));
    this.note.textContent = notes.join(" · ") + " · drag to zoom, double-click to reset";
    this._tail(selector);
  }

  async _forecast(selector, rangeMs, first) {
    try {
      const horizon = rangeMs <= 3.6e6 ? "15m" : rangeMs <= 8.64e7 ? "1h" : "1d";
      const reply = await api("forecast", { params: { selector, horizon } });
      const s = reply.series[0];
      if (!s) return "no forecast";
      const series = [...this.chart.spec.series, { label: "forecast", color: "--s5", dash: [6, 4] },
        { label: "forecast upper", color: "--s5", kind: "band" }, { label: "forecast lower", color: "--s5", kind: "band" }];
      const bands = [...this.chart.spec.bands, [first + 1, first + 2, "--forecast"]];
      const rows = new Map(this.chart.rows);
      this.chart.reset(series, bands);
      for (const [ts, row] of rows) row.forEach((v, i) => v != null && this.chart.set(i, ts, v));
      this.chart.windowMs = null;
      this.chart.setColumn(first, s.timestamps, s.values);
      this.chart.setColumn(first + 1, s.timestamps, s.upper);
      this.chart.setColumn(first + 2, s.timestamps, s.lower);
      return `forecast ${horizon} ahead`;
    } catch (err) {
      return err.status === 404 ? "forecast not available on this server" : `forecast: ${err.message}`;
    }
  }

  _tail(selector) {
    this.tail.stop();
    if (!this.form.live.checked) return;
    this.tail.topics.clear();
    this.tail.subscribe("samples", { selector }, (m) => {
      if (m.type !== "samples") return;
      for (const s of m.series) {
        const i = this.index.get(seriesName(s.metric, s.labels));
        if (i !== undefined) this.chart.setColumn(i, s.timestamps, s.values);
      }
    });
    this.tail.start();
  }

  retheme() { if (this.chart) this.chart.rebuild(); }
}
