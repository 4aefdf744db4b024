"""Shared fixtures for the training-side tests. None is autouse: each test asks for
what it needs by name.

- `sample_raw`: the bundled 5,000-digit sample, loaded once per session.
- `pair_sets`: the 2-vs-9 train and valid `Dataset`s made from it (800 / 200 images).
- `make_dls`: a factory for fresh `DataLoaders` over `pair_sets`. Loaders count their
  shuffled epochs, so every test gets its own; the tensors underneath are shared and
  must not be modified in place.
- `dls_pair`: `make_dls()` with the defaults (batch size 256, seed 0).
- `linear_run`: a run directory of the default linear model, trained once per session.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """One math thread per process, unless OMP_NUM_THREADS says otherwise.

    The tests' tensors are small, and this 2-core machine runs several jobs at once.
    There, torch's two spinning OpenMP threads fight each other and the other jobs:
    with a load average of 8, training the default linear model took 2-6 s with two
    threads and 0.12-0.18 s with one. Subprocesses (the CLI tests) inherit the setting.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # The width trap is decided by timing two products once per machine: tests must not
    # depend on timing, so they run unpadded unless a test sets names.PAD_OUTPUT itself
    # (the command line takes the same answer from GROUNDUP_PAD_OUTPUT, in subprocesses)
    os.environ.setdefault("GROUNDUP_PAD_OUTPUT", "0")
    import torch

    from groundup.learn import names

    names.PAD_OUTPUT = os.environ["GROUNDUP_PAD_OUTPUT"] == "1"

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    # rich draws for an 80-column terminal when output is captured, unless COLUMNS says
    # otherwise: fix it, so that a runner's own COLUMNS cannot change what tests read.
    # Tests about narrow terminals set it themselves.
    os.environ["COLUMNS"] = "80"


@pytest.fixture(scope="session")
def sample_raw():
    from groundup.data.sources import load_source

    return load_source("sample")


@pytest.fixture(scope="session")
def pair_sets(sample_raw):
    from groundup.data.tensors import Dataset, to_tensors

    digits = (2, 9)
    raw = sample_raw
    train = Dataset(*to_tensors(raw.train_images, raw.train_labels, digits), digits, "train")
    valid = Dataset(*to_tensors(raw.valid_images, raw.valid_labels, digits), digits, "valid")
    return train, valid


@pytest.fixture
def make_dls(pair_sets) -> Callable[..., object]:
    from groundup.data.tensors import DataLoaders

    def make(batch_size: int = 256, seed: int = 0):
        train, valid = pair_sets
        return DataLoaders.from_datasets(train, valid, batch_size, seed, source="sample")

    return make


@pytest.fixture
def dls_pair(make_dls):
    return make_dls()


@pytest.fixture(scope="session")
def linear_run(tmp_path_factory, pair_sets) -> tuple[Path, list[dict]]:
    """(run directory, history) of `TrainConfig()` trained on the sample and saved."""
    from groundup.data.tensors import DataLoaders
    from groundup.runs.config import TrainConfig
    from groundup.runs.saved import save_run
    from groundup.runs.training import make_run

    dls = DataLoaders.from_datasets(*pair_sets, source="sample")
    run = make_run(TrainConfig(device="cpu"), dls=dls).fit()
    run_dir = tmp_path_factory.mktemp("runs") / "linear"
    save_run(run_dir, run)
    return run_dir, run.history


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `groundup ARGS` in this process (no new interpreter to import torch again):
    gives its returncode, stdout and stderr, as subprocess.run would."""
    from helpers_cli import run_cli

    def run(*args: str, cwd=None) -> SimpleNamespace:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        code, out, err = run_cli(capsys, *args)
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return run


@pytest.fixture(scope="session")
def untar_home(tmp_path_factory) -> Path:
    """A cache folder for `untar_data` shared by the session's tests: its MNIST folders
    are built once, from the bundled sample. Tests point XDG_CACHE_HOME at it."""
    return tmp_path_factory.mktemp("untar-cache")
