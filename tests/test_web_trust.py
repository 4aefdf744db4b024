"""Issue 12, the web server: no other site may drive it, every error is JSON and 4xx
for a client's mistake, a client leaving mid-body is one log line, and the image work
stays within its memory budget under load."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from groundup.web import create_app
from helpers_bad import lab_tiff, png_bomb
from helpers_net import free_port

BASE = "http://127.0.0.1"
JSON = {"content-type": "application/json"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app("sample", tmp_path / "runs", phase_pause=0.0)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        yield c


def _state(c: TestClient) -> str:
    return c.get("/api/state").json()["state"]


# -- cross-site request forgery ---------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "text/plain"},  # an auto-submitted form, enctype=text/plain
        {"content-type": "application/x-www-form-urlencoded"},
        {},  # no content type at all
    ],
)
def test_an_empty_post_that_is_not_json_is_refused(client: TestClient, headers) -> None:
    """Issue 12: an empty body was read as {} before its content type was checked."""
    r = client.post("/api/train/start", content=b"", headers=headers)
    assert r.status_code == 415 and "JSON" in r.json()["error"]
    assert _state(client) == "ready"


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "http://127.0.0.1:9999"},  # another server on this computer
        {"origin": "null"},  # a sandboxed frame or a file:// page
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},  # what a page on another port of 127.0.0.1 is
    ],
)
def test_a_post_from_another_origin_is_403_and_changes_nothing(client: TestClient, headers):
    r = client.post("/api/train/start", json={"delay": 0}, headers=headers)
    assert r.status_code == 403 and "refused" in r.json()["error"]
    assert _state(client) == "ready"


def test_the_pages_own_requests_pass(client: TestClient) -> None:
    own = {"origin": BASE, "sec-fetch-site": "same-origin"}
    r = client.post("/api/train/lr", json={"lr": 0.5}, headers=own)
    assert r.status_code == 200, r.text


# -- every error is JSON, and a client's mistake is 4xx -----------------------------------------


def test_deeply_nested_json_is_400(client: TestClient) -> None:
    body = b"[" * 8000 + b"]" * 8000  # a RecursionError in json.loads
    r = client.post("/api/train/start", content=body, headers=JSON)
    assert r.status_code == 400 and "nested" in r.json()["error"]


def _uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (png_bomb(30000, 30000), 413),  # was a 500: Pillow's DecompressionBombError
        (png_bomb(13000, 13000), 413),
        (lab_tiff(), 400),  # was a 500: LAB cannot be made gray
    ],
)
def test_hostile_drawings_are_4xx_json(client: TestClient, data: bytes, status: int) -> None:
    r = client.post("/api/predict", json={"image": _uri(data)})
    assert r.status_code == status and r.json()["error"]


def test_a_bug_is_a_json_500(client: TestClient, monkeypatch) -> None:
    def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(client.app.state.job, "snapshot", broken)
    r = client.get("/api/state")
    assert r.status_code == 500 and r.json() == {"error": "the server failed; see its log"}


def test_a_foreign_host_is_a_json_400(client: TestClient) -> None:
    r = client.get("/api/state", headers={"host": "evil.example"})
    assert r.status_code == 400 and "127.0.0.1" in r.json()["error"]


# -- the log ----------------------------------------------------------------------------------


def test_a_client_leaving_mid_body_is_one_log_line(tmp_path: Path, caplog) -> None:
    """Issue 12: it logged a whole "Exception in ASGI application" traceback."""
    import asyncio

    app = create_app("sample", tmp_path / "runs")
    scope = {
        "type": "http", "method": "POST", "path": "/api/predict", "raw_path": b"/api/predict",
        "query_string": b"", "scheme": "http", "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                    (b"content-length", b"1000")],
    }  # fmt: skip
    messages = [
        {"type": "http.request", "body": b'{"image": "da', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    with caplog.at_level(logging.INFO):
        asyncio.run(app(scope, receive, send))  # raises if the disconnect escapes the app
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1 and "disconnected" in records[0].getMessage()
    assert records[0].exc_info is None


# -- load ---------------------------------------------------------------------------------------


def _big_drawing() -> bytes:
    """A 2048x2048 RGBA drawing, as the page's canvas sends: one stroke on transparency."""
    a = np.zeros((2048, 2048, 4), dtype=np.uint8)
    a[400:1600, 900:1150] = (0, 0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(a, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # the high-water mark of resident memory
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


# The budget docs/security.md states: 40 drawings of 2048x2048 arriving together add
# at most this much to the server's peak memory (IMAGE_WORKERS at a time, ~60 MB each).
LOAD_BUDGET_MB = 400


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_forty_concurrent_big_drawings_stay_within_the_memory_budget(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "groundup", "serve", "--port", str(port),
         "--runs-dir", str(tmp_path / "runs")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        for line in server.stdout:  # wait until it listens
            if "open http" in line:
                break
        else:
            raise AssertionError("the server did not start")
        url = f"http://127.0.0.1:{port}/api/predict"
        body = json.dumps({"image": _uri(_big_drawing())}).encode()

        def post() -> int:
            req = urllib.request.Request(url, data=body, headers=JSON)
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status

        post()  # warm: the model, the imports and the first drawing's memory
        before = _peak_rss_mb(server.pid)
        statuses: list[int] = []
        threads = [threading.Thread(target=lambda: statuses.append(post())) for _ in range(40)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        assert statuses == [200] * 40
        grew = _peak_rss_mb(server.pid) - before
        print(f"40 drawings in {time.monotonic() - start:.1f} s; peak RSS grew {grew:.0f} MB")
        assert grew < LOAD_BUDGET_MB, f"peak RSS grew {grew:.0f} MB"
    finally:
        server.terminate()
        server.wait(20)


# -- a token, for --host 0.0.0.0 ----------------------------------------------------------------


def test_with_a_token_every_request_must_carry_it(tmp_path: Path) -> None:
    app = create_app("sample", tmp_path / "runs", allowed_hosts=["*"], token="s3cret")
    with TestClient(app, base_url="http://192.168.1.5:8000") as c:
        r = c.get("/api/state")
        assert r.status_code == 403 and "token" in r.json()["error"]
        assert c.get("/", params={"token": "guess"}).status_code == 403
        assert c.get("/api/state", headers={"authorization": "Token guess"}).status_code == 403
        # a script may send it in a header
        assert c.get("/api/state", headers={"authorization": "Token s3cret"}).status_code == 200
        # the printed address sets a cookie; the page's own requests then carry it
        page = c.get("/", params={"token": "s3cret"})
        assert page.status_code == 200 and "groundup_token" in page.headers["set-cookie"]
        assert "samesite=strict" in page.headers["set-cookie"].lower()
        assert c.get("/api/state").status_code == 200
        assert c.get("/static/main.js").status_code == 200
        assert c.post("/api/train/lr", json={"lr": 0.5}).status_code == 200
