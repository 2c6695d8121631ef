// Hand-written SVG line charts: time on x, one or more series, gaps where data is
// missing, and a crosshair with the values under the pointer (mouse and touch).
import { el, svg, fmtDate } from "./ui.js";

const H = 180, PAD_R = 10, PAD_T = 10, PAD_B = 24;

export class LineChart {
  /**
   * @param {object} o  format(v) → text; yMin/yMax fix the axis (e.g. 0..100 for %).
   */
  constructor(o) {
    this.o = o;
    this.series = [];
    this.from = 0;
    this.to = 1;
    this.step = 0;
    this.svgEl = svg("svg", { class: "chart-svg", role: "img", "aria-label": o.title, height: H });
    this.tip = el("div", { class: "chart-tip", hidden: true });
    this.legend = el("div", { class: "chart-legend" });
    this.root = el("figure", { class: "chart" },
      el("figcaption", {}, o.title), this.svgEl, this.tip, this.legend);
    this.svgEl.addEventListener("pointermove", (e) => this.hover(e));
    this.svgEl.addEventListener("pointerdown", (e) => this.hover(e));
    this.svgEl.addEventListener("pointerleave", () => this.unhover());
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.root);
  }

  /// series: [{label, points: [[ts, v], …]}] sorted by time; step: bucket width (ms).
  set(series, from, to, step) {
    Object.assign(this, { series, from, to, step: step || 0 });
    this.draw();
  }

  /// Adds a live point to series `i` (creating it) and slides the window to `now`.
  push(label, ts, v, windowMs) {
    let s = this.series.find((x) => x.label === label);
    if (!s) { s = { label, points: [] }; this.series.push(s); }
    const last = s.points[s.points.length - 1];
    if (last && ts <= last[0]) return;
    s.points.push([ts, v]);
    this.to = Math.max(this.to, ts);
    this.from = this.to - windowMs;
    for (const x of this.series) while (x.points.length && x.points[0][0] < this.from) x.points.shift();
    this.draw();
  }

  points() { return this.series.reduce((n, s) => n + s.points.length, 0); }

  scaleY() {
    let lo = Infinity, hi = -Infinity;
    for (const s of this.series) for (const [, v] of s.points) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (this.o.yMin != null) lo = Math.min(this.o.yMin, lo);
    if (this.o.yMax != null) hi = Math.max(this.o.yMax, hi);
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi === lo) { hi = lo + 1; lo = lo - (lo > 0 ? Math.min(1, lo) : 1); }
    const span = hi - lo, mag = Math.pow(10, Math.floor(Math.log10(span / 4)));
    const stepY = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= 5) || mag * 10;
    return { lo: Math.floor(lo / stepY) * stepY, hi: Math.ceil(hi / stepY) * stepY, stepY };
  }

  draw() {
    const w = Math.max(200, Math.floor(this.root.clientWidth || 600));
    this.w = w;
    const { lo, hi, stepY } = (this.y = this.scaleY());
    const labels = [];
    for (let v = lo; v <= hi + stepY / 2; v += stepY) labels.push([v, this.o.format(v, true)]);
    // Room for the longest value label (about 6.5 px a character at 10.5 px).
    const PAD_L = (this.padL = Math.max(30, Math.ceil(Math.max(...labels.map(([, s]) => s.length)) * 6.5) + 8));
    const x = (ts) => PAD_L + ((ts - this.from) / (this.to - this.from || 1)) * (w - PAD_L - PAD_R);
    const y = (v) => PAD_T + (1 - (v - lo) / (hi - lo)) * (H - PAD_T - PAD_B);
    this.x = x; this.yf = y;
    const nodes = [];
    for (const [v, label] of labels) {
      nodes.push(svg("line", { class: "grid", x1: PAD_L, x2: w - PAD_R, y1: y(v), y2: y(v) }));
      nodes.push(svg("text", { class: "axis", x: PAD_L - 4, y: y(v) + 4, "text-anchor": "end" }, label));
    }
    const span = this.to - this.from;
    const fmt = span > 2 * 86400e3 ? { day: "2-digit", month: "2-digit" }
      : span > 86400e3 ? { weekday: "short", hour: "2-digit", minute: "2-digit" }
        : span > 600e3 ? { hour: "2-digit", minute: "2-digit" } : { hour: "2-digit", minute: "2-digit", second: "2-digit" };
    const ticks = Math.max(2, Math.min(6, Math.floor(w / 110)));
    for (let i = 0; i <= ticks; i++) {
      const ts = this.from + (span * i) / ticks;
      const anchor = i === 0 ? "start" : i === ticks ? "end" : "middle";
      nodes.push(svg("text", { class: "axis", x: x(ts), y: H - 6, "text-anchor": anchor },
        fmtDate(ts, fmt)));
    }
    // A gap longer than 3 buckets (or 3 median spacings) breaks the line.
    this.series.forEach((s, i) => {
      const pts = s.points;
      if (!pts.length) return;
      const gap = 3 * Math.max(this.step, medianSpacing(pts));
      let d = "";
      for (let j = 0; j < pts.length; j++) {
        const [ts, v] = pts[j];
        const jump = j === 0 || ts - pts[j - 1][0] > gap;
        d += (jump ? "M" : "L") + x(ts).toFixed(1) + " " + y(v).toFixed(1);
      }
      nodes.push(svg("path", { class: "line s" + (i % 6), d }));
      if (pts.length < 3) for (const [ts, v] of pts) nodes.push(svg("circle", { class: "dot s" + (i % 6), cx: x(ts), cy: y(v), r: 2.5 }));
    });
    this.cross = svg("line", { class: "cross", y1: PAD_T, y2: H - PAD_B, visibility: "hidden" });
    this.marks = svg("g", {});
    nodes.push(this.cross, this.marks);
    this.svgEl.setAttribute("viewBox", `0 0 ${w} ${H}`);
    this.svgEl.setAttribute("width", w);
    this.svgEl.replaceChildren(...nodes);
    this.svgEl.dataset.points = String(this.points());
    this.legend.replaceChildren(...(this.series.length > 1 || this.series[0]?.label
      ? this.series.map((s, i) => el("span", { class: "key s" + (i % 6) }, s.label || this.o.title)) : []));
  }

  hover(e) {
    if (!this.series.length || !this.x) return;
    const box = this.svgEl.getBoundingClientRect();
    const px = ((e.clientX - box.left) / box.width) * this.w;
    const ts = this.from + ((px - this.padL) / (this.w - this.padL - PAD_R)) * (this.to - this.from);
    const rows = [];
    const marks = [];
    let at = null;
    this.series.forEach((s, i) => {
      const p = nearest(s.points, ts);
      if (!p) return;
      at = at ?? p[0];
      rows.push(el("div", { class: "key s" + (i % 6) }, (s.label ? s.label + ": " : "") + this.o.format(p[1])));
      marks.push(svg("circle", { class: "dot s" + (i % 6), cx: this.x(p[0]), cy: this.yf(p[1]), r: 3.5 }));
    });
    if (at == null) return this.unhover();
    const cx = this.x(at);
    this.cross.setAttribute("x1", cx);
    this.cross.setAttribute("x2", cx);
    this.cross.setAttribute("visibility", "visible");
    this.marks.replaceChildren(...marks);
    this.tip.replaceChildren(el("div", { class: "when" }, fmtDate(at, { dateStyle: "short", timeStyle: "medium" })), ...rows);
    this.tip.hidden = false;
    const left = (cx / this.w) * box.width;
    this.tip.classList.toggle("flip", left > box.width / 2);
    this.tip.dataset.x = String(Math.round(left));
    this.tip.style.setProperty("--x", Math.round(left) + "px");
  }

  unhover() {
    this.tip.hidden = true;
    this.cross?.setAttribute("visibility", "hidden");
    this.marks?.replaceChildren();
  }

  destroy() { this.resize.disconnect(); }
}

function medianSpacing(pts) {
  if (pts.length < 2) return 0;
  const d = [];
  for (let i = 1; i < pts.length; i += Math.max(1, Math.floor(pts.length / 50))) d.push(pts[i][0] - pts[i - 1][0]);
  d.sort((a, b) => a - b);
  return d[Math.floor(d.length / 2)];
}

/// The point of `pts` (sorted by time) closest to `ts`, by binary search.
function nearest(pts, ts) {
  if (!pts.length) return null;
  let lo = 0, hi = pts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pts[mid][0] < ts) lo = mid + 1; else hi = mid;
  }
  const a = pts[Math.max(0, lo - 1)], b = pts[lo];
  return Math.abs(a[0] - ts) <= Math.abs(b[0] - ts) ? a : b;
}
