// Time-series charts on uPlot: points are set by (series, time) and merged on one x axis,
// redrawn at most once per animation frame; colours follow the theme.
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { fmtNumber } from "./format.js";

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

export const PALETTE = ["--s1", "--s2", "--s3", "--s4", "--s5", "--s6"];

/**
 * series: [{label, color?: "--s1", scale?: "y", kind?: "line" | "points" | "band", dash?}]
 * bands: [[upperIndex, lowerIndex, "--band"]] (indexes into series)
 */
export class TimeChart {
  constructor(el, { series = [], windowMs = null, height = 220, bands = [], axes = null } = {}) {
    this.el = el;
    this.windowMs = windowMs;
    this.height = height;
    this.rows = new Map(); // ts ms -> values[]
    this.spec = { series, bands, axes };
    this.plot = null;
    this._frame = 0;
    this.resizer = new ResizeObserver(() => this._resize());
    this.resizer.observe(el);
    this._build();
  }

  /** Replace the series list (explorer); keeps nothing. */
  reset(series, bands = []) {
    this.spec.series = series;
    this.spec.bands = bands;
    this.rows.clear();
    this._build();
  }

  set(index, tsMs, value) {
    let row = this.rows.get(tsMs);
    if (!row) { row = new Array(this.spec.series.length).fill(null); this.rows.set(tsMs, row); }
    row[index] = value == null || Number.isNaN(value) ? null : value;
    this._schedule();
  }

  setColumn(index, timestamps, values) {
    for (let i = 0; i < timestamps.length; i++) this.set(index, timestamps[i], values[i]);
  }

  clear() { this.rows.clear(); this._schedule(); }

  get size() { return this.rows.size; }

  rebuild() { this._build(); } // the theme changed

  destroy() { this.resizer.disconnect(); if (this.plot) this.plot.destroy(); }

  _schedule() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => { this._frame = 0; this._draw(); });
  }

  _columns() {
    if (this.windowMs) {
      const oldest = Date.now() - this.windowMs;
      for (const ts of this.rows.keys()) if (ts < oldest) this.rows.delete(ts);
    }
    const xs = [...this.rows.keys()].sort((a, b) => a - b);
    const cols = [xs.map((t) => t / 1000)];
    for (let i = 0; i < this.spec.series.length; i++) cols.push(xs.map((t) => this.rows.get(t)[i]));
    return cols;
  }

  _draw() {
    if (!this.plot) return;
    const keepZoom = this._zoomed;
    this.plot.setData(this._columns(), !keepZoom);
  }

  _build() {
    if (this.plot) this.plot.destroy();
    const fg = cssVar("--muted"), grid = cssVar("--grid");
    const scales = new Set(this.spec.series.map((s) => s.scale || "y"));
    const axis = (scale, side) => ({ scale, side, stroke: fg, grid: { stroke: grid, width: 1, show: side === 3 },
      ticks: { stroke: grid, width: 1 }, values: (u, vals) => vals.map((v) => fmtNumber(v)), size: 56 });
    const axes = [{ stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } }];
    [...scales].forEach((scale, i) => axes.push(axis(scale, i === 0 ? 3 : 1)));
    const series = [{}].concat(this.spec.series.map((s, i) => {
      const color = cssVar(s.color || PALETTE[i % PALETTE.length]);
      const base = { label: s.label, scale: s.scale || "y", stroke: color, width: 1.5, spanGaps: true,
        value: (u, v) => fmtNumber(v) };
      if (s.kind === "points") return { ...base, width: 0, paths: () => null, points: { show: true, size: 9, stroke: color, fill: color } };
      if (s.kind === "band") return { ...base, width: 0.5, dash: [4, 4], stroke: color };
      if (s.dash) base.dash = s.dash;
      return base;
    }));
    const bands = this.spec.bands.map(([upper, lower, fill]) => ({ series: [upper + 1, lower + 1], fill: cssVar(fill) }));
    const width = Math.max(this.el.clientWidth, 280);
    this._zoomed = false;
    this.plot = new uPlot({
      width, height: this.height, series, axes, bands,
      // A live chart spans its window even before it holds more than one point.
      scales: { x: { time: true, range: (u, min, max) => (this.windowMs && !this._zoomed
        ? [(Date.now() - this.windowMs) / 1000, Date.now() / 1000] : [min, max]) } },
      cursor: { drag: { x: true, y: false, setScale: true } },
      legend: { live: true },
      hooks: {
        setSelect: [() => { this._zoomed = true; }],
        ready: [(u) => u.over.addEventListener("dblclick", () => { this._zoomed = false; this._draw(); })],
      },
    }, this._columns(), this.el);
  }

  _resize() {
    if (!this.plot) return;
    const width = this.el.clientWidth;
    if (width > 0 && Math.abs(width - this.plot.width) > 2) this.plot.setSize({ width, height: this.height });
  }
}
