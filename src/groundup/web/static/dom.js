// Small helpers every module of the page shares.

export const $ = (id) => document.getElementById(id);

// One line for the reader under the buttons; red when it is a mistake to fix.
export function say(text, isError = false) {
  const m = $("message");
  m.textContent = text;
  m.classList.toggle("error", isError);
}
