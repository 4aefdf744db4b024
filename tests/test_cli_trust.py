"""Issue 12, on the command line: `groundup train --out` never loses a user's file,
refuses what it cannot do before training, and bad options get one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from groundup.learn.models import ModelSpec, build_model
from groundup.runs.saved import META
from helpers_cli import run_cli as cli
from helpers_runs import save_model


def _saved_run(run_dir: Path, accuracy: float = 0.995) -> Path:
    """A saved run of the default task that claims `accuracy` (no training needed)."""
    torch.manual_seed(0)
    history = [{"epoch": 1, "train_loss": 0.1, "valid_loss": 0.1, "accuracy": accuracy}]
    return save_model(run_dir, build_model(ModelSpec()), history=history)


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err


def test_retraining_refuses_a_folder_with_the_users_files_before_training(capsys, tmp_path):
    run_dir = _saved_run(tmp_path / "run")
    (run_dir / "my_notes.txt").write_text("mine")
    code, out, err = cli(capsys, "train", "--out", str(run_dir))
    assert code == 1 and "my_notes.txt" in err and _one_line(err)
    assert out == ""  # refused before training: no epoch table
    assert (run_dir / "my_notes.txt").read_text() == "mine"


@pytest.mark.parametrize("where", ["here", "above"])
def test_out_that_is_the_current_folder_is_refused_before_training(
    capsys, tmp_path, monkeypatch, where
):
    run_dir = _saved_run(tmp_path / "run")
    monkeypatch.chdir(run_dir)
    code, out, err = cli(capsys, "train", "--out", "." if where == "here" else "..")
    assert code == 2 and "--out" in err and _one_line(err) and out == ""
    assert (run_dir / META).is_file()


@pytest.mark.parametrize("out", ["/proc/groundup-run", "/sys/groundup-run"])
def test_out_that_cannot_be_written_is_refused_before_training(capsys, out):
    code, stdout, err = cli(capsys, "train", "--out", out)
    assert code == 1 and "cannot create" in err and _one_line(err) and stdout == ""


def test_a_worse_run_says_the_earlier_one_scored_better(capsys, tmp_path):
    run_dir = _saved_run(tmp_path / "run", accuracy=0.995)
    code, out, _ = cli(capsys, "train", "--epochs", "1", "--lr", "1e-6", "--out", str(run_dir))
    assert code == 0
    assert f"note: {run_dir} held an earlier run that scored better (valid accuracy 0.9950" in out
    _saved_run(run_dir, accuracy=0.995)
    code, out, _ = cli(
        capsys, "train", "--epochs", "1", "--lr", "1e-6", "--out", str(run_dir), "--json"
    )
    assert json.loads(out)["replaced_better_run"] == {"accuracy": 0.995}


def test_a_loss_that_grows_huge_but_finite_is_divergence(capsys, tmp_path):
    """Issue 12: `--digits all --lr 1e30 --opt sgd` ended with a valid loss of 1.2e29."""
    code, _, err = cli(
        capsys, "train", "--digits", "all", "--lr", "1e30", "--opt", "sgd", "--epochs", "1",
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 1 and "over 100 times its start" in err and _one_line(err)
    assert not (tmp_path / "r").exists()


def test_later_command_recovers_an_interrupted_save_and_says_so(capsys, tmp_path):
    run_dir = _saved_run(tmp_path / "run")
    left = tmp_path / ".run.999999999.abcd1234.tmp"  # a save killed before its swap
    left.mkdir()
    (left / META).write_text("{}")
    code, _, err = cli(capsys, "evaluate", str(run_dir))
    assert code == 0 and f"groundup: note: removed {left.name}" in err and not left.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--lr", "3.5e38"], "--lr must be above 0 and at most 3.40282e+38"),
        (["--model", "net", "--hidden", "1000000000"], "--hidden must be at least 1 and at most"),
        (["--model", "net", "--layers", "60000,60000,60000"], "more than this computer's"),
    ],
)
def test_options_no_run_can_use_exit_2_before_allocating(capsys, tmp_path, args, needle):
    code, out, err = cli(capsys, "train", *args, "--out", str(tmp_path / "r"))
    assert code == 2 and needle in err and _one_line(err) and out == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CPU-only build's message")
@pytest.mark.parametrize("device", ["cuda", "cuda:99"])
def test_a_missing_gpu_gets_the_same_line_for_cuda_and_cuda_n(capsys, tmp_path, device):
    code, _, err = cli(capsys, "train", "--device", device, "--out", str(tmp_path / "r"))
    assert code == 2 and _one_line(err)
    assert f"--device {device} was asked for, but PyTorch sees no CUDA GPU here" in err


@pytest.mark.parametrize("command", [["report"], ["figure", "curves"], ["evaluate"]])
def test_a_hand_edited_history_is_one_line_in_every_command(capsys, tmp_path, command):
    """Issue 12: `"history": "x"` gave tracebacks in `report` and `figure curves`."""
    run_dir = _saved_run(tmp_path / "run")
    meta = json.loads((run_dir / META).read_text())
    meta["history"] = "x"
    (run_dir / META).write_text(json.dumps(meta))
    out = ["--out", str(tmp_path / "c.png")] if command[0] == "figure" else []
    code, _, err = cli(capsys, *command, str(run_dir), *out)
    assert code == 1 and "'history' must be a list of epochs" in err and _one_line(err)
