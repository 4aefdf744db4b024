// The run as this page sees it, live: the server's events (web/jobs.py, web/live.py)
// drawn as the seven steps, the curves, the weight pictures and the buttons' state.
import { connect } from "./api.js";
import { firstPage, loadThumbs } from "./browser.js";
import { drawCharts, drawHistogram } from "./charts.js";
import { $, say } from "./dom.js";
import { fillForm, showLr, updateControls } from "./form.js";
import { labelWord, nameOf } from "./labels.js";
import { repredict } from "./pad.js";

const STEPS = ["init", "predict", "loss", "gradient", "step", "repeat", "stop"];

// What this page knows of the run; the server is the source of truth.
const run = {
  state: "", digits: [], model: "", epochs: 0, epoch: 0, batches: 1,
  history: [], points: [], lastX: -Infinity, lastPhaseAt: 0, dataKey: "",
};

export function watch() {
  drawCharts(run);
  connect(
    {
      snapshot: onSnapshot,
      state: onState,
      phase: onPhase,
      batch: onBatch,
      epoch: onEpoch,
      lr: onLr,
      watchers: (e) => showWatchers(e.count),
    },
    () => {
      $("state-label").textContent = "reconnecting…";
      $("state-dot").className = "dot";
    },
  );
  window.addEventListener("resize", () => drawCharts(run));
}

function onSnapshot(s) {
  run.history = s.history.slice();
  run.points = s.points.slice();
  run.lastX = run.points.length ? run.points[run.points.length - 1][0] : -Infinity;
  onState(s);
  fillForm(s);
  showWeights(s);
  $("grad-img").removeAttribute("src");
  drawCharts(run);
  if (s.state === "ready") light("init", s.message);
  const key = `${s.digits.join(",")}|${s.model}|${s.train_size}`;
  if (key !== run.dataKey) {
    run.dataKey = key;
    firstPage();
  }
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
  updateControls(s.state);
  if (was !== s.state && ["done", "stopped", "paused", "failed"].includes(s.state)) {
    repredict(true);
    loadThumbs();
  }
}

function showProgress(batch, lr) {
  let text = `epoch ${run.epoch}/${run.epochs}`;
  if (batch !== undefined && run.state === "running") text += ` · batch ${batch}/${run.batches}`;
  // under a schedule the rate moves every batch: show where it is
  if (lr !== undefined && lr !== null && run.state === "running") text += ` · lr ${lr.toPrecision(2)}`;
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
  showProgress(b.batch, b.lr);
  showWeights(b);
  // At speed, the steps come too fast to send one by one: show the loop going round.
  if (performance.now() - run.lastPhaseAt > 1000) flashLoop();
  drawCharts(run);
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
  drawCharts(run);
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
  showLr(e.lr);
}

// ---- the seven steps -------------------------------------------------------------------

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
  const [a, b] = run.digits.map(nameOf);
  const word = labelWord();
  let caption;
  if (run.model === "linear" && run.digits.length === 2) {
    caption = `Weights: one per pixel. Blue: ink there says ${a}; red: ink there says ${b}`;
  } else if (run.model === "linear") {
    caption = `Weights of each ${word}'s output, ${run.digits.map(nameOf).join(", ")}: blue raises that ${word}'s score`;
  } else {
    const some = ev.tiles < ev.units ? `the first ${ev.tiles} of ${ev.units}` : `all ${ev.units}`;
    caption = `First layer: ${some} hidden units, each a 28×28 image of its 784 weights`;
  }
  $("weights-caption").textContent = caption;
  $("scale-neg").textContent = (-ev.scale).toPrecision(3);
  $("scale-pos").textContent = `+${ev.scale.toPrecision(3)}`;
  if (ev.hist) drawHistogram(ev.hist);
}
