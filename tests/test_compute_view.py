"""The compute view: model.json, compare and the accuracy-vs-compute figure report FLOPs."""

from __future__ import annotations

import json

from groundup.learn.compute import forward_flops
from groundup.learn.models import linear_model


def test_a_saved_run_records_its_training_flops(linear_run):
    run_dir, history = linear_run
    compute = json.loads((run_dir / "model.json").read_text())["compute"]
    fwd = forward_flops(linear_model(n_out=1))  # the pair's linear model: 2 · 784 · 1
    assert compute["forward_flops_per_image"] == fwd == 2 * 784
    assert compute["epochs"] == len(history)
    assert compute["training_flops"] == 3 * fwd * compute["train_images"] * len(history)


def test_compare_reports_training_flops(cli):
    r = cli("compare", "--model", "linear,net", "--epochs", "1")
    assert r.returncode == 0, r.stderr
    assert "training FLOPs" in r.stdout
    # 800 training images, 1 epoch: linear 3 · 1568 · 800; net (30 hidden) 3 · 2·(784·30+30)
    assert "3.76 MFLOP" in r.stdout
    assert f"{3 * 2 * (784 * 30 + 30) * 800 / 1e6:.3g} MFLOP" in r.stdout


def test_the_figure_trains_the_models_on_tiny_epochs(monkeypatch, tmp_path, cli):
    from groundup.runs import experiments

    monkeypatch.setattr(experiments, "COMPUTE_MODELS", ("mean", "linear"))
    out = tmp_path / "avc.png"
    r = cli("figure", "accuracy-vs-compute", "--epochs", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mean:" in r.stdout and "linear:" in r.stdout
    points = experiments.accuracy_vs_compute(epochs=1)
    mean, linear = points
    assert mean["training_flops"] == 4000 * 784  # one pass of sums over the sample
    assert linear["training_flops"] == 3 * 2 * 784 * 10 * 4000 * 1
    assert linear["epochs"] == 1


def test_the_figure_reads_saved_runs(linear_run, tmp_path, cli):
    run_dir, _ = linear_run
    out = tmp_path / "avc.svg"
    r = cli("figure", "accuracy-vs-compute", str(run_dir), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text().lstrip().startswith("<?xml")


def test_a_run_without_its_cost_is_a_clear_error(linear_run, tmp_path, cli):
    run_dir, _ = linear_run
    old = tmp_path / "old"
    old.mkdir()
    meta = json.loads((run_dir / "model.json").read_text())
    del meta["compute"]
    (old / "model.json").write_text(json.dumps(meta))
    r = cli("figure", "accuracy-vs-compute", str(old), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2
    assert "older groundup" in r.stderr and "Traceback" not in r.stderr
