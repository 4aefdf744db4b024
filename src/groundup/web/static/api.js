// Talking to the server: the JSON API (web/app.py) and its live events (web/jobs.py).
import { say } from "./dom.js";

// GET `path`, or POST `body` as JSON; the answer's JSON, or an Error with the server's message.
export async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const res = await fetch(path, options);
  let data = {};
  try { data = await res.json(); } catch { /* an answer that is not JSON */ }
  if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
  return data;
}

// A button's request: on an error, say it under the buttons and give null.
export async function act(path, body = {}) {
  try {
    return await api(path, body);
  } catch (err) {
    say(err.message, true);
    return null;
  }
}

// Server-Sent Events: `handlers` maps an event type to the function that shows it.
export function connect(handlers, onError) {
  const es = new EventSource("/api/events");
  for (const [type, fn] of Object.entries(handlers)) {
    es.addEventListener(type, (e) => fn(JSON.parse(e.data)));
  }
  es.onerror = onError;
  return es;
}
