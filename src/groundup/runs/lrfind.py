"""The learning-rate finder: sweep the rate up, one mini-batch per rate, and watch the loss.

`lr_find` raises the learning rate exponentially, one mini-batch per rate, and
watches the loss: it falls slowly while the rate is too small, fast at good rates,
and explodes when the rate is too large. The weights are put back after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groundup.errors import DivergenceError, UsageError

if TYPE_CHECKING:
    from groundup.learn.learner import Learner


@dataclass
class LRFind:
    """What `lr_find` saw: one learning rate and loss per mini-batch, and its advice."""

    lrs: list[float]
    losses: list[float]  # smoothed: an exponential moving average, bias-corrected
    raw_losses: list[float]
    stop_reason: str  # "exploded", "diverged" or "end of sweep"
    suggestion: float = math.nan  # the rate to train with: min_loss_lr / 10
    min_loss_lr: float = math.nan  # where the smoothed loss was lowest
    steepest_lr: float = math.nan  # where it fell fastest, per factor of the rate

    def to_dict(self) -> dict[str, Any]:
        return {
            "suggestion": self.suggestion,
            "min_loss_lr": self.min_loss_lr,
            "steepest_lr": self.steepest_lr,
            "stop_reason": self.stop_reason,
            "lrs": self.lrs,
            "losses": self.losses,
            "raw_losses": self.raw_losses,
        }


class LRFinder:
    """A callback that sets lr_i = start * (end / start)^(i / (num - 1)) before batch i
    and stops once the smoothed loss exceeds `explode` times the best seen so far.

    The smoothed loss is avg_i = beta avg_(i-1) + (1 - beta) loss_i, divided by
    1 - beta^i so that the first values are not pulled towards 0. beta = 0.9
    averages over about 10 batches: a sweep of 100 batches over six decades moves
    the rate ~15% per batch, and the 50-batch memory of beta = 0.98 would show
    each loss some three decades to the right of the rate that caused it.
    """

    def __init__(
        self, start: float, end: float, num: int, beta: float = 0.9, explode: float = 4.0
    ) -> None:
        self.start, self.end, self.num = start, end, num
        self.beta, self.explode = beta, explode

    def before_fit(self, learn: Learner) -> None:
        self.i, self.avg, self.best = 0, 0.0, math.inf
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.raw: list[float] = []
        self.stop_reason = "end of sweep"

    def before_batch(self, learn: Learner) -> None:
        assert learn.opt is not None
        learn.opt.lr = self.start * (self.end / self.start) ** (self.i / max(self.num - 1, 1))

    def after_batch(self, learn: Learner) -> None:
        assert learn.opt is not None
        loss = learn.loss.detach().item()  # the sweep reads every batch: it is its point
        if not math.isfinite(loss):
            # the Learner's guard raises at the end of the epoch; stop here, unrecorded
            learn.stop, self.stop_reason = True, "diverged"
            return
        self.i += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * loss
        smooth = self.avg / (1 - self.beta**self.i)
        self.lrs.append(learn.opt.lr)
        self.raw.append(loss)
        self.losses.append(smooth)
        self.best = min(self.best, smooth)
        if smooth > self.explode * self.best:
            learn.stop, self.stop_reason = True, "exploded"
        elif self.i >= self.num:
            learn.stop = True


def lr_find(
    learn: Learner,
    start: float = 1e-5,
    end: float = 10.0,
    num: int = 100,
    explode: float = 4.0,
) -> LRFind:
    """Sweep the learning rate from `start` to `end` over `num` mini-batches.

    Stops early when the smoothed loss passes `explode` times its best. Only the
    recorder and augmentation run during the sweep (a schedule or a stopping rule
    would fight it). Afterwards the weights are put back and the optimizer is
    forgotten, so `learn` trains as if the sweep had not happened; only the
    shuffles have moved on.
    """
    import torch

    from groundup.learn.augment import Augment
    from groundup.learn.recorder import Recorder

    if not 0 < start < end:
        raise UsageError(f"the sweep must rise: start {start:g} is not below end {end:g}")
    if num < 2:
        raise UsageError(f"the sweep needs at least 2 steps, not {num}")
    if not any(p.requires_grad for p in learn.model.parameters()):
        raise UsageError(
            "this model learns without gradient steps (the mean-image baseline has no "
            "learning rate): lr-find needs linear, net or cnn"
        )
    finder = LRFinder(start, end, num, explode=explode)
    saved_cbs, saved_opt = learn.cbs, learn.opt
    weights = [p.detach().clone() for p in learn.model.parameters()]
    learn.cbs = [cb for cb in saved_cbs if isinstance(cb, (Recorder, Augment))] + [finder]
    learn.opt = None
    epochs = math.ceil(num / len(learn.dls.train))
    try:
        learn.fit(epochs, start)
    except DivergenceError:
        finder.stop_reason = "diverged"
    finally:
        with torch.no_grad():
            for p, w in zip(learn.model.parameters(), weights, strict=True):
                p.copy_(w)
        learn.cbs, learn.opt = saved_cbs, saved_opt
        learn.history.clear()
        learn.epoch_count, learn.stop, learn.stop_reason = 0, False, ""
    result = LRFind(finder.lrs, finder.losses, finder.raw, finder.stop_reason)
    _suggest(result)
    return result


def _suggest(result: LRFind) -> None:
    """Fill in the advice: a tenth of the rate at the lowest smoothed loss (a rate
    safely below where the loss turns up), and the rate where it fell fastest."""
    if len(result.losses) < 3:
        return
    best = min(range(len(result.losses)), key=result.losses.__getitem__)
    result.min_loss_lr = result.lrs[best]
    result.suggestion = result.min_loss_lr / 10
    # slope of the smoothed loss against log10(lr), up to the minimum; the first tenth
    # of the sweep is left out, where the average has seen too few batches to be smooth
    skip = len(result.losses) // 10
    logs = [math.log10(lr) for lr in result.lrs]
    slopes = {
        i: (result.losses[i + 1] - result.losses[i]) / (logs[i + 1] - logs[i])
        for i in range(skip, best)
    }
    if slopes:
        result.steepest_lr = result.lrs[min(slopes, key=slopes.__getitem__)]


def plot_lr_find(result: LRFind, path: str | Path) -> Path:
    """Smoothed loss against learning rate (log scale), the suggestion marked; a PNG."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, no window

    from groundup.show.figures import save_figure

    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.add_subplot()
    ax.plot(result.lrs, result.raw_losses, color="0.8", lw=1, label="loss per batch")
    ax.plot(result.lrs, result.losses, color="C0", label="smoothed loss")
    if math.isfinite(result.suggestion):
        label = f"suggested {result.suggestion:.2g}"
        ax.axvline(result.suggestion, color="C2", ls="--", label=label)
    if math.isfinite(result.steepest_lr):
        label = f"steepest {result.steepest_lr:.2g}"
        ax.axvline(result.steepest_lr, color="C1", ls=":", label=label)
    ax.set_xscale("log")
    finite = [v for v in result.losses if math.isfinite(v)]
    if finite:  # the exploding tail would squash the interesting part
        ax.set_ylim(min(finite) * 0.9, min(max(finite), 4 * min(finite)) * 1.05)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"learning-rate finder ({result.stop_reason})")
    ax.legend()
    return save_figure(fig, path)


