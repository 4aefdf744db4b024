// The drawing pad: draw a digit with a mouse, a finger or a pen, and see what the
// model of the moment says, and (for the linear model) what each pixel added.
import { api } from "./api.js";
import { $ } from "./dom.js";
import { labelWord, nameOf } from "./labels.js";
import { hideTip } from "./tips.js";

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
  $("pred-note").textContent = `Draw ${labelWord() === "digit" ? "a digit" : "one"} in white on the black pad.`;
  for (const id of ["input-canvas", "contrib-canvas"]) {
    const c = $(id);
    c.getContext("2d").clearRect(0, 0, c.width, c.height);
  }
}

export function setupPad() {
  const canvas = $("draw-canvas");
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
  };
  canvas.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    hideTip();
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

export function repredict(now = false) {
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

export function probabilityBars(box, digits, probs) {
  box.textContent = "";
  box.classList.toggle("named", labelWord() !== "digit");
  const best = probs.indexOf(Math.max(...probs));
  digits.forEach((d, i) => {
    const row = document.createElement("div");
    row.className = `bar${i === best ? " best" : ""}`;
    const label = document.createElement("span");
    label.textContent = nameOf(d);
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
    row.setAttribute("aria-label", `${nameOf(d)}: ${(100 * probs[i]).toFixed(1)} percent`);
    box.appendChild(row);
  });
}

function showPrediction(data) {
  const el = $("prediction-digit");
  el.textContent = nameOf(data.prediction);
  el.classList.toggle("named", labelWord() !== "digit"); // a name is too long for 84px
  pad.seq += 1;
  el.dataset.seq = String(pad.seq);
  probabilityBars($("prob-bars"), data.digits, data.probs);
  paintGrid($("input-canvas"), data.input, (v) => { const g = Math.round(255 * v); return [g, g, g]; });
  const contribCanvas = $("contrib-canvas");
  const note = data.epoch ? `Model after ${data.epoch} epoch${data.epoch === 1 ? "" : "s"}.` : "The model is untrained: its answer is a guess. Train it and watch the answer change.";
  if (data.contribution) {
    const top = Math.max(1e-9, ...data.contribution.flat().map(Math.abs));
    paintGrid(contribCanvas, data.contribution, (v) => diverging(v / top));
    const sum = data.score - data.bias;
    $("contrib-caption").textContent = `Each pixel's contribution (weight × pixel): sum ${sum.toFixed(2)} + bias ${data.bias.toFixed(2)} = score ${data.score.toFixed(2)}; blue pushes towards ${nameOf(data.towards)}`;
  } else {
    contribCanvas.getContext("2d").clearRect(0, 0, 28, 28);
    $("contrib-caption").textContent = "Contributions are shown for the linear model only: a net mixes the pixels in its hidden layer first.";
  }
  $("pred-note").textContent = note;
}
