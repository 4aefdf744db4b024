// The image browser: the images the model learns from, a page at a time, marked
// where the model of the moment gets them wrong; one image's pixels on a click.
import { api } from "./api.js";
import { $ } from "./dom.js";
import { nameOf } from "./labels.js";
import { attachTip, hideTip } from "./tips.js";

const PAGE = 48; // thumbnails per page

const browser = { page: 0, total: 0, selected: null, loading: false };

export async function loadThumbs() {
  if (browser.loading) return;
  browser.loading = true;
  const split = $("split").value;
  try {
    const data = await api(`/api/data?split=${split}&offset=${browser.page * PAGE}&limit=${PAGE}`);
    browser.total = data.total;
    const box = $("thumbs");
    hideTip(); // its element may be about to go
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
      const label = nameOf(item.label);
      const says = ok ? "the model gets it right" : `the model says ${nameOf(item.predicted)}: wrong`;
      b.setAttribute("aria-label", `image ${item.index}: a ${label}; ${says}`);
      attachTip(b, `Image ${item.index}, a ${label}: ${says}. Drawn as MNIST stores it, white ink on black. Click for its pixel values.`);
      const img = document.createElement("img");
      img.src = item.src;
      img.alt = "";
      const cap = document.createElement("span");
      cap.textContent = ok ? label : `${label} → ${nameOf(item.predicted)}`;
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
  text.textContent = `Image ${index}: a ${nameOf(data.label)}. The model says ${nameOf(data.prediction)} (${pct}%). `
    + "Each cell is one pixel, shaded as MNIST stores it: 0 black, 255 white ink; "
    + "the model reads them divided by 255.";
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
      // shaded as MNIST stores it, as every picture of the data is: white ink on black
      td.style.background = `rgb(${v},${v},${v})`;
      td.style.color = v > 127 ? "#000" : v > 0 ? "#fff" : "#555";
      tr.appendChild(td);
    }
    table.appendChild(tr);
  }
  box.appendChild(table);
}

export function setupBrowser() {
  $("split").addEventListener("change", () => { browser.page = 0; loadThumbs(); });
  $("btn-prev").addEventListener("click", () => { browser.page = Math.max(0, browser.page - 1); loadThumbs(); });
  $("btn-next").addEventListener("click", () => { browser.page += 1; loadThumbs(); });
}


// Back to the first page: the run's images changed (other digits, another source).
export function firstPage() {
  browser.page = 0;
  loadThumbs();
}
