// What the server's data calls its labels: the digits 0-9, or, for Fashion-MNIST, classes
// of clothes ("3 Dress"). The names and the word come from the server (GET /api/settings,
// which reads groundup.data.sources); the page keeps no list of its own.
//
// Text that differs for classes is marked in the page: an element with data-class-text
// shows that text instead of its own, and one with data-class-tip that tip instead.

let word = "digit";
let names = [];

// The server's {word: "digit" | "class", names: [label k's name, ...]}.
export function setClasses(classes) {
  word = classes.word;
  names = classes.names;
  if (word === "digit") return; // the page is written for digits
  for (const el of document.querySelectorAll("[data-class-text]")) el.textContent = el.dataset.classText;
  for (const el of document.querySelectorAll("[data-class-tip]")) el.dataset.tip = el.dataset.classTip;
}

// Label k as a reader should see it: "3", or "3 Dress".
export function nameOf(label) {
  return names[label] ?? String(label);
}

// "digit" or "class"; with `plural`, "digits" or "classes".
export function labelWord(plural = false) {
  if (!plural) return word;
  return word.endsWith("s") ? `${word}es` : `${word}s`;
}
