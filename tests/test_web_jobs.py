"""The web page's job against the command line: the same settings, the same run.

The page holds no setting of its own: its form reads TrainConfig's schema and
resolved defaults from the server, and a run on the page is built as `groundup
train` builds it (TrainConfig -> load_data -> make_run -> fit).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from starlette.testclient import TestClient

from groundup.web import create_app
from groundup.web.app import STATIC_DIR
from groundup.web.jobs import TrainingJob
from helpers_cli import run_cli


@pytest.fixture
def job() -> Iterator[TrainingJob]:
    job = TrainingJob("sample", phase_pause=0.0)
    job.events = []  # type: ignore[attr-defined]
    job.hub.publish = job.events.append  # type: ignore[attr-defined, method-assign]
    yield job
    job._halt()


def wait_until(condition: Any, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


def without_seconds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_the_page_trains_the_ten_digit_net_as_the_command_line_does(
    job: TrainingJob, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ten-digit net through the web job (not the browser) and through `groundup
    train`, same settings and seed: Adam, the one-cycle schedule and augmentation on
    both, and the same history and weights, bit for bit.

    Equal, not merely close: both runs build the learner the same way in this one
    process, on the CPU with the same torch threads, and run the same float
    operations in the same order. The page's callback only reads the weights between
    batches, and draws no random numbers (the shuffles and the augmentation have
    their own seeded generators). Four epochs rather than the default 40 keep the
    test quick; the path is the same for any number.
    """
    settings = {"digits": "all", "model": "net", "epochs": 4, "seed": 1}
    out = tmp_path / "cli-run"
    code, _, err = run_cli(
        capsys, "train", "--digits", "all", "--model", "net", "--epochs", "4", "--seed", "1",
        "--device", "cpu", "--quiet", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    from groundup.runs.saved import load_run

    cli = load_run(out)

    job.start({**settings, "delay": 0})
    wait_until(lambda: job.state in ("done", "failed"))
    assert job.state == "done", job.message
    config = job.trained.config.to_dict()
    assert (config["opt"], config["schedule"], config["augment"]) == ("adam", "one-cycle", True)
    for key in ("lr", "epochs", "batch_size", "hidden", "init", "seed", "opt", "schedule"):
        assert config[key] == cli.meta["config"][key], key

    web_history = without_seconds(job.learn.history)
    assert web_history == without_seconds(cli.meta["history"])
    assert web_history[-1]["accuracy"] > 0.8  # it learned: 4 epochs of 40
    web_state = job.run().model.state_dict()
    for name, tensor in cli.model.state_dict().items():
        assert torch.equal(web_state[name], tensor), name


def test_a_learning_rate_set_by_hand_switches_the_schedule_off(job: TrainingJob) -> None:
    """Under one-cycle the rate moves every batch; once set on the page it stays put
    for the rest of the run, and Reset brings the schedule back."""
    job.start({"digits": "all", "model": "net", "epochs": 3, "delay": 0.03})
    wait_until(lambda: job.live is not None and len(job.live.points) >= 3)
    scheduled = [e["lr"] for e in job.events if e["type"] == "batch"]
    assert len(set(scheduled)) > 1 or len(job.live.points) >= 3  # one-cycle is moving it
    seen = len(job.events)
    summary = job.set_lr(5e-4)
    assert summary["lr"] == 5e-4 and summary["lr_by_hand"]
    assert "one-cycle schedule is off" in summary["note"]
    wait_until(lambda: sum(e["type"] == "batch" for e in job.events[seen:]) >= 4)
    after = [e["lr"] for e in job.events[seen:] if e["type"] == "batch"]
    assert after and all(lr == 5e-4 for lr in after), after

    job.reset()
    assert job.summary()["lr_by_hand"] is False
    assert job.summary()["lr"] == job.trained.config.lr == 3e-3
    job.start({"digits": "all", "model": "net", "epochs": 3, "delay": 0.03})
    start = len(job.events)
    wait_until(lambda: sum(e["type"] == "batch" for e in job.events[start:]) >= 4)
    again = [e["lr"] for e in job.events[start:] if e["type"] == "batch"]
    assert len(set(again)) > 1  # the schedule moves it again


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app("sample", tmp_path / "runs", phase_pause=0.0)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def test_the_form_reads_its_choices_and_defaults_from_the_server(client: TestClient) -> None:
    from groundup.learn.init import SCHEMES
    from groundup.learn.optim import OPTIMIZERS
    from groundup.runs.config import TrainConfig

    r = client.get("/api/settings?digits=all&model=net")
    assert r.status_code == 200, r.text
    schema, resolved = r.json()["schema"], r.json()["resolved"]
    assert schema["init"]["choices"] == list(SCHEMES)
    assert schema["opt"]["choices"] == list(OPTIMIZERS)
    assert schema["model"]["choices"] == ["linear", "net"]  # the models the page draws
    assert schema["digits"]["choices"] == list(range(10))
    assert schema["batch_size"]["default"] == TrainConfig().batch_size
    assert "data" not in schema and "device" not in schema  # the server's, not a page's
    assert set(schema["delay"]) >= {"default", "min", "max", "help"}
    expected = TrainConfig(digits=tuple(range(10)), model="net").resolved(n_train=4000)
    for key in ("lr", "epochs", "opt", "schedule", "augment", "batch_size", "hidden", "init"):
        assert resolved[key] == expected.to_dict()[key], key
    pair = client.get("/api/settings").json()["resolved"]
    assert (pair["lr"], pair["epochs"], pair["schedule"]) == (1.0, 20, "constant")
    for bad, field in (("model=cnn", "model"), ("colour=red", "colour"), ("digits=2+2", "twice")):
        r = client.get(f"/api/settings?{bad}")
        assert r.status_code == 400 and field in r.json()["error"], bad


def test_the_page_copies_no_default_range_or_choice() -> None:
    """The HTML and the modules hold no choice list, default or range of the settings:
    they come from GET /api/settings."""
    from groundup.learn.init import SCHEMES
    from groundup.learn.optim import OPTIMIZERS

    for path in STATIC_DIR.iterdir():
        if path.suffix not in (".html", ".js"):
            continue
        text = path.read_text()
        for name in (*SCHEMES, *OPTIMIZERS, "one-cycle", "constant"):
            assert f'value="{name}"' not in text and f'"{name}"' not in text, (path.name, name)
        # numbers a copy of the defaults would hold: the batch size, the rates, epochs
        for number in ("256", "0.003", "3e-3", "1e-2"):
            assert not re.search(rf"(?<![\w.]){re.escape(number)}(?![\w.])", text), (
                path.name,
                number,
            )
        assert not re.search(r'\b(min|max|placeholder)="', text), path.name
