// groundup's page: plain JavaScript, no library, nothing loaded from elsewhere.
// The server pushes the run as Server-Sent Events (/api/events, see web/jobs.py);
// the buttons, the drawing pad and the image browser call the JSON API (web/app.py).
"use strict";

const $ = (id) => document.getElementById(id);
const STEPS = ["init", "predict", "loss", "gradient", "step", "repeat", "stop"];
const C = {
  blue: "#2166ac", red: "#b2182b", orange: "#e08214", green: "#1a9850",
  grey: "#c3c8d1", ink: "#1d2330", muted: "#5d6678", line: "#e6e9ee",
};
const PAGE = 48; // thumbnails per page of the image browser

// What this page knows of the run; the server is the source of truth.
const run = {
  state: "", digits: [2, 9], model: "linear", epochs: 20, epoch: 0, batches: 1,
  history: [], points: [], lastX: -Infinity, lastPhaseAt: 0, dataKey: "",
};

// ---- talking to the server -------------------------------------------------------------

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const res = await fetch(path, options);
  let data = {};
  try { data = await res.json(); } catch (err) { /* an answer that is not JSON */ }
  if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
  return data;
}

function say(text, isError = false) {
  const m = $("message");
  m.textContent = text;
  m.classList.toggle("error", isError);
}

async function act(path, body = {}) {
  try {
    return await api(path, body);
  } catch (err) {
    say(err.message, true);
    return null;
  }
}

function connect() {
  const es = new EventSource("/api/events");
  const on = (type, fn) => es.addEventListener(type, (e) => fn(JSON.parse(e.data)));
  on("snapshot", onSnapshot);
  on("state", onState);
  on("phase", onPhase);
  on("batch", onBatch);
  on("epoch", onEpoch);
  on("lr", onLr);
  on("watchers", (e) => showWatchers(e.count));
  es.onerror = () => {
    $("state-label").textContent = "reconnecting…";
    $("state-dot").className = "dot";
  };
}

// ---- the settings form and the buttons ---------------------------------------------------

function number(text) {
  // a number when the field holds one; otherwise the text, so the server names the mistake
  const v = Number(text);
  return text.trim() !== "" && Number.isFinite(v) ? v : text;
}

function readSettings() {
  const s = {
    model: $("model").value,
    init: $("init").value,
    seed: number($("seed").value),
    batch_size: number($("batch-size").value),
    delay: Number($("speed").value) / 1000,
  };
  s.digits = $("all-digits").checked ? "all" : `${$("digit-a").value} ${$("digit-b").value}`;
  if ($("opt").value) s.opt = $("opt").value;
  if ($("lr").value.trim() !== "") s.lr = number($("lr").value);
  if ($("epochs").value.trim() !== "") s.epochs = number($("epochs").value);
  return s;
}

function defaultLr() {
  const opt = $("opt").value;
  if (opt === "adam" || (opt === "" && $("all-digits").checked)) return 0.003;
  return $("model").value === "linear" ? 1 : 0.1;
}

function defaultsChanged() {
  $("lr").value = defaultLr();
  $("epochs").placeholder = $("model").value === "linear" || $("all-digits").checked ? "20" : "40";
  const all = $("all-digits").checked;
  $("digit-a").disabled = all;
  $("digit-b").disabled = all;
  suggestName();
}

function fillForm(s, lr, delay) {
  const all = s.digits.length === 10;
  $("all-digits").checked = all;
  if (!all) {
    $("digit-a").value = s.digits[0];
    $("digit-b").value = s.digits[1];
  }
  $("digit-a").disabled = all;
  $("digit-b").disabled = all;
  $("model").value = s.model;
  $("init").value = s.init;
  $("opt").value = s.opt || "";
  $("batch-size").value = s.batch_size;
  $("epochs").value = s.epochs ?? "";
  $("epochs").placeholder = s.model === "linear" || all ? "20" : "40";
  $("seed").value = s.seed;
  if (document.activeElement !== $("lr")) $("lr").value = lr;
  $("speed").value = Math.round(delay * 1000);
  $("speed-out").textContent = speedText(delay * 1000);
}

function speedText(ms) {
  if (ms <= 0) return "full speed";
  return ms >= 400 ? `${ms} ms a batch: each step shown` : `${ms} ms a batch`;
}

function choicesValid() {
  if (!$("all-digits").checked && $("digit-a").value === $("digit-b").value) {
    say("Choose two different digits, or all ten.", true);
    return false;
  }
  return true;
}

function updateControls() {
  const s = run.state;
  const active = s === "running" || s === "paused";
  $("btn-start").disabled = s === "running" || s === "";
  $("btn-start").textContent = s === "paused" ? "Resume" : "Start";
  $("btn-pause").disabled = s !== "running";
  $("btn-step").disabled = !(s === "ready" || s === "paused");
  $("btn-reset").disabled = s === "";
  $("btn-stop").disabled = !active;
  $("choices").disabled = active;
}

function setupControls() {
  for (const id of ["digit-a", "digit-b"]) {
    for (let d = 0; d <= 9; d++) $(id).add(new Option(String(d), String(d)));
  }
  $("digit-a").value = "2";
  $("digit-b").value = "9";
  for (const id of ["model", "opt", "all-digits"]) $(id).addEventListener("change", defaultsChanged);
  for (const id of ["digit-a", "digit-b"]) $(id).addEventListener("change", suggestName);
  // Before a run starts, a new choice sets up a new ready run at once, so the page
  // shows its initial weights: step 1, initialise, made visible.
  for (const id of ["digit-a", "digit-b", "all-digits", "model", "init", "opt", "batch-size", "epochs", "seed"]) {
    $(id).addEventListener("change", () => {
      if (run.state === "ready" && choicesValid()) act("/api/train/reset", readSettings());
    });
  }

  $("btn-start").addEventListener("click", async () => {
    if (run.state === "paused") return act("/api/train/resume");
    if (!choicesValid()) return;
    if (await act("/api/train/start", readSettings())) say("Training: watch the curves and the weights.");
  });
  $("btn-pause").addEventListener("click", () => act("/api/train/pause"));
  $("btn-step").addEventListener("click", () => {
    if (run.state !== "ready") return act("/api/train/step");
    if (choicesValid()) act("/api/train/step", readSettings());
  });
  $("btn-reset").addEventListener("click", () => act("/api/train/reset"));
  $("btn-stop").addEventListener("click", () => act("/api/train/stop"));

  $("lr").addEventListener("change", async () => {
    if (run.state === "ready" && choicesValid()) return act("/api/train/reset", readSettings());
    if (run.state !== "running" && run.state !== "paused") return; // sent with Start
    const r = await act("/api/train/lr", { lr: number($("lr").value) });
    if (r) say(`Learning rate is now ${r.lr}: it applies from the next batch.`);
  });
  $("speed").addEventListener("input", () => {
    $("speed-out").textContent = speedText(Number($("speed").value));
  });
  $("speed").addEventListener("change", () => {
    act("/api/train/speed", { delay: Number($("speed").value) / 1000 });
  });
}

// ---- live events -------------------------------------------------------------------------

function onSnapshot(s) {
  run.history = s.history.slice();
  run.points = s.points.slice();
  run.lastX = run.points.length ? run.points[run.points.length - 1][0] : -Infinity;
  onState(s);
  fillForm(s.settings, s.lr, s.delay);
  showWeights(s);
  $("grad-img").removeAttribute("src");
  drawCharts();
  if (s.state === "ready") light("init", s.message);
  const key = `${s.digits.join(",")}|${s.model}|${s.train_size}`;
  if (key !== run.dataKey) {
    run.dataKey = key;
    browser.page = 0;
    loadThumbs();
  }
  suggestName();
  repredict(true);
}

function onState(s) {
  const was = run.state;
  run.state = s.state;
  run.digits = s.digits;
  run.model = s.model;
  run.epochs = s.epochs || run.epochs;
  run.epoch = s.epoch;
  run.batches = s.batches || run.batches;
  $("state-label").textContent = s.state;
  $("state-dot").className = `dot ${s.state}`;
  showProgress();
  showWatchers(s.watchers);
  if (s.message) say(s.message, s.state === "failed");
  updateControls();
  if (was !== s.state && ["done", "stopped", "paused", "failed"].includes(s.state)) {
    repredict(true);
    loadThumbs();
  }
}

function showProgress(batch) {
  let text = `epoch ${run.epoch}/${run.epochs}`;
  if (batch !== undefined && run.state === "running") text += ` · batch ${batch}/${run.batches}`;
  $("progress").textContent = text;
}

function showWatchers(n) {
  if (n === undefined) return;
  $("watchers").textContent = `${n} page${n === 1 ? "" : "s"} watching`;
}

function onBatch(b) {
  for (const p of b.points) {
    if (p[0] > run.lastX) {
      run.points.push(p);
      run.lastX = p[0];
    }
  }
  run.epoch = b.epoch;
  showProgress(b.batch);
  showWeights(b);
  // At speed, the steps come too fast to send one by one: show the loop going round.
  if (performance.now() - run.lastPhaseAt > 1000) flashLoop();
  drawCharts();
}

function onEpoch(e) {
  const row = e.row;
  const i = run.history.findIndex((r) => r.epoch === row.epoch);
  if (i >= 0) run.history[i] = row; else run.history.push(row);
  run.history.sort((a, b) => a.epoch - b.epoch);
  run.epoch = row.epoch;
  run.epochs = e.epochs || run.epochs;
  showProgress();
  const acc = row.accuracy !== undefined ? `, validation accuracy ${(100 * row.accuracy).toFixed(1)}%` : "";
  light("repeat", `Step 6, repeat: epoch ${row.epoch} done, validation loss ${row.valid_loss.toFixed(4)}${acc}`);
  drawCharts();
  repredict();
}

function onPhase(p) {
  if (p.step !== "init" && p.step !== "stop") run.lastPhaseAt = performance.now();
  const n = STEPS.indexOf(p.step) + 1;
  light(p.step, `Step ${n}, ${p.step}: ${p.detail}`);
  if (p.image) {
    $("grad-img").src = p.image;
  }
}

function onLr(e) {
  if (document.activeElement !== $("lr")) $("lr").value = e.lr;
}

// ---- the seven steps ---------------------------------------------------------------------

let lightTimer = 0;
function light(step, detail) {
  for (const s of STEPS) $(`step-${s}`).classList.toggle("lit", s === step);
  if (detail) $("phase-detail").textContent = detail;
  clearTimeout(lightTimer);
  const hold = step === "init" || step === "stop" ? 4000 : 1200;
  lightTimer = setTimeout(() => $(`step-${step}`).classList.remove("lit"), hold);
}

let flashing = false;
function flashLoop() {
  if (flashing) return;
  flashing = true;
  const order = ["predict", "loss", "gradient", "step"];
  order.forEach((s, i) => setTimeout(() => {
    for (const t of STEPS) $(`step-${t}`).classList.toggle("lit", t === s);
    if (i === order.length - 1) {
      setTimeout(() => { $(`step-${s}`).classList.remove("lit"); flashing = false; }, 60);
    }
  }, i * 60));
}

// ---- pictures of the weights -------------------------------------------------------------

function showWeights(ev) {
  if (!ev.weights) return;
  const img = $("weights-img");
  img.src = ev.weights;
  img.classList.toggle("many", ev.tiles > 1);
  $("grad-img").classList.toggle("many", ev.tiles > 1);
  const [a, b] = run.digits;
  let caption;
  if (run.model === "linear" && run.digits.length === 2) {
    caption = `Weights: one per pixel. Blue: ink there says ${a}; red: ink there says ${b}`;
  } else if (run.model === "linear") {
    caption = `Weights of each digit's output, ${run.digits.join(", ")}: blue raises that digit's score`;
  } else {
    const some = ev.tiles < ev.units ? `the first ${ev.tiles} of ${ev.units}` : `all ${ev.units}`;
    caption = `First layer: ${some} hidden units, each a 28×28 image of its 784 weights`;
  }
  $("weights-caption").textContent = caption;
  $("scale-neg").textContent = (-ev.scale).toPrecision(3);
  $("scale-pos").textContent = `+${ev.scale.toPrecision(3)}`;
  if (ev.hist) drawHistogram(ev.hist);
}

// ---- charts, drawn by hand on <canvas> ---------------------------------------------------

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

let chartsPending = false;
function drawCharts() {
  if (chartsPending) return;
  chartsPending = true;
  requestAnimationFrame(() => {
    chartsPending = false;
    drawLossChart();
    drawAccuracyChart();
  });
}

function drawLossChart() {
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

function drawAccuracyChart() {
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

function drawHistogram(hist) {
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

// ---- the drawing pad ---------------------------------------------------------------------

const pad = { drawing: false, ink: false, last: null, seq: 0, busy: false, again: false, lastAuto: 0, page: 0 };

function padContext() {
  const ctx = $("draw-canvas").getContext("2d");
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineWidth = 20; // on 280 px: about 2 of MNIST's 28 px, as its pen strokes are
  return ctx;
}

function clearPad() {
  const canvas = $("draw-canvas");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#000"; // an opaque black page, like MNIST's background
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  pad.ink = false;
  pad.page += 1; // a new page: an answer still on its way was for the old drawing
  pad.again = false;
  $("prediction-digit").textContent = "?";
  $("prob-bars").textContent = "";
  $("pred-note").textContent = "Draw a digit on the black pad.";
  for (const id of ["input-canvas", "contrib-canvas"]) {
    const c = $(id);
    c.getContext("2d").clearRect(0, 0, c.width, c.height);
  }
}

function setupPad() {
  const canvas = $("draw-canvas");
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
  };
  canvas.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    $("tooltip").classList.remove("show");
    canvas.setPointerCapture(e.pointerId);
    pad.drawing = true;
    pad.last = at(e);
    const ctx = padContext();
    ctx.beginPath();
    ctx.arc(pad.last[0], pad.last[1], ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    pad.ink = true;
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!pad.drawing) return;
    const ctx = padContext();
    // a busy page gets one pointermove per frame; the positions in between come with
    // it as coalesced events, and a fast stroke needs them to keep its shape
    const moves = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const m of moves.length ? moves : [e]) {
      const p = at(m);
      ctx.beginPath();
      ctx.moveTo(pad.last[0], pad.last[1]);
      ctx.lineTo(p[0], p[1]);
      ctx.stroke();
      pad.last = p;
    }
  });
  const end = () => {
    if (!pad.drawing) return;
    pad.drawing = false;
    predictPad();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  $("btn-clear").addEventListener("click", clearPad);
  clearPad();
}

async function predictPad() {
  if (!pad.ink) return;
  if (pad.busy) { pad.again = true; return; }
  pad.busy = true;
  // data-pending: 1 until the answer for the drawing as it is now has been shown
  $("prediction-digit").dataset.pending = "1";
  const page = pad.page;
  try {
    const data = await api("/api/predict", { image: $("draw-canvas").toDataURL("image/png") });
    if (page === pad.page) showPrediction(data);
  } catch (err) {
    if (page === pad.page) $("pred-note").textContent = err.message;
  } finally {
    pad.busy = false;
    if (pad.again) {
      pad.again = false;
      predictPad();
    } else {
      $("prediction-digit").dataset.pending = "0";
    }
  }
}

function repredict(now = false) {
  // as the model learns, the answer for the drawing on the pad changes: ask again
  const t = performance.now();
  if (!pad.ink || (!now && t - pad.lastAuto < 700)) return;
  pad.lastAuto = t;
  predictPad();
}

function diverging(t) {
  const a = Math.min(1, Math.abs(t));
  const end = t >= 0 ? [33, 102, 172] : [178, 24, 43];
  return end.map((c) => Math.round(255 + a * (c - 255)));
}

function paintGrid(canvas, grid, colour) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(28, 28);
  for (let r = 0; r < 28; r++) {
    for (let c = 0; c < 28; c++) {
      const [R, G, B] = colour(grid[r][c]);
      const i = 4 * (r * 28 + c);
      img.data[i] = R; img.data[i + 1] = G; img.data[i + 2] = B; img.data[i + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
}

function probabilityBars(box, digits, probs) {
  box.textContent = "";
  const best = probs.indexOf(Math.max(...probs));
  digits.forEach((d, i) => {
    const row = document.createElement("div");
    row.className = `bar${i === best ? " best" : ""}`;
    const label = document.createElement("span");
    label.textContent = d;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.display = "block";
    fill.style.width = `${(100 * probs[i]).toFixed(1)}%`;
    track.appendChild(fill);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = `${(100 * probs[i]).toFixed(1)}%`;
    row.append(label, track, pct);
    row.setAttribute("aria-label", `${d}: ${(100 * probs[i]).toFixed(1)} percent`);
    box.appendChild(row);
  });
}

function showPrediction(data) {
  const el = $("prediction-digit");
  el.textContent = String(data.prediction);
  pad.seq += 1;
  el.dataset.seq = String(pad.seq);
  probabilityBars($("prob-bars"), data.digits, data.probs);
  paintGrid($("input-canvas"), data.input, (v) => { const g = Math.round(255 * v); return [g, g, g]; });
  const contribCanvas = $("contrib-canvas");
  let note = data.epoch ? `Model after ${data.epoch} epoch${data.epoch === 1 ? "" : "s"}.` : "The model is untrained: its answer is a guess. Train it and watch the answer change.";
  if (data.contribution) {
    const top = Math.max(1e-9, ...data.contribution.flat().map(Math.abs));
    paintGrid(contribCanvas, data.contribution, (v) => diverging(v / top));
    const sum = data.score - data.bias;
    $("contrib-caption").textContent = `Each pixel's contribution (weight × pixel): sum ${sum.toFixed(2)} + bias ${data.bias.toFixed(2)} = score ${data.score.toFixed(2)}; blue pushes towards ${data.towards}`;
  } else {
    contribCanvas.getContext("2d").clearRect(0, 0, 28, 28);
    $("contrib-caption").textContent = "Contributions are shown for the linear model only: a net mixes the pixels in its hidden layer first.";
  }
  $("pred-note").textContent = note;
}

// ---- the image browser -------------------------------------------------------------------

const browser = { page: 0, total: 0, selected: null, loading: false };

async function loadThumbs() {
  if (browser.loading) return;
  browser.loading = true;
  const split = $("split").value;
  try {
    const data = await api(`/api/data?split=${split}&offset=${browser.page * PAGE}&limit=${PAGE}`);
    browser.total = data.total;
    const box = $("thumbs");
    $("tooltip").classList.remove("show"); // its element may be about to go
    box.textContent = "";
    let wrong = 0;
    for (const item of data.items) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "thumb";
      b.setAttribute("role", "listitem");
      const ok = item.label === item.predicted;
      if (!ok) { b.classList.add("wrong"); wrong += 1; }
      if (browser.selected === item.index) b.classList.add("selected");
      const says = ok ? "the model gets it right" : `the model says ${item.predicted}: wrong`;
      b.setAttribute("aria-label", `image ${item.index}: a ${item.label}; ${says}`);
      attachTip(b, `Image ${item.index}, a ${item.label}: ${says}. Click for its pixel values.`);
      const img = document.createElement("img");
      img.src = item.src;
      img.alt = "";
      const cap = document.createElement("span");
      cap.textContent = ok ? `${item.label}` : `${item.label} → ${item.predicted}`;
      b.append(img, cap);
      b.addEventListener("click", () => {
        for (const t of box.querySelectorAll(".thumb.selected")) t.classList.remove("selected");
        b.classList.add("selected");
        showDetail(item.index);
      });
      box.appendChild(b);
    }
    const first = data.offset + 1;
    const last = data.offset + data.items.length;
    $("data-range").textContent = `${first}–${last} of ${data.total} ${split === "train" ? "training" : "validation"} images. `
      + `Red border: the model gets it wrong (${wrong} here).`;
    $("btn-prev").disabled = browser.page === 0;
    $("btn-next").disabled = last >= data.total;
  } catch (err) {
    $("data-range").textContent = err.message;
  } finally {
    browser.loading = false;
  }
}

async function showDetail(index) {
  browser.selected = index;
  const split = $("split").value;
  let data;
  try {
    data = await api(`/api/data/${index}?split=${split}`);
  } catch (err) {
    $("detail").textContent = err.message;
    return;
  }
  const box = $("detail");
  box.textContent = "";
  const head = document.createElement("div");
  head.className = "detail-head";
  const pct = (100 * data.probs[data.digits.indexOf(data.prediction)]).toFixed(1);
  const text = document.createElement("div");
  text.textContent = `Image ${index}: a ${data.label}. The model says ${data.prediction} (${pct}%). `
    + "Each cell is one pixel, 0 (black) to 255 (white); the model reads them divided by 255.";
  head.appendChild(text);
  box.appendChild(head);
  const table = document.createElement("table");
  table.className = "pixels";
  table.setAttribute("aria-label", `The 28 by 28 pixel values of image ${index}`);
  for (const row of data.pixels) {
    const tr = document.createElement("tr");
    for (const v of row) {
      const td = document.createElement("td");
      td.textContent = v;
      // light ink shown dark on white, as fastbook's pixel tables do
      const g = 255 - v;
      td.style.background = `rgb(${g},${g},${g})`;
      td.style.color = v > 128 ? "#fff" : v > 0 ? "#000" : "#ccc";
      tr.appendChild(td);
    }
    table.appendChild(tr);
  }
  box.appendChild(table);
}

function setupBrowser() {
  $("split").addEventListener("change", () => { browser.page = 0; loadThumbs(); });
  $("btn-prev").addEventListener("click", () => { browser.page = Math.max(0, browser.page - 1); loadThumbs(); });
  $("btn-next").addEventListener("click", () => { browser.page += 1; loadThumbs(); });
}

// ---- saving ------------------------------------------------------------------------------

let nameEdited = false;
function suggestName() {
  if (nameEdited) return;
  const digits = $("all-digits").checked ? "all" : `${$("digit-a").value}v${$("digit-b").value}`;
  $("run-name").value = `web-${$("model").value}-${digits}`;
}

function setupSave() {
  $("run-name").addEventListener("input", () => { nameEdited = true; });
  $("save-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const r = await api("/api/save", { name: $("run-name").value.trim() });
      const acc = r.final && r.final.accuracy !== undefined ? `, validation accuracy ${(100 * r.final.accuracy).toFixed(1)}%` : "";
      $("save-result").textContent = `Saved after ${r.epochs} epochs${acc} to\n  ${r.path}\n\nUse it from a terminal:\n  ${r.commands.join("\n  ")}`;
    } catch (err) {
      $("save-result").textContent = err.message;
    }
  });
}

// ---- explanations on hover and focus -------------------------------------------------------

function showTip(el, text) {
  const tip = $("tooltip");
  tip.textContent = text;
  tip.classList.add("show");
  const r = el.getBoundingClientRect();
  const t = tip.getBoundingClientRect();
  let y = r.bottom + 8;
  if (y + t.height > window.innerHeight - 4) y = Math.max(4, r.top - t.height - 8);
  const x = Math.max(4, Math.min(r.left, window.innerWidth - t.width - 8));
  tip.style.left = `${x}px`;
  tip.style.top = `${y}px`;
}

function attachTip(el, text) {
  const hide = () => $("tooltip").classList.remove("show");
  el.addEventListener("mouseenter", () => showTip(el, text));
  el.addEventListener("focus", () => showTip(el, text));
  el.addEventListener("mouseleave", hide);
  el.addEventListener("blur", hide);
}

function setupTips() {
  let n = 0;
  for (const el of document.querySelectorAll("[data-tip]")) {
    // the text is also the element's accessible description, for screen readers
    const desc = document.createElement("span");
    desc.id = `tip-${++n}`;
    desc.className = "sr-only";
    desc.textContent = el.dataset.tip;
    document.body.appendChild(desc);
    el.setAttribute("aria-describedby", desc.id);
    attachTip(el, el.dataset.tip);
  }
}

// ---- start -------------------------------------------------------------------------------

window.addEventListener("DOMContentLoaded", () => {
  setupControls();
  setupPad();
  setupBrowser();
  setupSave();
  setupTips();
  updateControls();
  drawCharts();
  window.addEventListener("resize", () => { drawCharts(); });
  connect();
});
