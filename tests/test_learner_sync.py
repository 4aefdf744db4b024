"""No host synchronisation per batch: an epoch of each default model reads values
back from its device a handful of times, however many batches it has.

On the CPU the reads are counted (every Python-level `item`, `tolist`, `float()`,
`int()`, `bool()`, `nonzero`, `numpy` and `cpu` on a tensor). Where CUDA is present,
the same epochs also run with `torch.cuda.set_sync_debug_mode("error")`, which
raises at any synchronising call, apart from the one read the Learner makes at the
end of each epoch.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from groundup.data.tensors import DataLoaders, Dataset, to_tensors
from groundup.learn.learner import Learner
from groundup.runs.config import TrainConfig
from groundup.runs.training import TrainedRun, make_run

# Tensor methods through which Python code reads a value back from a device
READS = (
    "item",
    "tolist",
    "__float__",
    "__int__",
    "__bool__",
    "__index__",
    "nonzero",
    "numpy",
    "cpu",
)

# The default runs, on 800 training and 200 validation images in batches of 32: 25
# batches per epoch, so a read per batch could not hide under the limit
RUNS = {
    "linear": {"model": "linear"},
    "net": {"model": "net"},
    "cnn-ten-digits": {"model": "cnn", "digits": tuple(range(10))},  # one-cycle, Adam, augment
    "net-ten-digits": {"model": "net", "digits": tuple(range(10))},
}
EPOCHS = 2
PER_EPOCH = 3  # "a handful": today one read of the epoch; room for a callback's own


@contextlib.contextmanager
def counting_reads() -> Iterator[Counter[str]]:
    """Count every call of the READS methods on any tensor while inside."""
    counts: Counter[str] = Counter()
    saved = {name: getattr(torch.Tensor, name) for name in READS}

    def counted(name: str, method: Any) -> Any:
        def wrapper(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return method(self, *args, **kwargs)

        return wrapper

    for name, method in saved.items():
        setattr(torch.Tensor, name, counted(name, method))
    try:
        yield counts
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


def run_for(settings: dict[str, Any], sample_raw: Any, device: str = "cpu") -> TrainedRun:
    digits = settings.get("digits", (2, 9))
    raw = sample_raw
    sets = [
        Dataset(*to_tensors(images, labels, digits), digits, split)
        for images, labels, split in (
            (raw.train_images, raw.train_labels, "train"),
            (raw.valid_images, raw.valid_labels, "valid"),
        )
    ]
    sets = [sets[0][:800], sets[1][:200]]  # the same size for every run
    dls = DataLoaders.from_datasets(*sets, batch_size=32, source="sample")
    config = TrainConfig(device=device, batch_size=32, epochs=EPOCHS, **settings)
    return make_run(config, dls=dls)


@pytest.mark.parametrize("name", list(RUNS))
def test_an_epoch_reads_from_the_device_a_handful_of_times(name: str, sample_raw: Any) -> None:
    torch.manual_seed(0)
    run = run_for(RUNS[name], sample_raw)
    learn = run.learner
    assert len(learn.dls.train) == 25
    with counting_reads() as counts:
        learn.fit(EPOCHS, run.config.lr)
    assert len(learn.history) == EPOCHS
    assert sum(counts.values()) <= PER_EPOCH * EPOCHS, counts
    assert counts["tolist"] >= EPOCHS  # the count sees the reads there are


def test_the_count_sees_a_read_per_batch(sample_raw: Any) -> None:
    """The counter catches what the Learner did before: `loss.item()` on every batch."""

    class ReadEveryLoss:
        def after_loss(self, learn: Learner) -> None:
            learn.loss.item()

    run = run_for(RUNS["linear"], sample_raw)
    learn = run.learner
    learn.cbs.append(ReadEveryLoss())
    with counting_reads() as counts:
        learn.fit(1, run.config.lr)
    assert counts["item"] == 25


@contextlib.contextmanager
def sync_is_an_error() -> Iterator[None]:
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(0)


@pytest.mark.parametrize("name", list(RUNS))
def test_no_synchronisation_inside_a_cuda_epoch(
    name: str, sample_raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU: any synchronising call inside an epoch raises, apart from the one read
    at its end (`Learner._read_epoch`). Without CUDA, the same epochs run on the CPU
    under the read count above: the run itself still has to work."""
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    torch.manual_seed(0)
    run = run_for(RUNS[name], sample_raw, device)
    learn = run.learner
    read_epoch = Learner._read_epoch

    def allowed_read(self: Learner) -> None:
        if cuda:
            torch.cuda.set_sync_debug_mode(0)
        try:
            read_epoch(self)
        finally:
            if cuda:
                torch.cuda.set_sync_debug_mode("error")

    monkeypatch.setattr(Learner, "_read_epoch", allowed_read)
    with sync_is_an_error() if cuda else counting_reads() as counts:
        learn.fit(EPOCHS, run.config.lr)
    assert len(learn.history) == EPOCHS
    assert learn.device.type == device
    if not cuda:
        assert sum(counts.values()) <= PER_EPOCH * EPOCHS, counts
