// The settings form, the training buttons and the save form.
//
// The form holds no default, range or choice of its own: it asks the server for the
// schema (each setting's choices, range and help) and for every setting resolved for
// the current choices (GET /api/settings), and shows those. A setting the reader has
// not set is not sent, so the server resolves it, as `groundup train` would; clearing
// a number gives its default back.
import { act, api } from "./api.js";
import { $, say } from "./dom.js";
import { labelWord, nameOf, setClasses } from "./labels.js";

let schema = {}; // name -> {kind, default, choices, min, max, min_open, help}
const touched = new Set(); // the settings the reader has set
let state = ""; // the run's state, as the buttons know it
let nameEdited = false; // the run name is the reader's: stop suggesting one

// The form's controls, by setting name: every element with a data-setting.
function controls() {
  return [...document.querySelectorAll("[data-setting]")];
}

function fill(select, choices, text = String) {
  select.textContent = "";
  for (const c of choices) select.add(new Option(text(c), String(c)));
}

// Build the form from the server's schema; call once, before the first snapshot.
export async function setupForm() {
  const answer = await api("/api/settings");
  schema = answer.schema;
  setClasses(answer.classes); // what the data calls its labels: digits, or classes of clothes
  for (const id of ["digit-a", "digit-b"]) fill($(id), schema.digits.choices, nameOf);
  for (const el of controls()) {
    const field = schema[el.dataset.setting];
    if (field.kind === "bool") fill(el, [true, false]);
    else if (field.choices.length) fill(el, field.choices);
    if (field.min !== null && el.type === "number") el.min = field.min;
    if (field.max !== null && el.type === "number") el.max = field.max;
  }
  const delay = schema.delay;
  $("speed").min = String(1000 * delay.min);
  $("speed").max = String(1000 * delay.max);
  showResolved(answer.resolved);
  showSpeed(delay.default);
  setupEvents();
}

function number(text) {
  // a number when the field holds one; otherwise the text, so the server names the mistake
  const v = Number(text);
  return text.trim() !== "" && Number.isFinite(v) ? v : text;
}

function value(el) {
  const kind = schema[el.dataset.setting].kind;
  if (kind === "bool") return el.value === "true";
  if (kind === "int" || kind === "float" || kind === "batch") return number(el.value);
  return el.value;
}

function digitsChoice() {
  return $("all-digits").checked ? "all" : `${$("digit-a").value} ${$("digit-b").value}`;
}

// What Start, Step and Reset send: the digits, the settings the reader set, the speed.
export function readSettings() {
  const s = { digits: digitsChoice(), delay: Number($("speed").value) / 1000 };
  for (const el of controls()) {
    if (touched.has(el.dataset.setting)) s[el.dataset.setting] = value(el);
  }
  return s;
}

// Show each setting the reader has not set as the server resolved it.
function showResolved(resolved) {
  for (const el of controls()) {
    const name = el.dataset.setting;
    if (touched.has(name)) continue; // the reader's own value stays
    el.value = String(resolved[name]);
  }
}

// The defaults of the choices now on the form: e.g. the ten-digit net's rate and epochs.
async function refreshDefaults() {
  const query = new URLSearchParams({ digits: digitsChoice() });
  for (const el of controls()) {
    const name = el.dataset.setting;
    if (touched.has(name) && schema[name].kind === "str") query.set(name, el.value);
  }
  try {
    showResolved((await api(`/api/settings?${query}`)).resolved);
  } catch (err) {
    say(err.message, true);
  }
}

// A snapshot of the run: its settings, as its page chose them and as they resolved.
export function fillForm(s) {
  const all = s.digits.length === schema.digits.choices.length;
  $("all-digits").checked = all;
  if (!all) {
    $("digit-a").value = s.digits[0];
    $("digit-b").value = s.digits[1];
  }
  $("digit-a").disabled = all;
  $("digit-b").disabled = all;
  touched.clear();
  for (const name of Object.keys(s.settings)) touched.add(name);
  for (const el of controls()) {
    if (el === document.activeElement && el.type === "number") continue; // being typed in
    el.value = String(s.config[el.dataset.setting]);
  }
  showLr(s.lr); // a rate set by hand during the run, if there was one
  showSpeed(s.delay);
  suggestName();
}

export function showLr(lr) {
  if (document.activeElement !== $("lr")) $("lr").value = String(lr);
}

function showSpeed(delay) {
  $("speed").value = String(Math.round(delay * 1000));
  $("speed-out").textContent = speedText(delay * 1000);
}

function speedText(ms) {
  if (ms <= 0) return "full speed";
  return ms >= 400 ? `${ms} ms a batch: each step shown` : `${ms} ms a batch`;
}

function choicesValid() {
  if (!$("all-digits").checked && $("digit-a").value === $("digit-b").value) {
    say(`Choose two different ${labelWord(true)}, or all ten.`, true);
    return false;
  }
  return true;
}

// The buttons follow the run's state.
export function updateControls(now) {
  state = now;
  const active = now === "running" || now === "paused";
  $("btn-start").disabled = now === "running" || now === "";
  $("btn-start").textContent = now === "paused" ? "Resume" : "Start";
  $("btn-pause").disabled = now !== "running";
  $("btn-step").disabled = !(now === "ready" || now === "paused");
  $("btn-reset").disabled = now === "";
  $("btn-stop").disabled = !active;
  $("choices").disabled = active;
}

// Before a run starts, a new choice sets up a new ready run at once, so the page shows
// its initial weights (step 1, initialise, made visible); otherwise it shows the
// defaults the new choices would train with.
function choiceChanged() {
  $("digit-a").disabled = $("all-digits").checked;
  $("digit-b").disabled = $("all-digits").checked;
  suggestName();
  if (state === "ready" && choicesValid()) return act("/api/train/reset", readSettings());
  return refreshDefaults();
}

function setupEvents() {
  for (const id of ["digit-a", "digit-b", "all-digits"]) $(id).addEventListener("change", choiceChanged);
  for (const el of controls()) {
    if (el.id === "lr") continue;
    el.addEventListener("change", () => {
      if (el.value.trim() === "") touched.delete(el.dataset.setting); // cleared: the default
      else touched.add(el.dataset.setting);
      choiceChanged();
    });
  }

  $("btn-start").addEventListener("click", async () => {
    if (state === "paused") return act("/api/train/resume");
    if (!choicesValid()) return;
    if (await act("/api/train/start", readSettings())) say("Training: watch the curves and the weights.");
  });
  $("btn-pause").addEventListener("click", () => act("/api/train/pause"));
  $("btn-step").addEventListener("click", () => {
    if (state !== "ready") return act("/api/train/step");
    if (choicesValid()) act("/api/train/step", readSettings());
  });
  $("btn-reset").addEventListener("click", () => act("/api/train/reset"));
  $("btn-stop").addEventListener("click", () => act("/api/train/stop"));

  $("lr").addEventListener("change", async () => {
    if ($("lr").value.trim() === "") touched.delete("lr");
    else touched.add("lr");
    if (state === "ready" && choicesValid()) return act("/api/train/reset", readSettings());
    if (state !== "running" && state !== "paused") return refreshDefaults(); // sent with Start
    const r = await act("/api/train/lr", { lr: number($("lr").value) });
    if (r) say(`${r.note}.`); // the server says whether a schedule was switched off
  });
  $("speed").addEventListener("input", () => {
    $("speed-out").textContent = speedText(Number($("speed").value));
  });
  $("speed").addEventListener("change", () => {
    act("/api/train/speed", { delay: Number($("speed").value) / 1000 });
  });
  setupSave();
}

// ---- saving ------------------------------------------------------------------------------

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
