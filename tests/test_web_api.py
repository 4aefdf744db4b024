"""The web page's API, through an HTTP client, and its training job.

Most tests use Starlette's TestClient against `create_app`; the Server-Sent
Events and the raw path-traversal requests go to a real uvicorn server on a free
127.0.0.1 port, as a browser would.
"""

from __future__ import annotations

import base64
import io
import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

from groundup.web import create_app
from groundup.web.app import STATIC_DIR
from groundup.web.events import Throttle
from groundup.web.guard import MAX_IMAGE_BYTES
from groundup.web.jobs import JobConflict, TrainingJob, read_settings
from helpers_data import require_fashion
from helpers_net import free_port, live_server

BASE = "http://127.0.0.1"


# -- helpers -------------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app("sample", tmp_path / "runs", phase_pause=0.0)
    with TestClient(app, base_url=BASE) as c:
        yield c


@pytest.fixture(scope="module")
def trained() -> Iterator[TestClient]:
    """One app with a 2-vs-9 linear model trained to the end (shared: read-only tests)."""
    app = create_app("sample", "unused-runs-dir", phase_pause=0.0)
    with TestClient(app, base_url=BASE) as c:
        assert c.post("/api/train/start", json={"delay": 0}).status_code == 200
        wait_for(c, "done")
        yield c


def wait_for(c: TestClient, *states: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll /api/state until the run is in one of `states`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        snap = c.get("/api/state").json()
        if snap["state"] in states:
            return snap
        time.sleep(0.02)
    raise AssertionError(f"the run never reached {states}; it is {snap['state']}")


def wait_until(condition: Any, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


def sample_digit(digit: int, split: str = "valid") -> np.ndarray:
    """The first real image of `digit` in the sample: uint8 (28, 28), light ink on black."""
    from groundup.data.sources import load_source

    images, labels = load_source("sample").split(split)
    return images[int(np.flatnonzero(labels == digit)[0])]


def drawing_uri(img28: np.ndarray, size: int = 280) -> str:
    """A digit as the page's pad would send it: a 280×280 PNG, light ink on black."""
    big = Image.fromarray(img28).resize((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    big.convert("RGBA").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def read_events(url: str, until: Any, out: list[dict[str, Any]], ready: threading.Event) -> None:
    """Collect the events of /api/events into `out` until `until(event)` is true."""
    with httpx.stream("GET", url + "/api/events", timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                event = json.loads(line[len("data: ") :])
                assert event["type"] == kind
                out.append(event)
                if kind == "snapshot":
                    ready.set()
                if until(event):
                    return


# -- the page and its files ----------------------------------------------------------------


def test_page_and_static_files_are_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/main.js"' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    modules = sorted(p.name for p in STATIC_DIR.glob("*.js"))
    assert {"api.js", "form.js", "charts.js", "pad.js", "browser.js", "tips.js"} <= set(modules)
    for name, kind in [*((m, "text/javascript") for m in modules), ("style.css", "text/css")]:
        r = client.get(f"/static/{name}")
        # a browser runs an ES module only when it is served as JavaScript
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), name


def test_the_page_loads_nothing_from_elsewhere() -> None:
    """Offline: no CDN, no external URL in any static file (the one link to w3.org-style
    namespaces would count too)."""
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text, path.name
        assert "//cdn" not in text, path.name


def test_unknown_routes_are_404_with_a_message(client: TestClient) -> None:
    for method, path in (
        ("GET", "/nope"),
        ("GET", "/api/nope"),
        ("POST", "/api/train/fly"),
        ("GET", "/static/nope.js"),
        ("GET", "/api/data/abc"),
    ):
        r = client.request(method, path, headers={"content-type": "application/json"})
        assert r.status_code == 404, path
        assert r.json()["error"], path


def test_wrong_method_is_405(client: TestClient) -> None:
    r = client.get("/api/train/start")
    assert r.status_code == 405
    assert "not allowed" in r.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/%252e%252e/%252e%252e/etc/passwd",
        "/static/....//....//etc/passwd",
        "/static/..%5c..%5c..%5cetc%5cpasswd",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/../jobs.py",
        "/static/..%2fjobs.py",
    ],
)
def test_no_path_leads_out_of_the_static_folder(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code in (400, 404)
    assert "root:" not in r.text and "TrainingJob" not in r.text


def test_raw_traversal_requests_on_a_real_server(tmp_path: Path) -> None:
    """Literal `..` in the request line, which HTTP clients would normalise away."""
    app = create_app("sample", tmp_path, phase_pause=0.0)
    with live_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        for target in (
            "/static/../../etc/passwd",
            "/static/../../../../../../etc/passwd",
            "/static/..%2f..%2f..%2fetc/passwd",
            "/static/../jobs.py",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                reply = b""
                while b"\r\n\r\n" not in reply or len(reply) < 200:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
            status = int(reply.split(b" ", 2)[1])
            assert status in (400, 404), target
            assert b"root:" not in reply and b"TrainingJob" not in reply


def test_other_host_names_are_refused(client: TestClient) -> None:
    """A web page elsewhere cannot reach the server through DNS rebinding."""
    r = client.get("/api/state", headers={"host": "attacker.example"})
    assert r.status_code == 400


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{bad json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"lr"', "JSON object"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"lr": -1}', "lr"),
        (b'{"lr": "fast"}', "lr"),
        (b'{"model": "cnn"}', "model"),
        (b'{"init": "ones"}', "init"),
        (b'{"digits": "2 2"}', "twice"),
        (b'{"digits": "2 x"}', "digits"),
        (b'{"digits": 29}', "digits"),
        (b'{"batch_size": 0}', "batch_size"),
        (b'{"batch_size": 2.5}', "batch_size"),
        (b'{"epochs": true}', "epochs"),
        (b'{"delay": 60}', "delay"),
        (b'{"colour": "red"}', "unknown setting"),
    ],
)
def test_malformed_json_or_settings_are_400(client: TestClient, body: bytes, words: str) -> None:
    r = client.post("/api/train/start", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]
    assert client.get("/api/state").json()["state"] == "ready"  # nothing started


def test_a_body_that_is_not_json_is_415(client: TestClient) -> None:
    r = client.post("/api/train/start", content=b"lr=1", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert "JSON" in r.json()["error"]


def test_bad_live_changes_are_400(client: TestClient) -> None:
    assert client.post("/api/train/lr", json={"lr": 0}).status_code == 400
    assert client.post("/api/train/lr", json={}).status_code == 400
    assert client.post("/api/train/lr", json={"lr": None}).status_code == 400
    assert client.post("/api/train/speed", json={"delay": -1}).status_code == 400


def test_a_drawing_over_the_size_limit_is_413(client: TestClient) -> None:
    big = "data:image/png;base64," + "A" * (MAX_IMAGE_BYTES + 10)
    r = client.post("/api/predict", json={"image": big})
    assert r.status_code == 413
    assert "KB" in r.json()["error"]


def test_a_body_without_a_length_is_still_limited(client: TestClient) -> None:
    """A chunked body has no Content-Length to check: it is counted as it arrives."""

    def chunks() -> Iterator[bytes]:
        yield b'{"image": "data:image/png;base64,'
        for _ in range(40):
            yield b"A" * 10_000
        yield b'"}'

    r = client.post("/api/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_a_png_that_decodes_to_a_huge_image_is_413(client: TestClient) -> None:
    buf = io.BytesIO()
    Image.new("L", (5000, 5000)).save(buf, format="PNG")  # tiny file, 25 M pixels
    assert len(buf.getvalue()) < MAX_IMAGE_BYTES
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    assert client.post("/api/predict", json={"image": uri}).status_code == 413


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (None, "data:image/png"),
        ("hello", "data:image/png"),
        ("data:image/png;base64,@@@", "base64"),
        ("data:image/png;base64," + base64.b64encode(b"not a png").decode(), "PNG"),
    ],
)
def test_bad_drawings_are_400(client: TestClient, image: Any, words: str) -> None:
    r = client.post("/api/predict", json={"image": image})
    assert r.status_code == 400
    assert words in r.json()["error"]


def test_an_empty_drawing_says_there_is_no_ink(client: TestClient) -> None:
    blank = drawing_uri(np.zeros((28, 28), dtype=np.uint8))
    r = client.post("/api/predict", json={"image": blank})
    assert r.status_code == 400
    assert "no ink" in r.json()["error"]


# -- the training run ----------------------------------------------------------------------


def test_a_second_start_is_409_until_the_first_is_stopped(client: TestClient) -> None:
    slow = {"delay": 0.2, "epochs": 50}
    assert client.post("/api/train/start", json=slow).json()["state"] == "running"
    r = client.post("/api/train/start", json=slow)
    assert r.status_code == 409
    assert "already training" in r.json()["error"]
    assert client.post("/api/train/pause", json={}).json()["state"] == "paused"
    assert client.post("/api/train/start", json=slow).status_code == 409  # paused counts
    assert client.post("/api/train/pause", json={}).status_code == 409  # nothing running to pause
    assert client.post("/api/train/stop", json={}).json()["state"] == "stopped"
    assert client.post("/api/train/stop", json={}).status_code == 409
    r = client.post("/api/train/start", json={"delay": 0, "epochs": 1})
    assert r.status_code == 200
    assert wait_for(client, "done")["epoch"] == 1


def test_step_trains_exactly_one_batch(client: TestClient) -> None:
    job: TrainingJob = client.app.state.job
    assert client.post("/api/train/step", json={}).json()["state"] == "paused"
    wait_until(lambda: len(job.live.points) == 1)
    for n in (2, 3):
        client.post("/api/train/step", json={})
        wait_until(lambda n=n: len(job.live.points) == n)
    time.sleep(0.3)  # a paused run must not creep on by itself
    assert len(job.live.points) == 3
    assert client.get("/api/state").json()["points"][-1][0] == pytest.approx(3 / 4)
    assert client.post("/api/train/resume", json={}).json()["state"] == "running"
    client.post("/api/train/speed", json={"delay": 0})
    assert wait_for(client, "done")["epoch"] == 20


def test_step_is_refused_while_running_or_after_the_end(client: TestClient) -> None:
    client.post("/api/train/start", json={"delay": 0.2, "epochs": 50})
    assert client.post("/api/train/step", json={}).status_code == 409
    client.post("/api/train/stop", json={})
    r = client.post("/api/train/step", json={})
    assert r.status_code == 409
    assert "Reset" in r.json()["error"]


def test_reset_replays_the_same_run(client: TestClient) -> None:
    ready = client.get("/api/state").json()
    client.post("/api/train/start", json={"delay": 0, "epochs": 5, "seed": 3})
    first = wait_for(client, "done")
    assert client.post("/api/train/reset", json={}).json()["state"] == "ready"
    again = client.get("/api/state").json()
    assert again["epoch"] == 0 and again["history"] == [] and again["points"] == []
    assert again["settings"]["seed"] == 3 and again["settings"]["epochs"] == 5
    client.post("/api/train/start", json=again["settings"])
    second = wait_for(client, "done")

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert strip(second["history"]) == strip(first["history"])
    assert second["points"] == first["points"]
    assert second["weights"] == first["weights"]
    assert ready["weights"] != first["weights"]  # it did learn something


def test_new_choices_before_a_run_set_up_a_new_ready_run(client: TestClient) -> None:
    """The page sends its choices with Reset (and Step) while the run is ready, so it
    shows the initial weights of what it will train."""
    r = client.post("/api/train/reset", json={"model": "net", "init": "normal", "seed": 4})
    assert r.status_code == 200
    snap = client.get("/api/state").json()
    assert (snap["state"], snap["model"], snap["tiles"], snap["epoch"]) == ("ready", "net", 30, 0)
    assert snap["settings"]["init"] == "normal" and snap["lr"] == 0.1
    assert client.post("/api/train/reset", json={"model": "cnn"}).status_code == 400
    assert client.get("/api/state").json()["model"] == "net"  # unchanged by a bad request
    job: TrainingJob = client.app.state.job
    client.post("/api/train/step", json={"model": "linear", "seed": 4})
    wait_until(lambda: len(job.live.points) == 1)
    assert client.get("/api/state").json()["model"] == "linear"
    client.post("/api/train/reset", json={})  # no choices: the same run again, from its start
    snap = client.get("/api/state").json()
    assert (snap["model"], snap["settings"]["seed"], snap["points"]) == ("linear", 4, [])


def test_reset_gives_back_the_initial_weights(client: TestClient) -> None:
    job: TrainingJob = client.app.state.job
    job.ensure_ready()
    before = {k: v.clone() for k, v in job.live.params.items()}
    assert set(before) == {"weight", "bias"}
    client.post("/api/train/start", json={"delay": 0, "epochs": 2})
    wait_for(client, "done")
    assert not torch.equal(job.live.params["weight"], before["weight"])
    client.post("/api/train/reset", json={})
    for k, v in before.items():
        assert torch.equal(job.live.params[k], v), k


def test_the_learning_rate_changes_while_training(client: TestClient) -> None:
    job: TrainingJob = client.app.state.job
    client.post("/api/train/start", json={"delay": 0.05, "epochs": 100})
    r = client.post("/api/train/lr", json={"lr": 0.25})
    assert r.status_code == 200 and r.json()["lr"] == 0.25
    wait_until(lambda: job.learn is not None and job.learn.opt is not None)
    assert job.learn.opt.lr == 0.25
    wait_until(lambda: job.live.points and job.live.points[-1][0] > 0.5)
    assert job.learn.opt.lr == 0.25  # still: no schedule undoes it
    client.post("/api/train/stop", json={})


def test_the_learning_rate_is_refused_after_the_run_ends(client: TestClient) -> None:
    client.post("/api/train/start", json={"delay": 0, "epochs": 1})
    wait_for(client, "done")
    r = client.post("/api/train/lr", json={"lr": 0.25})
    assert r.status_code == 409
    assert "the run has ended (done)" in r.json()["error"] and "Reset" in r.json()["error"]
    assert client.get("/api/state").json()["lr"] != 0.25  # the rate was not changed


def test_requests_are_answered_while_training_runs(client: TestClient) -> None:
    """Training runs in its own thread: the API answers during a run, not after it."""
    client.post("/api/train/start", json={"delay": 0.1, "epochs": 200})
    uri = drawing_uri(sample_digit(2))
    for _ in range(5):
        assert client.get("/api/state").json()["state"] == "running"
        assert client.post("/api/predict", json={"image": uri}).status_code == 200
        assert client.get("/api/data?limit=4").status_code == 200
    assert client.get("/api/state").json()["state"] == "running"  # not finished meanwhile
    client.post("/api/train/stop", json={})


def test_a_diverging_run_fails_with_a_message(client: TestClient) -> None:
    client.post(
        "/api/train/start",
        json={
            "delay": 0,
            "epochs": 5,
            "digits": "all",
            "model": "net",
            "lr": 1000,
            "opt": "sgd",
            # the page trained at a constant rate before it took the CLI's settings: the
            # same run as then (one-cycle would start it at lr/25, and a dead net can stall)
            "schedule": "constant",
            "augment": False,
        },
    )
    snap = wait_for(client, "failed", "done")
    assert snap["state"] == "failed"
    assert "smaller" in snap["message"]


# -- drawing -------------------------------------------------------------------------------


def test_a_drawn_2_and_9_are_read_right(trained: TestClient) -> None:
    for digit in (2, 9):
        r = trained.post("/api/predict", json={"image": drawing_uri(sample_digit(digit))})
        assert r.status_code == 200
        data = r.json()
        assert data["prediction"] == digit
        assert data["digits"] == [2, 9]
        assert sum(data["probs"]) == pytest.approx(1.0, abs=1e-3)
        assert data["epoch"] == 20


def test_the_drawing_is_prepared_as_mnist_digits_were(trained: TestClient) -> None:
    from groundup.data.images import prepare_digit

    img = sample_digit(9)
    data = trained.post("/api/predict", json={"image": drawing_uri(img)}).json()
    seen = np.array(data["input"])
    assert seen.shape == (28, 28)
    big = Image.fromarray(img).resize((280, 280), Image.Resampling.BILINEAR)
    np.testing.assert_allclose(seen, prepare_digit(big), atol=1e-3)
    # its centre of mass is where MNIST puts it
    rows, cols = np.indices(seen.shape)
    assert (seen * rows).sum() / seen.sum() == pytest.approx(14, abs=1.0)
    assert (seen * cols).sum() / seen.sum() == pytest.approx(14, abs=1.0)


def test_contributions_add_up_to_the_score(trained: TestClient) -> None:
    """weight × pixel, summed, plus the bias, is the linear model's score; its
    sigmoid is the probability of the first digit."""
    job: TrainingJob = trained.app.state.job
    data = trained.post("/api/predict", json={"image": drawing_uri(sample_digit(2))}).json()
    contrib = np.array(data["contribution"])
    assert contrib.shape == (28, 28)
    assert contrib.sum() + data["bias"] == pytest.approx(data["score"], abs=1e-2)
    p2 = 1 / (1 + math.exp(-data["score"]))
    assert data["probs"][0] == pytest.approx(p2, abs=1e-3)
    x = torch.tensor(data["input"]).reshape(784)
    by_hand = float(x @ job.live.params["weight"][:, 0] + job.live.params["bias"][0])
    assert data["score"] == pytest.approx(by_hand, abs=1e-2)
    assert data["towards"] == 2


# -- the data browser ----------------------------------------------------------------------


def test_the_browser_shows_mixed_training_images(trained: TestClient) -> None:
    r = trained.get("/api/data?split=train&offset=0&limit=24")
    data = r.json()
    assert data["total"] == 800 and len(data["items"]) == 24
    labels = {item["label"] for item in data["items"]}
    assert labels == {2, 9}  # a page shows both digits, not 24 twos
    item = data["items"][0]
    png = base64.b64decode(item["src"].split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (28, 28)
    right = sum(i["label"] == i["predicted"] for i in data["items"])
    assert right >= 22


def test_one_image_shows_its_stored_pixels_and_prediction(trained: TestClient) -> None:
    from groundup.data.sources import load_source

    raw = load_source("sample")
    keep = np.isin(raw.train_labels, [2, 9])
    item = trained.get("/api/data?limit=1").json()["items"][0]
    r = trained.get(f"/api/data/{item['index']}?split=train")
    data = r.json()
    expected = raw.train_images[keep][item["index"]]
    assert np.array_equal(np.array(data["pixels"]), expected)
    assert data["label"] == raw.train_labels[keep][item["index"]]
    assert data["prediction"] == item["predicted"]


def test_the_browser_refuses_bad_requests(trained: TestClient) -> None:
    assert trained.get("/api/data/800").status_code == 404
    assert trained.get("/api/data?limit=0").status_code == 400
    assert trained.get("/api/data?limit=many").status_code == 400
    assert trained.get("/api/data?split=test").status_code == 400
    assert trained.get("/api/data?offset=5000").json()["items"] == []
    assert trained.get("/api/data?split=valid&limit=5").json()["total"] == 200


# -- saving --------------------------------------------------------------------------------


def test_a_saved_model_works_with_the_command_line(
    client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from groundup.cli import main
    from groundup.runs.evaluate import evaluate_run
    from groundup.runs.saved import load_run

    client.post("/api/train/start", json={"delay": 0})
    snap = wait_for(client, "done")
    r = client.post("/api/save", json={"name": "from-the-page"})
    assert r.status_code == 200, r.text
    path = Path(r.json()["path"])
    assert path == (tmp_path / "runs" / "from-the-page").resolve()
    assert (path / "model.safetensors").is_file() and (path / "model.json").is_file()
    run = load_run(path)
    assert run.digits == (2, 9)
    assert run.meta["history"] == snap["history"]
    assert evaluate_run(run)["accuracy"] == pytest.approx(snap["history"][-1]["accuracy"])

    png = tmp_path / "two.png"
    Image.fromarray(255 - sample_digit(2)).save(png)  # dark ink on white paper, as a photo
    capsys.readouterr()
    assert main(["predict", str(path), str(png), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["predictions"][0]["digit"] == 2

    # the report, with the weights before training saved by the page
    from groundup.runs.saved import load_init_state

    init = load_init_state(path)
    assert init is not None and not torch.equal(init["weight"], run.model.weight.detach())
    capsys.readouterr()
    assert main(["report", str(path)]) == 0
    assert (path / "report.html").is_file()
    assert "saved with the run" in (path / "report.html").read_text()

    r = client.post("/api/save", json={"name": "from-the-page"})
    assert r.status_code == 409


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 65, "a b", 7, None])
def test_bad_run_names_are_400(client: TestClient, tmp_path: Path, name: Any) -> None:
    r = client.post("/api/save", json={"name": name})
    assert r.status_code == 400
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "runs").exists()


# -- other models --------------------------------------------------------------------------


def test_all_ten_digits_and_the_net(client: TestClient) -> None:
    client.post("/api/train/start", json={"digits": "all", "epochs": 1, "delay": 0})
    snap = wait_for(client, "done")
    assert snap["digits"] == list(range(10)) and snap["tiles"] == 10
    data = client.post("/api/predict", json={"image": drawing_uri(sample_digit(7))}).json()
    assert len(data["probs"]) == 10 and data["towards"] == data["prediction"]

    client.post("/api/train/start", json={"model": "net", "epochs": 1, "delay": 0})
    snap = wait_for(client, "done")
    assert snap["tiles"] == 30 and snap["units"] == 30
    data = client.post("/api/predict", json={"image": drawing_uri(sample_digit(2))}).json()
    assert data["contribution"] is None


# -- live events ---------------------------------------------------------------------------


def test_every_page_watching_sees_the_same_run(tmp_path: Path) -> None:
    app = create_app("sample", tmp_path, phase_pause=0.0)
    with live_server(app) as url:
        logs: list[list[dict[str, Any]]] = [[], []]
        readies = [threading.Event(), threading.Event()]

        def done(e: dict[str, Any]) -> bool:
            return e["type"] == "state" and e["state"] == "done"

        threads = [
            threading.Thread(target=read_events, args=(url, done, log, ready), daemon=True)
            for log, ready in zip(logs, readies, strict=True)
        ]
        for t in threads:
            t.start()
        for ready in readies:
            assert ready.wait(30)
        r = httpx.post(url + "/api/train/start", json={"delay": 0, "epochs": 3}, timeout=30)
        assert r.status_code == 200
        for t in threads:
            t.join(60)
            assert not t.is_alive()
    for log in logs:
        assert log[0]["type"] == "snapshot" and log[0]["state"] == "ready"
        assert [e["row"]["epoch"] for e in log if e["type"] == "epoch"] == [1, 2, 3]
        points = [p for e in log if e["type"] == "batch" for p in e["points"]]
        assert len(points) == 3 * 4  # every batch's loss arrives, even when throttled
        assert any(e["type"] == "watchers" and e["count"] == 2 for e in log)
    assert logs[0][-1]["message"] == logs[1][-1]["message"]


# -- the job, without HTTP -----------------------------------------------------------------


@pytest.fixture
def job() -> Iterator[TrainingJob]:
    job = TrainingJob("sample", phase_pause=0.0)
    job.events = []  # type: ignore[attr-defined]
    job.hub.publish = job.events.append  # type: ignore[attr-defined, method-assign]
    yield job
    job._halt()


def first_batch(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The first shuffled batch a run with seed 0 and batch size 256 trains on."""
    from groundup.data.tensors import DataLoader

    return next(iter(DataLoader(ds, 256, shuffle=True, seed=0)))


def test_a_stepped_batch_shows_each_step_in_order(job: TrainingJob) -> None:
    job.ensure_ready()
    job.step()
    wait_until(lambda: job.state == "paused" and len(job.live.points) == 1)
    wait_until(lambda: any(e["type"] == "batch" for e in job.events))
    phases = [e["step"] for e in job.events if e["type"] == "phase"]
    assert phases == ["init", "predict", "loss", "gradient", "step"]
    gradient = next(e for e in job.events if e.get("step") == "gradient")
    assert gradient["image"].startswith("data:image/png;base64,")


def test_the_gradient_shown_is_the_hand_computed_one(job: TrainingJob) -> None:
    """The size of the first batch's gradient, as the page shows it, against the
    article's chain rule worked out by hand (losses.mnist_loss_grad_linear)."""
    from groundup.learn.losses import mnist_loss_grad_linear

    job.ensure_ready()
    w0 = job.live.params["weight"].clone()
    b0 = job.live.params["bias"].clone()
    ds = job.learn.dls.train.dataset
    job.step()
    wait_until(lambda: any(e.get("step") == "gradient" for e in job.events))
    shown = next(e for e in job.events if e.get("step") == "gradient")["norm"]
    xb, yb = first_batch(ds)
    dw, db = mnist_loss_grad_linear(xb, yb, w0, b0)
    by_hand = math.sqrt(float((dw**2).sum() + (db**2).sum()))
    assert shown == pytest.approx(by_hand, rel=1e-4)


def test_the_weights_move_by_lr_times_the_gradient(job: TrainingJob) -> None:
    """Step 5 by hand: after one SGD batch, w1 = w0 - lr * dL/dw."""
    from groundup.learn.losses import mnist_loss_grad_linear

    job.ensure_ready()
    w0, b0 = job.live.params["weight"].clone(), job.live.params["bias"].clone()
    ds = job.learn.dls.train.dataset
    job.step()
    wait_until(lambda: len(job.live.points) == 1)
    dw, db = mnist_loss_grad_linear(*first_batch(ds), w0, b0)
    torch.testing.assert_close(job.live.params["weight"], w0 - 1.0 * dw)
    torch.testing.assert_close(job.live.params["bias"], b0 - 1.0 * db)


def test_the_job_refuses_actions_out_of_turn(job: TrainingJob) -> None:
    job.ensure_ready()
    with pytest.raises(JobConflict):
        job.pause()
    with pytest.raises(JobConflict):
        job.resume()
    with pytest.raises(JobConflict):
        job.stop()


def test_throttle_lets_ten_a_second_through() -> None:
    now = [100.0]
    t = Throttle(10, clock=lambda: now[0])
    assert t.ready()
    now[0] += 0.06
    assert not t.ready()
    now[0] += 0.06
    assert t.ready()
    passed = 0
    for _ in range(1000):  # one second of events, one every millisecond
        now[0] += 0.001
        passed += t.ready()
    assert 9 <= passed <= 10


def test_settings_defaults_follow_the_article(job: TrainingJob) -> None:
    """The page's defaults are groundup train's, resolved by TrainConfig: the article's
    for a pair; for ten digits Adam, the one-cycle schedule and, for the net on the
    small sample, augmentation."""
    resolved = job.settings({})["resolved"]
    assert (resolved["digits"], resolved["model"], resolved["lr"], resolved["epochs"]) == (
        [2, 9],
        "linear",
        1.0,
        20,
    )
    assert (resolved["batch_size"], resolved["opt"], resolved["schedule"]) == (
        256,
        "sgd",
        "constant",
    )
    net = job.settings({"model": "net"})["resolved"]
    assert (net["lr"], net["epochs"], net["hidden"]) == (0.1, 40, [30])
    everything = job.settings({"digits": "all", "model": "net"})["resolved"]
    assert everything["digits"] == list(range(10))
    assert (everything["opt"], everything["schedule"], everything["augment"]) == (
        "adam",
        "one-cycle",
        True,
    )
    assert (everything["lr"], everything["epochs"]) == (3e-3, 40)
    assert read_settings({"digits": [3, 7]})[0]["digits"] == [3, 7]


# -- pictures ------------------------------------------------------------------------------


def test_weight_tiles_use_the_diverging_scale() -> None:
    """Largest positive weight: full blue; largest negative: full red; zero: white;
    each column its own 28×28 tile, left to right."""
    from groundup.web.pictures import NEGATIVE, POSITIVE, tiles_png

    w = np.zeros((784, 3))
    w[0, 0] = 2.0  # tile 0, top-left pixel
    w[0, 1] = -2.0  # tile 1, top-left pixel
    w[27, 2] = 1.0  # tile 2, top-right pixel
    uri, shown, scale = tiles_png(w)
    assert (shown, scale) == (3, 2.0)
    img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")
    assert img.size == (3 * 28 + 2 * 2, 28)
    px = np.asarray(img).astype(int)  # (28, 88, 3)
    assert tuple(px[0, 0]) == tuple(POSITIVE.astype(int))
    assert tuple(px[0, 30]) == tuple(NEGATIVE.astype(int))
    assert tuple(px[5, 5]) == (255, 255, 255)
    assert np.abs(px[0, 60 + 27] - [144, 178, 213]).max() <= 2  # half-way to blue
    assert tuple(px[0, 28]) == (255, 255, 255)  # the gap between tiles


# -- the command ---------------------------------------------------------------------------


def test_serve_refuses_a_port_in_use() -> None:
    from groundup.cli.serve import check_port
    from groundup.errors import UsageError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(UsageError, match=f"port {port} is already in use"):
            check_port("127.0.0.1", port)


def test_serve_reports_bad_options_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from groundup.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", "70000"])
    assert exit_info.value.code == 2
    assert "--port" in capsys.readouterr().err
    assert main(["serve", "--data", "/no/such/folder", "--port", str(free_port())]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("groundup: error:") and "\n" not in err and "Traceback" not in err


def test_groundup_serve_starts_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """The real command in its own process: it prints the URL, binds 127.0.0.1, serves
    the page, and Ctrl-C ends it cleanly even while a page is watching."""
    import signal
    import subprocess
    import sys

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "groundup",
            "serve",
            "--port",
            str(port),
            "--runs-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        lines = []
        while url not in "".join(lines):
            line = proc.stdout.readline()
            assert line, f"the server ended early: {proc.stderr.read()}"
            lines.append(line)
        assert httpx.get(url, timeout=30).status_code == 200
        with socket.socket() as s:  # bound to the loopback address only
            s.settimeout(2)
            assert s.connect_ex(("127.0.0.1", port)) == 0
        with httpx.stream("GET", url + "api/events", timeout=30) as events:
            next(events.iter_lines())  # a page is watching
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr


def test_the_page_gets_the_names_of_the_labels(client: TestClient, tmp_path: Path) -> None:
    classes = client.get("/api/settings").json()["classes"]
    assert classes == {"word": "digit", "names": [str(d) for d in range(10)]}
    require_fashion()
    app = create_app("fashion-mnist", tmp_path / "runs", phase_pause=0.0)
    with TestClient(app, base_url=BASE) as c:
        classes = c.get("/api/settings").json()["classes"]
    assert classes["word"] == "class"
    assert classes["names"][0] == "0 T-shirt/top" and classes["names"][9] == "9 Ankle boot"
