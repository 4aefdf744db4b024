"""End to end in a real browser: Debian's Chromium, driven by Playwright.

The test starts the server on a free 127.0.0.1 port, trains 2-vs-9 from the page
and waits for the curves, draws a real 2 and a real 9 from the sample on the pad
with the mouse, checks the predictions shown, and saves a screenshot to
`test-artifacts/web-page.png`. A second test draws with a finger (touch events) and
checks that it draws what the mouse draws, without scrolling the page.

Playwright's own browser download does not work here, so Chromium must be
installed (`make system-deps` does it). Without it the test is skipped, with the
reason, except under CI=true where it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest

from groundup.web import create_app
from helpers_net import live_server

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PAD = 280  # the drawing pad's size in CSS pixels: 10 per MNIST pixel


def need_browser() -> Any:
    """Playwright's sync API, or a skip (a failure under CI=true) saying what is missing."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing: install Debian's chromium (make system-deps)"
    try:
        from playwright import sync_api
    except ImportError:
        missing = "playwright is not installed: pip install -e '.[test]'"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, but {missing}")
        pytest.skip(missing)
    return sync_api


def strokes(img: np.ndarray, threshold: int = 128, gap: float = 2.5) -> list[list[tuple]]:
    """Pen strokes through a digit's ink, in order, in MNIST pixel coordinates.

    A greedy walk: start at the top ink pixel, always move to the nearest pixel not
    yet visited, and lift the pen when that is more than `gap` pixels away.
    """
    todo = [(float(c) + 0.5, float(r) + 0.5) for r, c in zip(*np.nonzero(img > threshold))]
    todo.sort(key=lambda p: (p[1], p[0]))
    paths: list[list[tuple]] = []
    path = [todo.pop(0)]
    while todo:
        x, y = path[-1]
        i = min(range(len(todo)), key=lambda k: (todo[k][0] - x) ** 2 + (todo[k][1] - y) ** 2)
        nxt = todo.pop(i)
        if (nxt[0] - x) ** 2 + (nxt[1] - y) ** 2 > gap**2:
            paths.append(path)
            path = []
        path.append(nxt)
    paths.append(path)
    return paths


def draw(page: Any, img: np.ndarray) -> None:
    """Draw `img` on the pad with the mouse, stroke by stroke."""
    box = page.locator("#draw-canvas").bounding_box()
    scale = box["width"] / 28
    for path in strokes(img):
        x0, y0 = path[0]
        page.mouse.move(box["x"] + x0 * scale, box["y"] + y0 * scale)
        page.mouse.down()
        # every other point: the pad joins them with lines, and the test stays quick
        for x, y in [*path[2::2], path[-1]]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.up()


def first_image(digit: int) -> np.ndarray:
    """The first real `digit` of the sample's validation split: uint8 (28, 28)."""
    from groundup.data.sources import load_source

    images, labels = load_source("sample").split("valid")
    return images[int(np.flatnonzero(labels == digit)[0])]


@contextmanager
def browser_on_the_app(tmp_path: Path, source: str = "sample") -> Iterator[tuple[Any, str, Any]]:
    """(Playwright's sync API, the page's URL, a launched Chromium) for a fresh app on
    `source`, served on a free 127.0.0.1 port; all closed afterwards."""
    sync_api = need_browser()
    app = create_app(source, tmp_path / "runs")
    with live_server(app) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield sync_api, url, browser
        finally:
            browser.close()


def test_train_watch_and_draw_in_chromium(tmp_path: Path) -> None:
    with browser_on_the_app(tmp_path) as (sync_api, url, browser):
        expect = sync_api.expect
        problems: list[str] = []
        outside: list[str] = []
        page = browser.new_page(viewport={"width": 1360, "height": 1000})
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on(
            "console",
            lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.on(
            "request",
            lambda r: (
                outside.append(r.url)
                if urlparse(r.url).scheme in ("http", "https")
                and urlparse(r.url).hostname != "127.0.0.1"
                else None
            ),
        )
        page.goto(url)
        expect(page.locator("#state-label")).to_have_text("ready", timeout=20_000)
        watcher = browser.new_page()  # a second page watches the same run
        watcher.goto(url)
        expect(page.locator("#watchers")).to_have_text("2 pages watching", timeout=10_000)

        # every control and chart explains itself, to the mouse and to screen readers
        for el in page.locator("[data-tip]").all():
            described = el.get_attribute("aria-describedby")
            assert described, el.evaluate("e => e.outerHTML.slice(0, 80)")
            assert page.locator(f"#{described}").text_content().strip()
        page.hover("#lr")
        expect(page.locator("#tooltip")).to_have_class("tooltip show")
        expect(page.locator("#tooltip")).to_contain_text("moves the weights")

        # a new choice before training shows its initial weights at once: the
        # article's std 1 is the same seeded draw as kaiming's, 1/0.0505 times larger
        scale = page.locator("#scale-pos")
        kaiming = scale.text_content()
        page.select_option("#init", "normal")
        expect(scale).not_to_have_text(kaiming)
        normal = float(scale.text_content())
        assert normal / float(kaiming) == pytest.approx((784 / 2) ** 0.5, rel=0.02)
        page.select_option("#init", "kaiming")
        expect(scale).to_have_text(kaiming)

        # train 2-vs-9 and watch the curves update
        expect(page.locator("#digit-a")).to_have_value("2")
        expect(page.locator("#digit-b")).to_have_value("9")
        page.locator("#speed").fill("10")  # 10 ms a batch: live, but quick
        page.locator("#speed").dispatch_event("change")
        expect(page.locator("#speed-out")).to_have_text("10 ms a batch")
        page.click("#btn-start")
        expect(page.locator("#loss-chart")).not_to_have_attribute("data-points", "0")
        expect(page.locator("#acc-chart")).to_have_attribute("data-epochs", "20", timeout=60_000)
        expect(page.locator("#state-label")).to_have_text("done", timeout=20_000)
        expect(watcher.locator("#acc-chart")).to_have_attribute("data-epochs", "20")
        assert page.locator("#weights-img").get_attribute("src").startswith("data:image/png")

        # draw a real 2, then a real 9, and read the predictions
        pred = page.locator("#prediction-digit")
        for digit in (2, 9):
            page.click("#btn-clear")
            seq = pred.get_attribute("data-seq")
            draw(page, first_image(digit))
            expect(pred).not_to_have_attribute("data-seq", seq, timeout=15_000)
            expect(pred).to_have_text(str(digit))
        expect(page.locator("#prob-bars .bar")).to_have_count(2)
        expect(page.locator("#contrib-caption")).to_contain_text("bias")

        # the data browser: a grid of images, and one image's pixel table
        page.locator(".thumb").first.click()
        expect(page.locator("table.pixels tr")).to_have_count(28)
        # shaded as MNIST stores it: white ink (255) on black (0)
        assert cell_colours(page) == {"0": "rgb(0, 0, 0)", "255": "rgb(255, 255, 255)"}

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)
        assert problems == []
        assert outside == []  # the page loads nothing from the internet


def touch_draw(page: Any, cdp: Any, img: np.ndarray) -> None:
    """Draw `img` on the pad with one finger, stroke by stroke, as `draw` does with the
    mouse. The touches go in through Chromium's DevTools protocol, as a touch screen's
    would, and reach the page as pointer events of type "touch"."""
    box = page.locator("#draw-canvas").bounding_box()
    scale = box["width"] / 28

    def touch(kind: str, points: list[tuple]) -> None:
        at = [{"x": box["x"] + x * scale, "y": box["y"] + y * scale} for x, y in points]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": at})

    for path in strokes(img):
        touch("touchStart", [path[0]])
        for point in [*path[2::2], path[-1]]:
            touch("touchMove", [point])
        touch("touchEnd", [])


def pad_pixels(page: Any) -> np.ndarray:
    """The drawing pad's red channel, (height, width) uint8: what was drawn on it."""
    values = page.evaluate(
        """() => {
            const c = document.getElementById("draw-canvas");
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            return Array.from(d.filter((_, i) => i % 4 === 0));
        }"""
    )
    side = int(len(values) ** 0.5)
    return np.array(values, dtype=np.uint8).reshape(side, side)


def test_draw_by_touch_in_chromium(tmp_path: Path) -> None:
    """A finger draws as the mouse does: the same strokes give the same pad and the
    same prediction, and the page does not scroll under the finger."""
    with browser_on_the_app(tmp_path) as (sync_api, url, browser):
        expect = sync_api.expect
        context = browser.new_context(
            viewport={"width": 1360, "height": 700}, has_touch=True
        )  # 700 high: the page is taller, so a finger could scroll it
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        page.goto(url)
        expect(page.locator("#state-label")).to_have_text("ready", timeout=20_000)
        page.locator("#draw-canvas").scroll_into_view_if_needed()
        page.evaluate(
            """() => {
                window.pointerKinds = new Set();
                document.getElementById("draw-canvas").addEventListener(
                    "pointerdown", (e) => window.pointerKinds.add(e.pointerType));
            }"""
        )
        pred = page.locator("#prediction-digit")
        image = first_image(2)
        drawn: dict[str, tuple[np.ndarray, str]] = {}
        for how in ("mouse", "touch"):
            page.click("#btn-clear")
            assert pad_pixels(page).max() == 0  # a black pad
            seq = pred.get_attribute("data-seq")
            scrolled = page.evaluate("window.scrollY")
            if how == "mouse":
                draw(page, image)
            else:
                touch_draw(page, cdp, image)
            expect(pred).not_to_have_attribute("data-seq", seq, timeout=15_000)
            # each stroke asks for a prediction: wait for the one of the whole digit
            expect(pred).to_have_attribute("data-pending", "0", timeout=15_000)
            assert page.evaluate("window.scrollY") == scrolled
            bars = page.locator("#prob-bars .bar").evaluate_all(
                "rows => rows.map((r) => r.getAttribute('aria-label')).join('; ')"
            )  # "2: 61.3 percent; 9: 38.7 percent"
            drawn[how] = (pad_pixels(page), bars)
        assert page.evaluate("Array.from(window.pointerKinds).sort()") == ["mouse", "touch"]
        (mouse, mouse_bars), (finger, finger_bars) = drawn["mouse"], drawn["touch"]
        assert (mouse > 0).mean() > 0.05  # real strokes were drawn
        # the same strokes: (nearly) the same pixels, and the same probabilities
        assert np.abs(mouse.astype(int) - finger.astype(int)).mean() < 2.0
        assert "percent" in mouse_bars and finger_bars == mouse_bars


def test_the_form_shows_the_servers_defaults_for_each_choice(tmp_path: Path) -> None:
    """The form holds no default of its own: a new choice shows what `groundup train`
    would use for it, asked from the server, before a run (a new ready run) and after
    one (GET /api/settings); a setting the reader typed stays, a cleared one is the
    default again."""
    with browser_on_the_app(tmp_path) as (sync_api, url, browser):
        expect = sync_api.expect
        page = browser.new_page(viewport={"width": 1360, "height": 1000})
        page.goto(url)
        expect(page.locator("#state-label")).to_have_text("ready", timeout=20_000)
        fields = {f: page.locator(f"#{f}") for f in ("opt", "schedule", "augment", "lr", "epochs")}
        expect(fields["opt"]).to_have_value("sgd")
        expect(fields["lr"]).to_have_value("1")

        # before a run: the choice sets up a new ready run, resolved by the server
        page.check("#all-digits")
        expect(fields["opt"]).to_have_value("adam")
        expect(fields["schedule"]).to_have_value("one-cycle")
        page.select_option("#model", "net")
        expect(fields["augment"]).to_have_value("true")
        expect(fields["lr"]).to_have_value("0.003")
        expect(fields["epochs"]).to_have_value("40")

        # after a run: the page asks GET /api/settings for the new choices' defaults
        page.uncheck("#all-digits")
        page.select_option("#model", "linear")
        page.locator("#epochs").fill("1")
        page.locator("#epochs").dispatch_event("change")
        page.locator("#speed").fill("0")
        page.locator("#speed").dispatch_event("change")
        page.click("#btn-start")
        expect(page.locator("#state-label")).to_have_text("done", timeout=30_000)
        page.check("#all-digits")
        expect(fields["schedule"]).to_have_value("one-cycle")
        expect(fields["lr"]).to_have_value("0.01")
        expect(fields["epochs"]).to_have_value("1")  # typed by the reader: it stays
        page.locator("#epochs").fill("")
        page.locator("#epochs").dispatch_event("change")
        expect(fields["epochs"]).to_have_value("20")


def cell_colours(page: Any) -> dict[str, str]:
    """The background of a 0 and of a 255 cell of the pixel table on show."""
    return page.evaluate("""() => {
        const out = {};
        for (const td of document.querySelectorAll("table.pixels td")) {
            const v = td.textContent;
            if (v === "0" || v === "255") out[v] = td.style.background;
        }
        return out;
    }""")


def test_fashion_mnist_classes_are_named_on_the_page(tmp_path: Path) -> None:
    """Served on Fashion-MNIST, the page calls the labels classes and names them, as
    the server sends them (GET /api/settings): the form, the pad, the data browser."""
    from helpers_data import require_fashion

    require_fashion()
    with browser_on_the_app(tmp_path, "fashion-mnist") as (sync_api, url, browser):
        expect = sync_api.expect
        page = browser.new_page(viewport={"width": 1360, "height": 1000})
        page.goto(url)
        expect(page.locator("#state-label")).to_have_text("ready", timeout=30_000)
        expect(page.locator("label[for=digit-a]")).to_have_text("Classes")
        options = page.locator("#digit-a option").all_text_contents()
        assert options[0] == "0 T-shirt/top" and options[9] == "9 Ankle boot"
        expect(page.locator("#draw-title")).to_have_text("2 Draw one")
        expect(page.locator("#pred-note")).to_have_text("Draw one in white on the black pad.")
        page.hover("#draw-canvas")
        expect(page.locator("#tooltip")).to_contain_text("image of a class")
        expect(page.locator("#tooltip")).to_contain_text("white ink on the black pad")

        names = set(options)
        first = page.locator(".thumb").first
        expect(first).to_be_visible(timeout=20_000)
        caption = first.locator("span").text_content()
        assert caption.split(" → ")[0] in names, caption
        first.click()
        expect(page.locator("table.pixels tr")).to_have_count(28)
        head = page.locator(".detail-head").text_content()
        said = head.split("The model says ")[1].split(" (")[0]
        assert said in names, head
        assert cell_colours(page)["0"] == "rgb(0, 0, 0)"

        from groundup.data.sources import load_source

        images, labels = load_source("fashion-mnist").split("valid")
        draw(page, images[int(np.flatnonzero(labels == 1)[0])])  # a trouser
        pred = page.locator("#prediction-digit")
        expect(page.locator("#prob-bars .bar")).to_have_count(2, timeout=15_000)
        assert pred.text_content() in names
        bars = page.locator("#prob-bars .bar > span:first-child").all_text_contents()
        assert bars == ["2 Pullover", "9 Ankle boot"]  # the default pair, 2 and 9
