"""`compare` and `lr_find`, in the library and on the command line, on small data."""

from __future__ import annotations

import json
import math
import statistics

import pytest
import torch

from groundup.errors import UsageError
from groundup.runs.config import TrainConfig
from groundup.runs.experiments import Comparison, Trial, compare, parse_seeds
from groundup.runs.lrfind import LRFind, _suggest, lr_find


@pytest.mark.parametrize(
    "text, seeds", [("0-4", [0, 1, 2, 3, 4]), ("0,1,2", [0, 1, 2]), ("3", [3]), (" 2-3 ", [2, 3])]
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["4-1", "a", "0-", "1,,2", "1-2-3", "-1", "1,1", "0-2,5", ""])
def test_parse_seeds_refuses_wrong_forms(text):
    with pytest.raises(UsageError, match="--seeds"):
        parse_seeds(text)


def test_summary_is_mean_and_sample_std_by_hand():
    def trial(value, seed, acc, loss):
        return Trial(value, seed, [{"accuracy": acc, "valid_loss": loss, "seconds": 0.5}])

    c = Comparison("init", ["a", "b"], [0, 1, 2])
    c.trials = [trial("a", 0, 0.9, 0.3), trial("a", 1, 0.8, 0.5), trial("a", 2, 0.7, 0.4)]
    c.trials += [trial("b", 0, 0.5, 1.0), Trial("b", 1, [], diverged=True)]
    a, b = c.summary()
    assert a["accuracy_mean"] == pytest.approx(0.8)
    assert a["accuracy_std"] == pytest.approx(0.1)  # sqrt(((.1)^2 + 0 + (.1)^2) / 2)
    assert a["valid_loss_mean"] == pytest.approx(0.4)
    assert a["seconds_mean"] == pytest.approx(0.5)
    assert (b["runs"], b["diverged"], b["accuracy_std"]) == (2, 1, 0.0)


def test_compare_inits_over_seeds(make_dls):
    config = TrainConfig(epochs=2, device="cpu")
    result = compare(config, "init", ["normal", "kaiming"], seeds=[0, 1], dls=make_dls())
    assert [(t.value, t.seed) for t in result.trials] == [
        ("normal", 0),
        ("normal", 1),
        ("kaiming", 0),
        ("kaiming", 1),
    ]
    normal, kaiming = result.summary()
    accs = [t.final["accuracy"] for t in result.trials if t.value == "kaiming"]
    assert kaiming["accuracy_mean"] == pytest.approx(statistics.fmean(accs))
    assert kaiming["accuracy_std"] == pytest.approx(statistics.stdev(accs))
    # the article's std-1.0 start sits in the sigmoid's flat tails; a scaled one does not
    assert kaiming["accuracy_mean"] > normal["accuracy_mean"]
    # each run is the same as training that config alone: same seed, same result
    from groundup.runs.training import make_run

    run = make_run(TrainConfig(epochs=2, device="cpu", seed=1), dls=make_dls(seed=1)).fit()
    assert run.history[-1]["accuracy"] == result.trials[-1].final["accuracy"]
    curves = result.curves()
    assert [p["epoch"] for p in curves["kaiming"]] == [1, 2]
    assert curves["kaiming"][1]["seconds"] >= curves["kaiming"][0]["seconds"]


def test_compare_full_batch_takes_one_step_per_epoch(make_dls):
    steps = {}

    class CountSteps:
        def before_fit(self, learn):
            self.n = 0

        def after_batch(self, learn):
            self.n += 1

    from groundup.runs.experiments import _with_setting
    from groundup.runs.training import make_learner

    for value in ("full", 32):
        counter = CountSteps()
        c = _with_setting(TrainConfig(epochs=1, device="cpu"), "batch_size", value, 0)
        make_learner(c, dls=make_dls(c.batch_size), cbs=[counter]).fit(1, 1.0)
        steps[value] = counter.n
    assert steps == {"full": 1, 32: math.ceil(800 / 32)}


def test_compare_refuses_unknown_setting(make_dls):
    with pytest.raises(UsageError, match="cannot compare"):
        compare(TrainConfig(), "colour", ["red"], dls=make_dls())


def test_lr_find_sweeps_stops_and_restores(sample_raw):
    from groundup.data.tensors import DataLoaders, Dataset, to_tensors
    from groundup.runs.training import make_learner

    digits = (0, 1, 2, 3)
    raw = sample_raw
    train = Dataset(*to_tensors(raw.train_images, raw.train_labels, digits), digits)
    valid = Dataset(*to_tensors(raw.valid_images, raw.valid_labels, digits), digits)
    learn = make_learner(
        TrainConfig(digits=digits, model="net", hidden=[32], device="cpu", schedule="constant"),
        dls=DataLoaders.from_datasets(train, valid, batch_size=64),
    )
    before = [p.detach().clone() for p in learn.model.parameters()]
    result = lr_find(learn, start=1e-5, end=100.0, num=100)
    # the rates rise by a constant factor: (100 / 1e-5)^(1 / 99) per batch
    ratio = (100 / 1e-5) ** (1 / 99)
    for a, b in zip(result.lrs, result.lrs[1:], strict=False):
        assert b / a == pytest.approx(ratio, rel=1e-9)
    assert result.lrs[0] == pytest.approx(1e-5)
    # Adam at lr 100 blows the loss up, long before the end of the sweep
    assert result.stop_reason in ("exploded", "diverged")
    assert len(result.lrs) < 100
    assert result.losses[-1] > 4 * min(result.losses) or result.stop_reason == "diverged"
    assert 1e-5 < result.suggestion < 1.0
    # the weights are back, and the learner trains as before
    for p, q in zip(learn.model.parameters(), before, strict=True):
        assert torch.equal(p, q)
    assert learn.opt is None and learn.history == [] and learn.epoch_count == 0
    learn.fit(1, result.suggestion)
    assert learn.history[-1]["accuracy"] > 0.5


def test_suggestion_by_hand():
    lrs = [10.0**k for k in range(-5, 2)]  # 1e-5 ... 10
    losses = [2.0, 2.0, 1.9, 1.2, 0.8, 0.7, 3.5]
    r = LRFind(lrs, losses, losses, "exploded")
    _suggest(r)
    assert r.min_loss_lr == pytest.approx(1.0)
    assert r.suggestion == pytest.approx(0.1)
    assert r.steepest_lr == pytest.approx(1e-3)  # from 1.9 to 1.2, the biggest fall


def test_cli_compare_inits_json(cli):
    r = cli(
        "compare", "--init", "normal,xavier,kaiming", "--seeds", "0-1", "--epochs", "2", "--json"
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["setting"] == "init" and out["seeds"] == [0, 1]
    assert [row["value"] for row in out["summary"]] == ["normal", "xavier", "kaiming"]
    for row in out["summary"]:
        assert 0 <= row["accuracy_mean"] <= 1 and row["accuracy_std"] >= 0
        assert row["runs"] == 2


def test_cli_compare_batch_sizes_table_and_plot(cli, tmp_path):
    plot = tmp_path / "gd-vs-sgd.png"
    r = cli("compare", "--batch-size", "full,256,32", "--epochs", "2", "--plot", str(plot))
    assert r.returncode == 0, r.stderr
    assert "valid accuracy" in r.stdout and "after each epoch" in r.stdout
    for label in ("full", "256", "32"):
        assert label in r.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--init", "normal,kaiming", "--seeds", "4-1"], "--seeds"),
        (["--init", "normal,kaiming", "--seeds", "x"], "--seeds"),
        (["--init", "normal,kaiming", "--batch-size", "full,32"], "exactly one"),
        (["--seeds", "0-4"], "exactly one"),
        (["--init", "normal,he"], "--init must be one of normal, uniform"),
        (["--batch-size", "0,32"], "--batch-size must be at least 1"),
    ],
)
def test_cli_compare_bad_input_is_one_line_exit_2(cli, args, words):
    r = cli("compare", *args)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert words in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_compare_warns_about_zeros_in_a_net(cli):
    r = cli(
        "compare",
        "--model",
        "net",
        "--hidden",
        "4",
        "--init",
        "zeros,kaiming",
        "--epochs",
        "1",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert "learns nothing" in r.stderr


def test_cli_lr_find_prints_and_plots_in_cwd(cli, tmp_path):
    r = cli("lr-find", "--digits", "0", "1", "2", "--num", "60", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "suggested learning rate" in r.stdout
    assert (tmp_path / "lr-find.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left over


def test_cli_lr_find_json_and_bad_range(cli, tmp_path):
    r = cli("lr-find", "--num", "30", "--json", "--plot", str(tmp_path / "lr.png"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["lrs"]) == len(out["losses"]) <= 30
    assert out["plot"] == str(tmp_path / "lr.png")
    r = cli("lr-find", "--start", "1", "--end", "0.1", "--no-plot")
    assert r.returncode == 2 and "--start" in r.stderr


def test_lr_find_refuses_a_model_without_a_learning_rate(capsys):
    from groundup.cli import main

    assert main(["lr-find", "--model", "mean", "--digits", "all", "--no-plot"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no learning rate" in err[0]
