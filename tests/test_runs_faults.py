"""Fault injection: the save of a run folder is killed (SIGKILL) at each of its file-system
steps in turn, and after every kill `--out` must hold a loadable run, the old or the new.

Each kill runs in a child forked from this process, which stops itself on the k-th call
to fsync, rename, exchange or unlink: no retraining and no new interpreter per kill.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
import torch

from groundup import atomic
from groundup.learn.models import ModelSpec, build_model
from groundup.runs.saved import load_run, recover_run_dir
from helpers_runs import save_model

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="fork and SIGKILL: Linux only"
)

STEPS = ("fsync", "replace", "rename", "rmdir", "unlink")  # the os calls a save makes


def _models():
    torch.manual_seed(0)
    old = build_model(ModelSpec())
    torch.manual_seed(1)
    new = build_model(ModelSpec())
    return old, new


def _save(run_dir: Path, model) -> None:
    save_model(run_dir, model, init_state=model.state_dict())


def _instrument(monkeypatch, on_step) -> None:
    """Call `on_step(name)` before each file-system step of the save."""
    for name in STEPS:
        real = getattr(os, name)

        def wrapped(*args, _real=real, _name=name, **kwargs):
            on_step(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, wrapped)
    real_exchange = atomic.exchange

    def exchange(a, b):
        on_step("exchange")
        return real_exchange(a, b)

    monkeypatch.setattr(atomic, "exchange", exchange)


def _which(run_dir: Path, old, new) -> str:
    weight = load_run(run_dir).model.state_dict()["weight"]
    for name, model in (("old", old), ("new", new)):
        if torch.equal(weight, model.state_dict()["weight"]):
            return name
    raise AssertionError("the weights at --out are neither the old run's nor the new one's")


@pytest.mark.parametrize("swap", ["exchange", "two renames"])
def test_a_save_killed_at_any_step_leaves_a_loadable_run(tmp_path, monkeypatch, swap):
    old, new = _models()
    base = tmp_path / "base"
    _save(base, old)
    if swap == "two renames":  # a system without renameat2
        monkeypatch.setattr(atomic, "exchange", lambda a, b: False)
    elif not atomic.exchange(base, base):  # swapping a path with itself: a no-op probe
        pytest.skip("this file system has no renameat2(RENAME_EXCHANGE)")

    steps: list[str] = []
    with monkeypatch.context() as m:
        count = tmp_path / "count" / "run"
        shutil.copytree(base, count)
        _instrument(m, steps.append)
        _save(count, new)
    assert len(steps) >= 6, steps

    seen = set()
    for k in range(1, len(steps) + 1):
        work = tmp_path / f"kill{k}"
        shutil.copytree(base, work / "run")
        pid = os.fork()
        if pid == 0:  # the child: save, and stop dead at the k-th step
            try:
                calls = [0]

                def on_step(name, calls=calls, k=k):
                    calls[0] += 1
                    if calls[0] == k:
                        os.kill(os.getpid(), signal.SIGKILL)

                _instrument(monkeypatch, on_step)
                _save(work / "run", new)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (k, steps)
        if swap == "exchange":  # no gap at all: --out is a run at every instant
            seen.add(_which(work / "run", old, new))
        notes = recover_run_dir(work / "run")
        # a later command finds the leftovers, repairs or removes them, and says so
        assert sorted(p.name for p in work.iterdir()) == ["run"], (k, steps[k - 1])
        assert notes or steps[k - 1] == "fsync" and k == len(steps), (k, steps[k - 1])
        seen.add(_which(work / "run", old, new))
    assert seen == {"old", "new"}  # the kills fell both before and after the swap


def test_recovery_leaves_a_save_in_progress_alone(tmp_path):
    """A leftover whose process still runs is a save under way, not debris."""
    run_dir = tmp_path / "run"
    _save(run_dir, _models()[0])
    busy = tmp_path / f".run.{os.getppid()}.abcd1234.tmp"  # our parent: alive
    busy.mkdir()
    (busy / "model.json").write_text("{}")
    assert recover_run_dir(run_dir) == [] and busy.exists()


def test_recovery_never_removes_the_users_files(tmp_path):
    run_dir = tmp_path / "run"
    _save(run_dir, _models()[0])
    dead = tmp_path / ".run.999999999.abcd1234.tmp"  # no such process
    dead.mkdir()
    (dead / "model.json").write_text("{}")
    (dead / "notes.txt").write_text("mine")
    notes = recover_run_dir(run_dir)
    assert (dead / "notes.txt").read_text() == "mine" and not (dead / "model.json").exists()
    assert notes == [f"kept {dead}: it holds files groundup did not write"]
