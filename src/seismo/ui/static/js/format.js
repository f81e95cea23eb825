// Numbers and times for people: the browser's locale and time zone.
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "medium" });

export const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;

export function fmtTime(ms) { return ms == null ? "–" : timeFmt.format(new Date(ms)); }

export function fmtDateTime(ms) { return ms == null ? "–" : dateTimeFmt.format(new Date(ms)); }

export function fmtAgo(ms) {
  if (ms == null) return "–";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return `${(s / 86400).toFixed(1)} d ago`;
}

export function fmtNumber(v, digits = 2) {
  if (v == null || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + " G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + " M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + " k";
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(a < 1 ? Math.max(digits, 3) : digits);
}

export function fmtPercent(v, digits = 1) { return v == null ? "–" : v.toFixed(digits) + " %"; }

export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export function labelsHtml(labels, skip = []) {
  return Object.entries(labels || {}).filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `<code>${escapeHtml(k)}=${escapeHtml(v)}</code>`).join("");
}

export function seriesName(metric, labels) {
  const inner = Object.entries(labels || {}).map(([k, v]) => `${k}="${v}"`).join(", ");
  return inner ? `${metric}{${inner}}` : metric;
}

const reduceMotion = matchMedia("(prefers-reduced-motion: reduce)");

/** Count `el` from the number it shows to `to` in ~400 ms; `format` renders a number. */
export function animateNumber(el, to, format) {
  const from = Number(el.dataset.value);
  el.dataset.value = String(to);
  if (to == null || Number.isNaN(to)) { el.textContent = "–"; return; }
  if (!Number.isFinite(from) || from === to || reduceMotion.matches || document.hidden) {
    el.textContent = format(to);
    return;
  }
  const start = performance.now(), span = 400;
  const step = (now) => {
    if (el.dataset.value !== String(to)) return; // a newer value took over
    const t = Math.min(1, (now - start) / span), eased = 1 - (1 - t) ** 3;
    el.textContent = format(from + (to - from) * eased);
    if (t < 1) requestAnimationFrame(step);
    else el.textContent = format(to);
  };
  requestAnimationFrame(step);
}

/** A duration like 5m, 2h, 7d in milliseconds. */
export function durationMs(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8 }[m[2]];
}

export function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(el._timer);
  el._timer = setTimeout(() => el.classList.remove("show"), 3500);
}
