"""What the loop records: each epoch's row in `learn.history`, and the sums it is read from.

The Learner keeps an epoch's numbers on the device as sums over rows (`summed`):
sums add up, over batches and over data-parallel workers. It reads them back once
at the epoch's end and divides each by its rows (`means_of`). The `Recorder`, the
Learner's first callback, turns the result into one row of `learn.history`:

    {"epoch": 1, "train_loss": ..., ["train_accuracy": ...,] "valid_loss": ...,
     "accuracy": ..., "seconds": ...}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from groundup.learn.learner import Learner

Metric = Callable[[Tensor, Tensor], Tensor]


def metric_name(metric: Metric) -> str:
    """`batch_accuracy` is reported as `accuracy`; other metrics by their own name."""
    name = getattr(metric, "__name__", type(metric).__name__)
    return name.removeprefix("batch_")


class Recorder:
    """Records, per epoch: the training loss (mean over samples), the validation
    loss, each metric over the whole validation set, and the seconds taken.

    With `train_metrics=True`, also each metric on the training batches as they were
    seen (`train_accuracy`: while the weights were still moving, and on augmented
    images when augmentation is on). It is off by default, as in fastai's Recorder:
    it costs a tenth of a tiny model's epoch. `groundup train` and the web page turn
    it on, for their train-against-valid curves.
    """

    def __init__(self, train_metrics: bool = False) -> None:
        self.train_metrics = train_metrics
        self.train_preds: list[Tensor] = []
        self.train_targets: list[Tensor] = []

    def before_fit(self, learn: Learner) -> None:
        self.start = time.perf_counter()

    def before_epoch(self, learn: Learner) -> None:
        self.epoch_start = time.perf_counter()
        self.train_preds, self.train_targets = [], []

    def after_batch(self, learn: Learner) -> None:
        # keep the batch's outputs and score them all at once at the end of the epoch:
        # one metric call per epoch rather than per batch (a fifth of a small model's time)
        if self.train_metrics:
            self.train_preds.append(learn.preds.detach())
            self.train_targets.append(learn.yb)

    def after_validate(self, learn: Learner) -> None:
        """Each metric over the epoch's training batches, added to the epoch's sums."""
        if self.train_metrics and self.train_targets:
            with torch.no_grad():
                preds, targets = torch.cat(self.train_preds), torch.cat(self.train_targets)
                names = tuple(f"train_{metric_name(m)}" for m in learn.metrics)
                learn.sums[names] = summed([m(preds, targets) for m in learn.metrics], len(targets))
        self.train_preds, self.train_targets = [], []

    def after_epoch(self, learn: Learner) -> None:
        row: dict[str, Any] = {"epoch": learn.epoch_count, "train_loss": round(learn.train_loss, 6)}
        if self.train_metrics:
            for m in learn.metrics:
                key = f"train_{metric_name(m)}"
                row[key] = round(learn.means.get(key, 0.0), 6)
        row["valid_loss"] = round(learn.valid_loss, 6)
        row.update({k: round(v, 6) for k, v in learn.valid_metrics.items()})
        row["seconds"] = round(time.perf_counter() - self.epoch_start, 4)
        learn.history.append(row)


def summed(means: Sequence[Tensor], rows: int) -> Tensor:
    """Means over `rows` rows turned into sums, with the row count last:
    K means -> (K + 1,) [mean_1 * rows, ..., mean_K * rows, rows], on their device.

    Sums, not means, because sums add up, over batches and over data-parallel
    workers; they are divided by their rows once, when the epoch is read back.
    """
    one = means[0].new_ones(())  # the row count rides in the same tensor: no copy
    return torch.stack([*means, one]) * rows


def means_of(sums: dict[tuple[str, ...], Tensor], values: list[float]) -> dict[str, float]:
    """`values`, the blocks of `sums` read back one after the other, divided by their
    rows: {name: sum / rows}."""
    means: dict[str, float] = {}
    for names in sums:
        block, values = values[: len(names) + 1], values[len(names) + 1 :]
        means.update({name: total / max(block[-1], 1) for name, total in zip(names, block)})
    return means
