"""The report in a real browser: headless Chromium opens it offline, every picture
decodes, nothing is fetched, and a full-page screenshot is kept in test-artifacts/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking"]

pytestmark = pytest.mark.browser


def _require_chromium() -> None:
    """Skip without Debian's chromium, but fail under CI=true, where .ci/run installs it."""
    if CHROMIUM.is_file():
        return
    reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    from groundup.runs.config import TrainConfig
    from groundup.runs.saved import save_run
    from groundup.runs.training import train
    from groundup.show.report import write_report

    run_dir = tmp_path_factory.mktemp("browser") / "net"
    save_run(run_dir, train(TrainConfig(device="cpu", model="net", epochs=3)))
    return write_report(run_dir)


def _open(page_file: Path, screenshot: Path | None = None) -> dict:
    """Open a file in headless Chromium with the network cut off; what it found and fetched."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    requested: list[str] = []

    def refuse_network(route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            requested.append(url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            context.route("**/*", refuse_network)
            page = context.new_page()
            page.goto(page_file.as_uri(), wait_until="load")
            found = {
                "headings": page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)"),
                "images": page.eval_on_selector_all(
                    "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
                ),
                "requested": requested,
            }
            if screenshot is not None:
                screenshot.parent.mkdir(exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return found


def test_report_renders_offline_in_chromium(report_file):
    from PIL import Image

    from groundup.show.report import SECTIONS

    shot = ARTIFACTS / "report.png"
    found = _open(report_file, shot)
    assert found["headings"] == [title for _, title in SECTIONS]
    images = found["images"]
    assert len(images) >= 10
    assert all(done and w > 100 and h > 50 for done, w, h in images), images
    assert found["requested"] == []
    with Image.open(shot) as im:
        assert im.width == 1200 and im.height > 4000  # the whole page, not one screen
        lo, hi = im.convert("L").resize((60, 200)).getextrema()
        assert hi - lo > 100  # something was drawn: text and figures, not a blank page


def test_the_network_check_catches_a_page_that_fetches(tmp_path):
    """The control: the same check on a page with one remote image does see it."""
    page = tmp_path / "remote.html"
    page.write_text('<html><body><h2>x</h2><img src="http://192.0.2.1/a.png"></body></html>')
    found = _open(page)
    assert found["requested"] == ["http://192.0.2.1/a.png"]
    assert found["images"] == [[True, 0, 0]]
