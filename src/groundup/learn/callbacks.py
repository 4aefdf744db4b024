"""Callbacks for the Learner: stopping rules, a learning-rate schedule, progress.

Step 7 of the article, *stop*, has three forms here:
  - after a set number of epochs (the `epochs` of `fit`);
  - `TargetAccuracy`: as soon as validation accuracy reaches a target;
  - `EarlyStopping`: when the validation loss has not improved for `patience` epochs.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from groundup.learn.learner import Learner


class TargetAccuracy:
    """Stop once the validation accuracy reaches `target` (a share, e.g. 0.99)."""

    def __init__(self, target: float) -> None:
        self.target = target

    def after_epoch(self, learn: Learner) -> None:
        if learn.valid_metrics.get("accuracy", -1.0) >= self.target:
            learn.stop = True
            learn.stop_reason = f"reached accuracy {self.target:g}"


class EarlyStopping:
    """Stop when the validation loss has not improved for `patience` epochs in a row."""

    def __init__(self, patience: int = 3, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.min_delta = min_delta

    def before_fit(self, learn: Learner) -> None:
        self.best = math.inf
        self.wait = 0

    def after_epoch(self, learn: Learner) -> None:
        if learn.valid_loss < self.best - self.min_delta:
            self.best, self.wait = learn.valid_loss, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            learn.stop = True
            learn.stop_reason = f"no better validation loss for {self.patience} epochs"


class ConstantLR:
    """The article's schedule: the learning rate stays as `fit` was given it."""


class OneCycle:
    """The one-cycle schedule, per batch: the learning rate rises from lr/25 to lr
    over the first 25% of the steps, then falls along a cosine to lr/1e4.

    Fast and forgiving with Adam; it sets `learn.opt.lr` before every batch.
    """

    def __init__(self, pct_start: float = 0.25, div: float = 25.0, final_div: float = 1e4) -> None:
        self.pct_start, self.div, self.final_div = pct_start, div, final_div

    def before_fit(self, learn: Learner) -> None:
        assert learn.opt is not None
        self.max_lr = learn.opt.lr
        self.total = max(1, learn.epochs * len(learn.dls.train))
        self.step = 0

    def before_batch(self, learn: Learner) -> None:
        assert learn.opt is not None
        learn.opt.lr = self.lr_at(self.step / self.total)
        self.step += 1

    def after_fit(self, learn: Learner) -> None:
        assert learn.opt is not None
        learn.opt.lr = self.max_lr

    def lr_at(self, pct: float) -> float:
        lo, hi, end = self.max_lr / self.div, self.max_lr, self.max_lr / self.final_div
        if pct < self.pct_start:
            a, b, t = lo, hi, pct / self.pct_start
        else:
            a, b, t = hi, end, (pct - self.pct_start) / (1 - self.pct_start)
        return b + (a - b) * (1 + math.cos(math.pi * t)) / 2


# schedule name (groundup.learn.names.SCHEDULES) -> the callback that sets the rate
SCHEDULES: dict[str, type] = {"constant": ConstantLR, "one-cycle": OneCycle}


class ProgressBar:
    """A progress bar over all the batches of a fit, drawn by rich on `console`
    (default: a console on stderr).

    It appears only once a fit has run for `delay` seconds: a fit that takes a
    fraction of a second (the article's models on the sample) needs no bar.
    Give `EpochPrinter` the same console when both go to one terminal: rich then
    prints each row above the one live bar, instead of the two overwriting each other.
    """

    def __init__(self, console: Any = None, delay: float = 1.0) -> None:
        self.console = console
        self.delay = delay

    def before_fit(self, learn: Learner) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(),
            console=self.console or Console(stderr=True),
            transient=True,  # the bar goes when the fit ends; the rows above it stay
        )
        self.task = self.progress.add_task(
            "fit", total=learn.epochs * len(learn.dls.train), epoch=1, epochs=learn.epochs, loss="-"
        )
        self.started_at, self.shown = time.perf_counter(), False

    def after_batch(self, learn: Learner) -> None:
        self.progress.update(self.task, advance=1)
        if not self.shown and time.perf_counter() - self.started_at >= self.delay:
            self.progress.start()
            self.shown = True

    def after_epoch(self, learn: Learner) -> None:
        self.progress.update(
            self.task, epoch=min(learn.epoch + 2, learn.epochs), loss=f"{learn.train_loss:.4f}"
        )

    def after_fit(self, learn: Learner) -> None:
        if self.shown:
            self.progress.stop()


class EpochPrinter:
    """Prints one row per epoch as training goes: epoch, train_loss, valid_loss, the
    validation metrics and the seconds. (The metrics on the training batches stay in
    `learn.history` and the curves figure, to keep the table narrow.)"""

    def __init__(self, console: Any = None) -> None:
        self.console = console

    def before_fit(self, learn: Learner) -> None:
        from rich.console import Console

        self.console = self.console or Console(highlight=False)
        self.header_done = False

    def after_epoch(self, learn: Learner) -> None:
        last = learn.history[-1]
        row = {k: v for k, v in last.items() if k == "train_loss" or not k.startswith("train_")}
        if not self.header_done:
            # soft_wrap: a row stays one line in a narrow terminal instead of folding
            self.console.print("  ".join(f"{k:>10}" for k in row), soft_wrap=True, markup=False)
            self.header_done = True
        cells = [_cell(v) for v in row.values()]
        self.console.print("  ".join(cells), soft_wrap=True, markup=False)


def _cell(v: object) -> str:
    """One column of the epoch table, 10 wide: 4 decimals, or powers of ten for a
    number too big for that (a loss on its way to diverging)."""
    if isinstance(v, float):
        return f"{v:>10.4f}" if abs(v) < 1e5 else f"{v:>10.3e}"
    return f"{v:>10}"
