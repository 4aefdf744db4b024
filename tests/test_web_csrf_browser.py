"""Issue 12, in a real browser: a page served from a second local origin tries to drive
the groundup server, with an auto-submitted form (enctype=text/plain, the attack that
worked) and with fetch, and the server's state does not change.

Debian's Chromium, driven by Playwright (skipped without it, failed under CI=true).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from groundup.web import create_app
from helpers_net import live_server
from test_web_browser import CHROMIUM, LAUNCH_ARGS, need_browser

pytestmark = pytest.mark.browser

ATTACK = """<!DOCTYPE html><html><body>
<form id="empty" method="POST" action="{target}/api/train/start" enctype="text/plain"></form>
<script>
const target = "{target}";
const tries = [
  // a "simple" request: no preflight, the browser sends it and hides the answer
  fetch(target + "/api/train/start", {{method: "POST", mode: "no-cors",
    headers: {{"Content-Type": "text/plain"}}, body: ""}}),
  fetch(target + "/api/train/start", {{method: "POST", mode: "no-cors",
    headers: {{"Content-Type": "text/plain"}}, body: '{{"delay": 0}}'}}),
  // JSON needs a preflight, which the server does not grant
  fetch(target + "/api/train/start", {{method: "POST",
    headers: {{"Content-Type": "application/json"}}, body: "{{}}"}}),
];
Promise.allSettled(tries).then(() => {{
  document.getElementById("empty").submit();  // the form post: a top-level navigation
}});
</script></body></html>"""


class Recorder:
    """Wraps the app to record each request's method, path and status."""

    def __init__(self, app: Any) -> None:
        self.app, self.seen = app, []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def record(message) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, record)


def test_a_page_on_another_origin_cannot_start_training(tmp_path: Path) -> None:
    sync_api = need_browser()
    app = Recorder(create_app("sample", tmp_path / "runs"))
    with live_server(app) as target:
        attacker = Starlette(
            routes=[Route("/", lambda r: HTMLResponse(ATTACK.format(target=target)))]
        )
        with live_server(attacker) as evil, sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            try:
                page = browser.new_page()
                page.goto(evil)
                # the form is submitted once the fetches have settled
                page.wait_for_url(f"{target}/api/train/start", timeout=30_000)
                page.wait_for_load_state()
            finally:
                browser.close()
        posts = [(path, status) for method, path, status in app.seen if method == "POST"]
        # the attacks reached the server, and each was refused
        assert len(posts) >= 3, app.seen
        assert all(status in (403, 415) for _, status in posts), posts
        state = httpx.get(f"{target}/api/state", timeout=30).json()["state"]
        assert state == "ready"  # no training was started
