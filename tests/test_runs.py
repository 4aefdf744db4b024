"""Run directories: the save/load round trip, what model.json records, atomic writes,
no pickle, and clear errors for missing, corrupt or mismatched files."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from groundup import atomic
from groundup.errors import RunError
from groundup.learn.models import ModelSpec, build_model
from groundup.runs.config import TrainConfig
from groundup.runs.saved import INIT_WEIGHTS, META, WEIGHTS, atomic_write_bytes, load_run
from helpers_runs import save_model


@pytest.mark.parametrize("spec", [ModelSpec("linear"), ModelSpec("net", hidden=[30])])
def test_round_trip_gives_identical_predictions(tmp_path, pair_sets, spec):
    _, valid = pair_sets
    torch.manual_seed(0)
    model = build_model(spec)
    history = [{"epoch": 1, "train_loss": 0.3, "valid_loss": 0.2, "accuracy": 0.9, "seconds": 0.01}]
    config = TrainConfig(model=spec.name, hidden=spec.hidden if spec.name == "net" else None)
    save_model(tmp_path / "run", model, config, history)
    run = load_run(tmp_path / "run")
    with torch.no_grad():
        assert torch.equal(run.model(valid.x), model(valid.x))
    assert run.spec == spec and run.digits == (2, 9) and run.binary
    probs = run.predict_proba(valid.x)
    assert probs.shape == (200, 2)
    assert torch.allclose(probs.sum(dim=1), torch.ones(200))
    assert torch.allclose(probs[:, 0], torch.sigmoid(model(valid.x)[:, 0].detach()))


def other_devices() -> list[str]:
    """The devices a run can travel through here: "meta" (shapes without data, as a
    stand-in for a GPU on a CPU-only machine) and CUDA where it is present."""
    return ["meta"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("name", ["linear", "net", "cnn"])
def test_saved_weights_cross_devices_and_come_back_the_same(tmp_path, pair_sets, name):
    """Saved on the CPU, loaded onto another device and back: the same weights, the
    same predictions and the same file. The file holds no device: a run trained on a
    GPU loads on a CPU-only machine, and the other way round."""
    from safetensors.torch import load_file

    _, valid = pair_sets
    spec = ModelSpec(name)
    torch.manual_seed(0)
    model = build_model(spec)
    config = TrainConfig(model=name)
    save_model(tmp_path / "cpu", model, config)
    saved = load_file(str(tmp_path / "cpu" / WEIGHTS))
    for device in other_devices():
        there = load_run(tmp_path / "cpu", device=device)
        params = list(there.model.parameters())
        assert params and all(p.device.type == device for p in params)
        assert all(p.is_leaf and p.requires_grad for p in params)
        # the model on the other device holds the file's shapes; from there, back home
        back = there.model.to("cpu") if device != "meta" else build_model(spec)
        if device == "meta":
            for key, p in there.model.state_dict().items():
                assert p.shape == saved[key].shape
            back.load_state_dict(saved)  # what a CPU-only machine does with a GPU's file
        save_model(tmp_path / device, back, config)
        assert (tmp_path / device / WEIGHTS).read_bytes() == (
            tmp_path / "cpu" / WEIGHTS
        ).read_bytes()
        with torch.no_grad():
            assert torch.equal(load_run(tmp_path / device).model(valid.x), model(valid.x))


def test_a_model_saved_from_another_device_is_saved_on_the_cpu(tmp_path):
    """save_run moves the weights to the CPU itself: a model whose weights live on the
    meta device has no data to save, and says so instead of writing an empty file."""
    spec = ModelSpec("linear")
    with pytest.raises(NotImplementedError, match="meta"):
        save_model(tmp_path / "run", build_model(spec).to("meta"))
    assert not (tmp_path / "run" / WEIGHTS).exists()


def test_model_json_records_what_is_needed(linear_run):
    run_dir, history = linear_run
    # every run keeps the weights it started from, for the report
    assert sorted(p.name for p in run_dir.iterdir()) == [INIT_WEIGHTS, META, WEIGHTS]
    meta = json.loads((run_dir / META).read_text())
    assert meta["format"] == "groundup-run" and meta["format_version"] == 1
    assert meta["model"]["name"] == "linear" and meta["model"]["n_in"] == 784
    assert meta["model"]["n_out"] == 1 and meta["model"]["init"] == "kaiming"
    assert meta["digits"] == [2, 9]
    assert meta["data"]["source"] == "sample"
    assert "255" in meta["preprocessing"]["scale"]
    assert "centre of mass" in meta["preprocessing"]["user_images"]
    assert meta["history"] == history and len(history) == 20
    assert meta["final"]["accuracy"] == history[-1]["accuracy"]
    assert "seconds" not in meta["final"]
    assert meta["seed"] == 0 and meta["config"]["lr"] == 1.0
    assert meta["versions"]["torch"] == torch.__version__
    assert {"groundup", "python"} <= set(meta["versions"])


def test_weights_are_safetensors_and_loading_never_unpickles(linear_run, monkeypatch):
    run_dir, _ = linear_run
    raw = (run_dir / WEIGHTS).read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert set(header) - {"__metadata__"} == {"weight", "bias"}
    assert header["weight"]["shape"] == [784, 1] and header["weight"]["dtype"] == "F32"

    def refuse(*args, **kwargs):
        raise AssertionError("a user file was unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    load_run(run_dir)


# -- atomic writes ----------------------------------------------------------------------------


def _fail(*args, **kwargs):
    raise OSError("disk full (simulated)")


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch, step):
    target = tmp_path / "model.json"
    target.write_bytes(b"old contents")
    monkeypatch.setattr(atomic.os, step, _fail)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_bytes(target, b"new contents, half written")
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "model.json"
    target.write_bytes(b"old")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_save_run_failing_midway_keeps_the_previous_run_loadable(tmp_path, linear_run, monkeypatch):
    run_dir = tmp_path / "run"
    shutil.copytree(linear_run[0], run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    monkeypatch.setattr(atomic.os, "replace", _fail)
    with pytest.raises(RunError, match="cannot save the run .*simulated"):
        save_model(run_dir, build_model(ModelSpec()), TrainConfig())
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary folder left
    load_run(run_dir)


def test_saving_over_a_run_replaces_the_whole_folder(tmp_path, linear_run):
    run_dir = tmp_path / "run"
    shutil.copytree(linear_run[0], run_dir)
    (run_dir / "report.html").write_text("about the old model")
    save_model(run_dir, build_model(ModelSpec()), TrainConfig())
    # nothing of the old run survives beside the new weights
    assert sorted(p.name for p in run_dir.iterdir()) == ["model.json", "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    load_run(run_dir)


@pytest.mark.parametrize("kind", ["file", "foreign folder"])
def test_save_run_refuses_an_out_that_is_not_a_run(tmp_path, kind):
    target = tmp_path / "out"
    if kind == "file":
        target.write_text("mine")
    else:
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="choose another --out"):
        save_model(target, build_model(ModelSpec()), TrainConfig())
    assert (target.read_text() if kind == "file" else (target / "notes.txt").read_text()) == "mine"


def test_atomic_write_creates_folders(tmp_path):
    atomic_write_bytes(tmp_path / "a" / "b" / "f.bin", b"xyz")
    assert (tmp_path / "a" / "b" / "f.bin").read_bytes() == b"xyz"


# -- loading: clear errors --------------------------------------------------------------------


@pytest.fixture
def run_copy(tmp_path, linear_run) -> Path:
    d = tmp_path / "run"
    shutil.copytree(linear_run[0], d)
    return d


def _edit_meta(run_dir: Path, change) -> None:
    meta = json.loads((run_dir / META).read_text())
    change(meta)
    (run_dir / META).write_text(json.dumps(meta))


def test_missing_directory_or_files(tmp_path, run_copy):
    with pytest.raises(RunError, match="no run directory at .*nowhere"):
        load_run(tmp_path / "nowhere")
    (run_copy / WEIGHTS).unlink()
    with pytest.raises(RunError, match="model.safetensors is missing"):
        load_run(run_copy)
    (run_copy / META).unlink()
    with pytest.raises(RunError, match="model.json is missing"):
        load_run(run_copy)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda d: (d / META).write_text("{not json"), "model.json is not valid JSON"),
        (lambda d: (d / META).write_bytes(b"\xff\xfe\x00"), "model.json is not valid JSON"),
        (lambda d: (d / META).write_text("[1, 2]"), "not written by groundup"),
        (lambda d: (d / META).write_text('{"format": "other"}'), "not written by groundup"),
        (lambda d: (d / WEIGHTS).write_bytes(b""), "model.safetensors is corrupt"),
        (lambda d: (d / WEIGHTS).write_bytes(b"\x00" * 64), "model.safetensors is corrupt"),
        (
            lambda d: (d / WEIGHTS).write_bytes((d / WEIGHTS).read_bytes()[:100]),
            "model.safetensors is corrupt",
        ),
        (lambda d: (d / WEIGHTS).write_bytes(pickle.dumps({"weight": 1})), "is corrupt"),
    ],
)
def test_corrupt_files(run_copy, damage, match):
    damage(run_copy)
    with pytest.raises(RunError, match=match):
        load_run(run_copy)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m: m.update(format_version=99), "newer groundup"),
        (lambda m: m.update(format_version="1"), "format_version"),
        (lambda m: m["model"].update(name="net"), "does not match the model"),
        (lambda m: m["model"].update(n_in=100), "does not match the model"),
        (lambda m: m["model"].update(name="resnet"), "names an unknown model 'resnet'"),
        (lambda m: m["model"].update(name="net", hidden="wide"), "its model cannot be built"),
        (lambda m: m.update(digits=[2, 9, 4]), "3 digits need 3 output"),
        (lambda m: m.update(digits=[2, 2]), "'digits' must list"),
        (lambda m: m.update(digits="29"), "'digits' must list"),
        (lambda m: m.pop("digits"), "'digits' must list"),
        (lambda m: m.update(model="linear"), "'model' must describe"),
    ],
)
def test_mismatched_model_json(run_copy, change, match):
    _edit_meta(run_copy, change)
    with pytest.raises(RunError, match=match) as err:
        load_run(run_copy)
    assert "\n" not in str(err.value)


def test_weights_of_another_model(run_copy, tmp_path):
    torch.manual_seed(0)
    save_model(tmp_path / "net", build_model(ModelSpec("net")), TrainConfig(model="net"))
    shutil.copy(tmp_path / "net" / WEIGHTS, run_copy / WEIGHTS)
    with pytest.raises(RunError, match="does not match the model in model.json"):
        load_run(run_copy)


def test_no_temp_files_after_a_save(tmp_path):
    save_model(tmp_path / "r", build_model(ModelSpec()), TrainConfig())
    assert sorted(os.listdir(tmp_path / "r")) == [META, WEIGHTS]
