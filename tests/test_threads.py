"""The thread policy: --threads, else OMP_NUM_THREADS, else by the model's size."""

from __future__ import annotations

import json

import pytest
import torch

from groundup.errors import SettingError
from groundup.runs.config import MANY_THREADS, MANY_THREADS_FLOPS, TrainConfig, default_threads


def test_small_models_get_one_thread_large_ones_up_to_the_cores():
    assert default_threads(MANY_THREADS_FLOPS - 1, cpus=2) == 1
    assert default_threads(MANY_THREADS_FLOPS, cpus=2) == min(MANY_THREADS, 2)
    assert default_threads(MANY_THREADS_FLOPS, cpus=1) == 1
    assert default_threads(10**12, cpus=64) == MANY_THREADS


def test_omp_num_threads_is_the_users_choice():
    assert default_threads(0, cpus=2, env="2") == 2
    assert default_threads(10**12, cpus=2, env="1") == 1
    assert default_threads(0, cpus=2, env="lots") == 1  # not a number: the policy decides
    assert default_threads(0, cpus=2, env="0") == 1


def test_the_nets_get_one_thread_and_the_cnn_two():
    """Measured: a second thread makes the nets 2.4-2.9x slower beside a busy neighbour for
    at most 1.3x when quiet; the cnn gains 2.0x quiet and loses 1.24x beside one."""
    from groundup.learn.compute import forward_flops
    from groundup.learn.models import cnn, linear_model, mlp

    assert forward_flops(linear_model(n_out=10)) < MANY_THREADS_FLOPS
    assert forward_flops(mlp((256, 128), n_out=10)) < MANY_THREADS_FLOPS
    assert forward_flops(cnn()) >= MANY_THREADS_FLOPS


def test_threads_is_checked():
    assert TrainConfig(threads="2").threads == 2
    with pytest.raises(SettingError, match="threads"):
        TrainConfig(threads=0)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_run_uses_and_records_its_threads(threads, tmp_path, cli):
    before = torch.get_num_threads()
    try:
        out = tmp_path / "run"
        r = cli("train", "--epochs", "1", "--threads", str(threads), "--out", str(out))
        assert r.returncode == 0, r.stderr
        assert json.loads((out / "model.json").read_text())["config"]["threads"] == threads
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_without_threads_the_run_records_the_policys_choice(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        out = tmp_path / "run"
        assert cli("train", "--epochs", "1", "--out", str(out)).returncode == 0
        assert json.loads((out / "model.json").read_text())["config"]["threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_workers_on_one_machine_share_its_cores(monkeypatch):
    from groundup.learn.models import cnn
    from groundup.runs import training

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(training.os, "cpu_count", lambda: 2)
    before = torch.get_num_threads()
    try:
        config = TrainConfig(model="cnn")
        assert training.use_threads(config, cnn(), world_size=1) == 2
        assert training.use_threads(config, cnn(), world_size=2) == 1
    finally:
        torch.set_num_threads(before)
