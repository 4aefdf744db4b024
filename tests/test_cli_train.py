"""`groundup train`, `groundup evaluate` and `groundup predict`, as a user runs them:
output, stop conditions, GD against SGD, user-style images and every bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers_cli import run_cli as cli

EPOCH_KEYS = ["epoch", "train_loss", "valid_loss", "accuracy", "seconds"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """`groundup train --json` with the defaults, run once: (run dir, its JSON)."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    out = subprocess.run(
        [sys.executable, "-m", "groundup", "train", "--out", str(run_dir), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return run_dir, json.loads(out.stdout)


# -- train ------------------------------------------------------------------------------------


def test_json_output_has_exactly_the_promised_schema(trained):
    run_dir, result = trained
    assert list(result) == ["epochs", "final", "run_dir"]
    assert len(result["epochs"]) == 20
    for i, row in enumerate(result["epochs"], start=1):
        assert list(row) == EPOCH_KEYS and row["epoch"] == i
        assert all(isinstance(row[k], float) for k in EPOCH_KEYS[1:])
    assert list(result["final"]) == ["accuracy", "valid_loss"]
    assert result["final"]["accuracy"] == result["epochs"][-1]["accuracy"] >= 0.985
    assert result["run_dir"] == str(run_dir)
    assert (run_dir / "model.safetensors").is_file() and (run_dir / "model.json").is_file()
    meta = json.loads((run_dir / "model.json").read_text())
    assert meta["seed"] == 0 and meta["config"]["model"] == "linear"


def test_train_prints_a_table_and_a_summary(capsys, tmp_path):
    code, out, err = cli(capsys, "train", "--epochs", "3", "--out", str(tmp_path / "r"))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("data: sample, digits 2 9: 800 train, 200 valid | model linear")
    assert "device cpu" in lines[0] or "device cuda" in lines[0]
    assert lines[1].split() == EPOCH_KEYS
    assert [line.split()[0] for line in lines[2:5]] == ["1", "2", "3"]
    assert lines[5].startswith("done: 3 epochs in ") and f"saved to {tmp_path / 'r'}" in lines[5]


def test_quiet_prints_nothing(capsys, tmp_path):
    code, out, err = cli(capsys, "train", "--epochs", "2", "--quiet", "--out", str(tmp_path / "r"))
    assert (code, out, err) == (0, "", "")
    assert (tmp_path / "r" / "model.json").is_file()


@pytest.mark.parametrize(
    ("flags", "tty", "bar"),
    [([], True, True), ([], False, False), (["--quiet"], True, False), (["--json"], True, False)],
)
def test_progress_bar_only_on_a_terminal_and_not_quiet(
    capsys, tmp_path, monkeypatch, flags, tty, bar
):
    import groundup.runs.training
    from groundup.learn.callbacks import ProgressBar

    seen = []
    real = groundup.runs.training.make_run

    def spy(config, *args, **kwargs):
        seen.extend(kwargs.get("cbs", ()))
        return real(config, *args, **kwargs)

    monkeypatch.setattr(groundup.runs.training, "make_run", spy)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    code, _, _ = cli(capsys, "train", "--epochs", "1", "--out", str(tmp_path / "r"), *flags)
    assert code == 0
    assert any(isinstance(cb, ProgressBar) for cb in seen) == bar


def test_articles_recipe_is_one_flag_away(capsys, tmp_path):
    code, out, _ = cli(
        capsys, "train", "--init", "normal", "--std", "1.0", "--epochs", "2", "--json",
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 0
    meta = json.loads((tmp_path / "r" / "model.json").read_text())
    assert (meta["model"]["init"], meta["model"]["std"]) == ("normal", 1.0)
    assert (meta["config"]["lr"], meta["config"]["batch_size"]) == (1.0, 256)


def test_net_with_hidden_width(capsys, tmp_path):
    code, out, _ = cli(
        capsys, "train", "--model", "net", "--hidden", "8", "--epochs", "2", "--json",
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 0
    meta = json.loads((tmp_path / "r" / "model.json").read_text())
    assert (meta["model"]["name"], meta["model"]["hidden"]) == ("net", [8])


def test_same_seed_same_json_numbers(capsys, tmp_path):
    runs = []
    for name in ("a", "b"):
        code, out, _ = cli(
            capsys, "train", "--model", "net", "--epochs", "3", "--seed", "4", "--json",
            "--out", str(tmp_path / name),
        )  # fmt: skip
        assert code == 0
        epochs = json.loads(out)["epochs"]
        runs.append([{k: v for k, v in row.items() if k != "seconds"} for row in epochs])
    assert runs[0] == runs[1]


# -- stop conditions, GD against SGD ----------------------------------------------------------


def test_target_accuracy_stops_early(capsys, tmp_path):
    code, out, _ = cli(
        capsys, "train", "--target-accuracy", "0.97", "--json", "--out", str(tmp_path / "r")
    )
    epochs = json.loads(out)["epochs"]
    accs = [e["accuracy"] for e in epochs]
    assert code == 0 and len(epochs) < 20
    assert accs[-1] >= 0.97 and all(a < 0.97 for a in accs[:-1])


def test_patience_stops_when_valid_loss_stalls(capsys, tmp_path):
    # a learning rate this large makes the validation loss jump about
    code, out, _ = cli(
        capsys, "train", "--lr", "30", "--epochs", "40", "--patience", "2", "--json",
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 0
    losses = [e["valid_loss"] for e in json.loads(out)["epochs"]]
    assert len(losses) < 40
    # stopped because the last two epochs did not beat the best before them ...
    assert min(losses[-2:]) >= min(losses[:-2])
    # ... and not earlier
    for end in range(3, len(losses)):
        assert min(losses[end - 2 : end]) < min(losses[: end - 2])


def test_full_batch_takes_one_step_per_epoch(capsys, tmp_path, monkeypatch):
    from groundup.learn.optim import BasicOptim

    steps = []
    real_step = BasicOptim.step

    def counting_step(self):
        steps.append(1)
        real_step(self)

    monkeypatch.setattr(BasicOptim, "step", counting_step)
    gd = cli(capsys, "train", "--full-batch", "--epochs", "3", "--quiet", "--out", str(tmp_path))
    assert gd[0] == 0
    assert len(steps) == 3
    steps.clear()
    assert cli(capsys, "train", "--epochs", "3", "--quiet", "--out", str(tmp_path / "s"))[0] == 0
    assert len(steps) == 3 * 4  # SGD: ceil(800 / 256) = 4 steps per epoch


# -- evaluate ---------------------------------------------------------------------------------


def test_evaluate_reports_accuracy_loss_and_confusion(capsys, trained):
    run_dir, result = trained
    code, out, _ = cli(capsys, "evaluate", str(run_dir), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["accuracy"] == pytest.approx(result["final"]["accuracy"], abs=1e-4)
    assert report["loss"] == pytest.approx(result["final"]["valid_loss"], abs=1e-4)
    assert [sum(r) for r in report["confusion"]] == [100, 100]
    code, out, _ = cli(capsys, "evaluate", str(run_dir))
    assert code == 0
    assert f"accuracy {report['accuracy']:.4f}" in out and "confusion counts" in out


# -- predict ----------------------------------------------------------------------------------


def _user_style(digit_image: np.ndarray, path: Path) -> Path:
    """A dark digit on white, off-centre, 90x70 pixels, from a 28x28 MNIST digit."""
    img = 255 - digit_image  # dark ink on white paper
    img = np.pad(img, ((6, 30), (40, 4)), constant_values=255)  # (64, 72), off-centre
    Image.fromarray(img).resize((90, 70), Image.Resampling.BILINEAR).save(path)
    return path


def _a_clear_two(run_dir: Path, sample_raw) -> np.ndarray:
    """The first validation 2 the model calls a 2 with probability above 0.95."""
    from groundup.runs.saved import load_run

    run = load_run(run_dir)
    for img in sample_raw.valid_images[sample_raw.valid_labels == 2]:
        x = torch.from_numpy(img.reshape(1, 784) / 255.0).float()
        if run.predict_proba(x)[0, 0] > 0.95:
            return img
    raise AssertionError("no clear 2 in the validation set")


def test_predict_a_user_style_image(capsys, trained, sample_raw, tmp_path):
    run_dir, _ = trained
    two = _a_clear_two(run_dir, sample_raw)
    path = _user_style(two, tmp_path / "my two.png")
    assert Image.open(path).size == (90, 70)
    code, out, _ = cli(capsys, "predict", str(run_dir), str(path), "--json")
    assert code == 0
    (pred,) = json.loads(out)["predictions"]
    assert pred["digit"] == 2 and pred["probability"] > 0.5
    assert set(pred["probabilities"]) == {"2", "9"}
    code, out, _ = cli(capsys, "predict", str(run_dir), str(path))
    assert out.startswith(f"{path}: 2 (probability ")


def test_a_bad_file_among_good_ones(capsys, trained, sample_raw, tmp_path):
    run_dir, _ = trained
    good = _user_style(_a_clear_two(run_dir, sample_raw), tmp_path / "two.png")
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    missing = tmp_path / "gone.png"
    code, out, err = cli(capsys, "predict", str(run_dir), str(bad), str(good), str(missing))
    assert code == 1
    assert out.splitlines() == [line for line in out.splitlines() if line.startswith(str(good))]
    assert len(out.splitlines()) == 1 and ": 2 (probability" in out
    assert "notes.png" in err and "gone.png" in err and "Traceback" not in err
    code, out, _ = cli(capsys, "predict", str(run_dir), str(bad), str(good), "--json")
    preds = json.loads(out)["predictions"]
    assert code == 1 and "error" in preds[0] and preds[1]["digit"] == 2


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--lr", "0"], "--lr must be above 0"),
        (["--lr", "-0.5"], "--lr must be above 0"),
        (["--lr", "fast"], "--lr must be a number"),
        (["--lr", "nan"], "--lr"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--epochs", "-2"], "--epochs must be at least 1"),
        (["--epochs", "2.5"], "--epochs"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--batch-size", "-8"], "--batch-size must be at least 1"),
        (["--model", "resnet"], "--model must be one of linear, net, cnn, mean, not 'resnet'"),
        (["--init", "he"], "--init must be one of"),
        (["--colour"], "unrecognized arguments: --colour"),
        (["--digits", "2", "2"], "--digits lists a digit twice"),
        (["--digits", "2"], "--digits needs at least two classes"),
        (["--digits", "²", "9"], "--digits takes single digits"),
        (["--hidden", "0", "--model", "net"], "--hidden must be at least 1"),
        (["--std", "0"], "--std"),
        (["--device", "abacus"], "--device must be auto, cpu, cuda, cuda:N or mps, not 'abacus'"),
        (["--target-accuracy", "97"], "--target-accuracy must be above 0 and at most 1"),
        (["--patience", "0"], "--patience must be at least 1"),
        (["--seed", "99999999999999999999"], "--seed must be at least 0 and at most"),
    ],
)
def test_bad_train_options_exit_2_with_one_line(capsys, tmp_path, args, needle):
    code, out, err = cli(capsys, "train", *args, "--out", str(tmp_path / "r"))
    assert code == 2
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # nothing was written


def test_unknown_command_exits_2(capsys):
    code, _, err = cli(capsys, "fly")
    assert code == 2 and "invalid choice: 'fly'" in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_missing_run_directory_exits_1(capsys, tmp_path, command):
    extra = [str(tmp_path / "x.png")] if command == "predict" else []
    code, out, err = cli(capsys, command, str(tmp_path / "no-such-run"), *extra)
    assert code == 1
    assert err == f"groundup: error: no run directory at {tmp_path / 'no-such-run'}\n"


def test_missing_model_file_exits_1(capsys, trained, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(trained[0], run_dir)
    (run_dir / "model.safetensors").unlink()
    code, _, err = cli(capsys, "evaluate", str(run_dir))
    assert code == 1 and "model.safetensors is missing" in err and err.count("\n") == 1


def test_divergence_exits_1_and_suggests_a_smaller_lr(capsys, tmp_path):
    # weights of 1e38 overflow float32 in the first prediction
    code, _, err = cli(
        capsys, "train", "--init", "normal", "--std", "1e38", "--out", str(tmp_path / "r")
    )
    assert code == 1
    assert "epoch 1, batch 1" in err and "learning rate 1" in err and "smaller --lr" in err
    assert "nothing was saved" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_divergence_leaves_an_earlier_run_at_out_as_it_was(capsys, trained, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained[0], run_dir)
    before = (run_dir / "model.safetensors").read_bytes()
    code, _, err = cli(capsys, "train", "--init", "normal", "--std", "1e38", "--out", str(run_dir))
    assert code == 1 and f"nothing was saved; {run_dir} is left as it was" in err
    assert (run_dir / "model.safetensors").read_bytes() == before


def test_two_runs_ending_in_the_same_second_get_their_own_folders(capsys, tmp_path, monkeypatch):
    import groundup.cli.train as train_cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train_cli.time, "strftime", lambda fmt: "20260101-120000")
    # the first claims its name by creating the folder; the second must not take it
    first = train_cli._new_run_dir("linear")
    assert first == Path("runs/20260101-120000-linear") and first.is_dir()
    assert train_cli._new_run_dir("linear") == Path("runs/20260101-120000-linear-2")
    # through the command: a third run that second gets -3 and leaves -1, -2 alone
    code, out, err = cli(capsys, "train", "--epochs", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["run_dir"] == "runs/20260101-120000-linear-3"
    assert not any(first.iterdir())  # nothing was written into the first one's folder


def test_hidden_widths_only_for_net(capsys):
    code, _, err = cli(capsys, "train", "--model", "linear", "--layers", "10,10")
    assert code == 2 and "--hidden sets the widths of model net" in err  # --layers is --hidden
    code, _, err = cli(capsys, "train", "--model", "cnn", "--hidden", "5")
    assert code == 2 and "model cnn has no hidden layer" in err


def test_debug_shows_the_traceback(tmp_path):
    # a real process, so that what a user sees is what Python prints for an uncaught error
    # (without --debug: test_missing_run_directory_exits_1)
    missing = str(tmp_path / "no-such-run")
    debug = subprocess.run(
        [sys.executable, "-m", "groundup", "evaluate", missing, "--debug"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "RunError: no run directory" in debug.stderr


def test_evaluate_on_its_own_data_adds_no_note(linear_run, capsys):
    from groundup.cli import main

    assert main(["evaluate", str(linear_run[0]), "--data", "sample"]) == 0
    assert "note:" not in capsys.readouterr().err


def test_evaluate_on_other_data_says_so(linear_run, capsys):
    from groundup.cli import main
    from helpers_data import require_fashion

    require_fashion()
    assert main(["evaluate", str(linear_run[0]), "--data", "fashion-mnist"]) == 0
    assert "trained on sample, and is evaluated here on fashion-mnist" in capsys.readouterr().err


def test_predict_with_the_mean_model_reports_distances_not_probabilities(
    capsys, sample_raw, tmp_path
):
    """The mean model's softmax over distances read as 'probability 0.1027' for every
    digit: it says nothing. It reports the distance to each class-mean image instead."""
    code, _, _ = cli(capsys, "train", "--model", "mean", "--digits", "all", "--quiet",
                     "--out", str(tmp_path / "mean"))  # fmt: skip
    assert code == 0
    nine = sample_raw.valid_images[sample_raw.valid_labels == 9][0]
    Image.fromarray(nine).save(tmp_path / "nine.png")
    code, out, _ = cli(capsys, "predict", str(tmp_path / "mean"), str(tmp_path / "nine.png"))
    assert code == 0 and "probability" in out and "a distance, not a probability" in out
    assert re.search(r"nine\.png: \d \(the nearest class-mean image: RMSE distance 0\.\d{4}", out)
    code, out, _ = cli(capsys, "predict", str(tmp_path / "mean"), str(tmp_path / "nine.png"),
                       "--json")  # fmt: skip
    (entry,) = json.loads(out)["predictions"]
    assert entry["score"] == "distance" and "probability" not in entry
    distances = {int(k): v for k, v in entry["distances"].items()}
    assert entry["digit"] == min(distances, key=distances.get)
    assert entry["distance"] == min(distances.values()) and 0 < entry["distance"] < 1
