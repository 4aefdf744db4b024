// Explanations on hover and focus: every element with a data-tip explains itself, to the
// mouse and to screen readers.
import { $ } from "./dom.js";

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

export function hideTip() {
  $("tooltip").classList.remove("show");
}

export function attachTip(el, text) {
  el.addEventListener("mouseenter", () => showTip(el, text));
  el.addEventListener("focus", () => showTip(el, text));
  el.addEventListener("mouseleave", hideTip);
  el.addEventListener("blur", hideTip);
}

export function setupTips() {
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
