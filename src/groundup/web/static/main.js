// groundup's page: plain JavaScript modules, no library, nothing loaded from elsewhere.
// The server pushes the run as Server-Sent Events (live.js); the buttons, the drawing
// pad and the image browser call the JSON API (api.js, web/app.py).
import { setupBrowser } from "./browser.js";
import { say } from "./dom.js";
import { setupForm, updateControls } from "./form.js";
import { watch } from "./live.js";
import { setupPad } from "./pad.js";
import { setupTips } from "./tips.js";

async function start() {
  updateControls("");
  setupBrowser();
  try {
    await setupForm(); // the choices come from the server: before the run's snapshot
  } catch (err) {
    say(`cannot reach the server: ${err.message}`, true);
    return;
  } finally {
    // after the form, which says what the labels are called (labels.js)
    setupPad();
    setupTips();
  }
  watch();
}

start();
