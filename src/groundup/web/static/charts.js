// The charts, drawn by hand on <canvas>: the loss and accuracy curves, and the
// histogram of the weights. No library: a few lines of canvas each.
import { $ } from "./dom.js";

export const C = {
  blue: "#2166ac", red: "#b2182b", orange: "#e08214", green: "#1a9850",
  grey: "#c3c8d1", ink: "#1d2330", muted: "#5d6678", line: "#e6e9ee",
};

function fitCanvas(canvas) {
  // draw at the screen's pixel density, so lines stay sharp
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300;
  const h = canvas.clientHeight || 150;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return [ctx, w, h];
}

function niceStep(range, count) {
  const raw = range / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

function lineChart(canvas, { series, xMax, yMin, yMax, format, empty }) {
  const [ctx, w, h] = fitCanvas(canvas);
  const m = { l: 48, r: 12, t: 28, b: 28 };
  const X = (x) => m.l + (x / xMax) * (w - m.l - m.r);
  const Y = (y) => h - m.b - ((Math.min(Math.max(y, yMin), yMax) - yMin) / (yMax - yMin)) * (h - m.t - m.b);
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  // grid and axis labels
  const ys = niceStep(yMax - yMin, 4);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let y = Math.ceil(yMin / ys) * ys; y <= yMax + 1e-9; y += ys) {
    ctx.strokeStyle = C.line;
    ctx.beginPath(); ctx.moveTo(m.l, Y(y)); ctx.lineTo(w - m.r, Y(y)); ctx.stroke();
    ctx.fillStyle = C.muted;
    ctx.fillText(format(y), m.l - 6, Y(y));
  }
  const xs = Math.max(1, niceStep(xMax, 8));
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let x = 0; x <= xMax + 1e-9; x += xs) {
    ctx.fillStyle = C.muted;
    ctx.fillText(String(Math.round(x)), X(x), h - m.b + 6);
  }
  ctx.strokeStyle = C.muted;
  ctx.beginPath(); ctx.moveTo(m.l, m.t - 4); ctx.lineTo(m.l, h - m.b); ctx.lineTo(w - m.r, h - m.b); ctx.stroke();
  // the series
  for (const s of series) {
    if (!s.points.length) continue;
    ctx.strokeStyle = s.color;
    ctx.lineWidth = s.width || 2;
    ctx.beginPath();
    s.points.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    ctx.stroke();
    if (s.dots) {
      ctx.fillStyle = s.color;
      for (const [x, y] of s.points) { ctx.beginPath(); ctx.arc(X(x), Y(y), 2.5, 0, 2 * Math.PI); ctx.fill(); }
    }
  }
  // the legend, across the top
  let lx = m.l + 4;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 3;
    ctx.beginPath(); ctx.moveTo(lx, 12); ctx.lineTo(lx + 16, 12); ctx.stroke();
    ctx.fillStyle = C.ink;
    ctx.fillText(s.label, lx + 21, 12);
    lx += 21 + ctx.measureText(s.label).width + 16;
  }
  if (empty) {
    ctx.fillStyle = C.muted;
    ctx.textAlign = "center";
    ctx.font = "13px system-ui, sans-serif";
    ctx.fillText(empty, (m.l + w - m.r) / 2, (m.t + h - m.b) / 2);
  }
}

let pending = null; // the run to draw at the next frame, if one is asked for

// Redraw both curves for `run` ({history, points, epochs}), at most once a frame.
export function drawCharts(run) {
  const first = pending === null;
  pending = run;
  if (!first) return;
  requestAnimationFrame(() => {
    const r = pending;
    pending = null;
    drawLossChart(r);
    drawAccuracyChart(r);
  });
}

function drawLossChart(run) {
  const canvas = $("loss-chart");
  const train = run.history.map((r) => [r.epoch, r.train_loss]);
  const valid = run.history.map((r) => [r.epoch, r.valid_loss]);
  const all = [...run.points.map((p) => p[1]), ...train.map((p) => p[1]), ...valid.map((p) => p[1])];
  const top = all.length ? Math.max(...all) : 1;
  const lastX = run.points.length ? run.points[run.points.length - 1][0] : 0;
  lineChart(canvas, {
    series: [
      { label: "each batch", color: C.grey, width: 1.2, points: run.points },
      { label: "train (epoch mean)", color: C.orange, dots: true, points: train },
      { label: "validation", color: C.blue, dots: true, points: valid },
    ],
    xMax: Math.max(run.epochs || 1, lastX, 1),
    yMin: 0,
    yMax: top > 0 ? top * 1.08 : 1,
    format: (v) => v.toFixed(top < 0.1 ? 3 : 2),
    empty: run.points.length ? "" : "No batches yet: press Start or Step",
  });
  canvas.dataset.points = String(run.points.length);
}

function drawAccuracyChart(run) {
  const canvas = $("acc-chart");
  const acc = run.history.filter((r) => r.accuracy !== undefined).map((r) => [r.epoch, r.accuracy]);
  const train = run.history.filter((r) => r.train_accuracy !== undefined).map((r) => [r.epoch, r.train_accuracy]);
  const low = acc.length ? Math.min(...acc.map((p) => p[1]), ...train.map((p) => p[1])) : 0.5;
  const yMin = acc.length ? Math.max(0, Math.min(0.5, Math.floor((low - 0.02) * 10) / 10)) : 0.5;
  lineChart(canvas, {
    series: [
      { label: "training batches", color: C.orange, dots: true, points: train },
      { label: "validation", color: C.green, dots: true, points: acc },
    ],
    xMax: Math.max(run.epochs || 1, 1),
    yMin,
    yMax: 1,
    format: (v) => `${Math.round(v * 100)}%`,
    empty: acc.length ? "" : "Measured after each epoch",
  });
  canvas.dataset.epochs = String(acc.length);
  if (acc.length) {
    canvas.setAttribute("aria-label", `Validation accuracy after epoch ${acc[acc.length - 1][0]}: ${(100 * acc[acc.length - 1][1]).toFixed(1)}%`);
  }
}

export function drawHistogram(hist) {
  const canvas = $("hist-chart");
  const [ctx, w, h] = fitCanvas(canvas);
  const m = { l: 10, r: 10, t: 10, b: 22 };
  const n = hist.now.length;
  const top = Math.max(1, ...hist.now, ...hist.start);
  const bw = (w - m.l - m.r) / n;
  const Y = (c) => h - m.b - (c / top) * (h - m.t - m.b);
  ctx.fillStyle = "rgba(33, 102, 172, 0.75)";
  hist.now.forEach((c, i) => ctx.fillRect(m.l + i * bw + 0.5, Y(c), bw - 1, h - m.b - Y(c)));
  ctx.strokeStyle = "#6b7280";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  hist.start.forEach((c, i) => {
    const x = m.l + i * bw;
    if (i === 0) ctx.moveTo(x, Y(c)); else ctx.lineTo(x, Y(c));
    ctx.lineTo(x + bw, Y(c));
  });
  ctx.stroke();
  ctx.strokeStyle = C.muted;
  ctx.beginPath(); ctx.moveTo(m.l, h - m.b); ctx.lineTo(w - m.r, h - m.b); ctx.stroke();
  ctx.fillStyle = C.muted;
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "top";
  const lo = hist.edges[0];
  const hi = hist.edges[hist.edges.length - 1];
  ctx.textAlign = "left"; ctx.fillText(lo.toPrecision(2), m.l, h - m.b + 5);
  ctx.textAlign = "center"; ctx.fillText("0", w / 2, h - m.b + 5);
  ctx.textAlign = "right"; ctx.fillText(hi.toPrecision(2), w - m.r, h - m.b + 5);
  ctx.textAlign = "right"; ctx.textBaseline = "top";
  ctx.fillStyle = "#6b7280"; ctx.fillText("— at the start", w - m.r, m.t);
  ctx.fillStyle = C.blue; ctx.fillText("■ now", w - m.r, m.t + 14);
}
