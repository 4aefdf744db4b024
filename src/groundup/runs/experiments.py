"""Experiments: compare settings over several seeds, and find a learning rate.

`compare` answers questions the article leaves open, such as "was there a better
way to initialise the weights?": it trains the same model once per (value, seed),
changing only one setting, and reports the mean and spread of the results::

    compare(TrainConfig(), "init", ["normal", "xavier", "kaiming"], seeds=range(5))

`lr_find` sweeps the learning rate up exponentially, one mini-batch per rate,
and watches the loss: it falls slowly while the rate is too small, fast at good
rates, and explodes when the rate is too large. The weights are put back after.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groundup.errors import DivergenceError, UsageError
from groundup.runs.config import TrainConfig

if TYPE_CHECKING:
    from groundup.data.tensors import DataLoaders
    from groundup.learn.learner import Learner

# Settings `compare` can vary; "batch_size" also takes "full" (gradient descent).
COMPARABLE = ("init", "batch_size", "opt", "lr", "model", "std", "schedule", "augment")


def parse_seeds(text: str) -> list[int]:
    """Read `--seeds`: a range `0-4` (both ends included), a list `0,1,2`, or one seed `3`."""
    text = text.strip()
    try:
        if "-" in text and "," not in text:
            first, last = (int(part) for part in text.split("-"))
            if first > last:
                raise ValueError
            return list(range(first, last + 1))
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(
            f"--seeds takes a range like 0-4, a list like 0,1,2 or one seed like 3, not {text!r}"
        ) from None
    if any(s < 0 for s in seeds):
        raise UsageError(f"--seeds must be 0 or more, not {text!r}")
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds lists a seed twice: {text!r}")
    return seeds


def _with_setting(config: TrainConfig, setting: str, value: Any, seed: int) -> TrainConfig:
    """`config` with one setting changed and the seed set."""
    return replace(config, **{setting: value}, seed=seed)


@dataclass
class Trial:
    """One training run of a comparison: its setting's value, its seed, its history."""

    value: Any
    seed: int
    history: list[dict[str, Any]]  # the Learner's rows: epoch, losses, accuracy, seconds
    diverged: bool = False  # the loss became NaN or infinite
    flops: int = 0  # training FLOPs, from the model's shapes (groundup.learn.compute)

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value); NaN for none."""
    if not values:
        return math.nan, math.nan
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


@dataclass
class Comparison:
    """The trials of `compare`, and their summary per value of the setting."""

    setting: str
    values: list[Any]
    seeds: list[int]
    trials: list[Trial] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # the first run's resolved settings

    def _of(self, value: Any) -> list[Trial]:
        return [t for t in self.trials if t.value == value]

    def summary(self) -> list[dict[str, Any]]:
        """Per value: mean ± std over seeds of the final validation accuracy and loss,
        and the mean seconds a run took. Diverged runs are counted, not averaged."""
        rows = []
        for value in self.values:
            done = [t for t in self._of(value) if not t.diverged and t.history]
            acc = _mean_std([t.final["accuracy"] for t in done])
            loss = _mean_std([t.final["valid_loss"] for t in done])
            secs = [sum(r["seconds"] for r in t.history) for t in done]
            flops = [t.flops for t in done]
            rows.append(
                {
                    "value": value,
                    "runs": len(self._of(value)),
                    "diverged": len(self._of(value)) - len(done),
                    "accuracy_mean": acc[0],
                    "accuracy_std": acc[1],
                    "valid_loss_mean": loss[0],
                    "valid_loss_std": loss[1],
                    "seconds_mean": statistics.fmean(secs) if secs else math.nan,
                    "flops_mean": statistics.fmean(flops) if flops else math.nan,
                }
            )
        return rows

    def curves(self) -> dict[str, list[dict[str, float]]]:
        """Per value: for each epoch, the mean validation accuracy and the mean wall time
        since the start of training (seconds), over the seeds that reached that epoch."""
        out: dict[str, list[dict[str, float]]] = {}
        for value in self.values:
            runs = [t.history for t in self._of(value)]
            points = []
            for e in range(max((len(h) for h in runs), default=0)):
                reached = [h for h in runs if len(h) > e]
                points.append(
                    {
                        "epoch": e + 1,
                        "accuracy": statistics.fmean(h[e]["accuracy"] for h in reached),
                        "seconds": statistics.fmean(
                            sum(r["seconds"] for r in h[: e + 1]) for h in reached
                        ),
                    }
                )
            out[str(value)] = points
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "setting": self.setting,
            "values": [str(v) for v in self.values],
            "seeds": self.seeds,
            "config": self.config,
            "summary": [{**row, "value": str(row["value"])} for row in self.summary()],
            "curves": self.curves(),
        }


def compare(
    config: TrainConfig,
    setting: str,
    values: Sequence[Any],
    seeds: Iterable[int] = (0,),
    dls: DataLoaders | None = None,
    on_trial: Callable[[Trial], None] | None = None,
) -> Comparison:
    """Train `config` once per value of `setting` and per seed; everything else fixed.

    The data is loaded once; each run gets fresh loaders seeded by its seed, so a
    run repeats exactly whatever else is being compared. A run whose loss becomes
    NaN or infinite is kept, marked `diverged`. `on_trial` is called after each run.
    """
    from groundup.data.tensors import DataLoaders as Loaders
    from groundup.data.tensors import load_data
    from groundup.learn.compute import training_flops
    from groundup.runs.training import TrainedRun, make_run

    if setting not in COMPARABLE:
        raise UsageError(f"cannot compare {setting!r}: choose one of {', '.join(COMPARABLE)}")
    values, seeds = list(values), list(seeds)
    if not values or not seeds:
        raise UsageError("compare needs at least one value and one seed")
    if dls is None:
        dls = load_data(config.data, config.digits, config.batch_size, config.seed)
    train_set, valid_set = dls.train.dataset, dls.valid.dataset

    def prepare(value: Any, seed: int) -> TrainedRun:
        c = _with_setting(config, setting, value, seed)
        fresh = Loaders.from_datasets(train_set, valid_set, c.batch_size, seed, dls.source)
        return make_run(c, dls=fresh)

    # the first pass through a new batch shape pays one-off costs (memory, kernels):
    # pay them before the clock runs, or the first value compared looks slow
    for value in values:
        _warm_up(prepare(value, seeds[0]).learner)
    result = Comparison(setting, values, seeds)
    for value in values:
        for seed in seeds:
            run = prepare(value, seed)
            result.config = result.config or run.config.to_dict()
            diverged = False
            try:
                run.fit()
            except DivergenceError:
                diverged = True
            flops = training_flops(run.model, len(train_set), len(run.history))
            trial = Trial(value, seed, list(run.history), diverged, flops)
            result.trials.append(trial)
            if on_trial is not None:
                on_trial(trial)
    return result


def _warm_up(learn: Learner) -> None:
    """One forward and backward pass on the first training batch; nothing is stepped."""
    xb, yb = next(iter(learn.dls.train))
    loss = learn.loss_func(learn.model(xb), yb)
    if loss.requires_grad:
        loss.backward()


# -- the learning-rate finder -----------------------------------------------------------------


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


# -- figures ----------------------------------------------------------------------------------


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


def plot_comparison(result: Comparison, path: str | Path) -> Path:
    """Validation accuracy against epochs and against wall time, one line per value."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from groundup.show.figures import save_figure

    fig = Figure(figsize=(10, 4), layout="tight")
    by_epoch, by_time = fig.subplots(1, 2, sharey=True)
    for label, points in result.curves().items():
        acc = [p["accuracy"] for p in points]
        by_epoch.plot([p["epoch"] for p in points], acc, marker=".", label=label)
        by_time.plot([p["seconds"] for p in points], acc, marker=".", label=label)
    by_epoch.set_xlabel("epoch")
    by_epoch.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 2.5
    by_time.set_xlabel("seconds of training")
    by_epoch.set_ylabel("validation accuracy")
    by_epoch.set_title(f"by epoch ({result.setting})")
    by_time.set_title("by wall time")
    by_epoch.legend(title=result.setting)
    return save_figure(fig, path)


# the models of the compute view, cheapest first: pixel similarity, then the learned ones
COMPUTE_MODELS = ("mean", "linear", "net", "cnn")


def accuracy_vs_compute(
    run_dirs: Sequence[str | Path] = (),
    data: str = "sample",
    epochs: int | None = None,
    seed: int = 0,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """What each point of accuracy costs: one point per model, for a figure.

    From saved runs if `run_dirs` are given (their model.json's final accuracy and
    `compute`), else by training the four COMPUTE_MODELS on all ten digits of `data`
    with their default settings (`epochs` overrides the defaults' epochs, to be quick).
    Each point: model, data, accuracy, training_flops, seconds, epochs."""
    import json

    from groundup.runs.saved import META, run_compute
    from groundup.runs.training import train

    points = []
    if run_dirs:
        for run_dir in run_dirs:
            path = Path(run_dir) / META
            try:
                meta = json.loads(path.read_text())
                compute, final = meta["compute"], meta["final"]
                point = {
                    "model": meta["model"]["name"],
                    "data": meta["data"]["source"],
                    "accuracy": final["accuracy"],
                    "training_flops": compute["training_flops"],
                    "seconds": sum(r.get("seconds", 0.0) for r in meta["history"]),
                    "epochs": compute["epochs"],
                }
            except OSError:
                raise UsageError(f"no run at {run_dir} (its {META} cannot be read)") from None
            except (ValueError, KeyError, TypeError):
                raise UsageError(
                    f"{path} has no training cost: it was saved by an older groundup; "
                    "train it again"
                ) from None
            points.append(point)
            if on_run is not None:
                on_run(point)
        return points
    for model in COMPUTE_MODELS:
        config = TrainConfig(data=data, digits=tuple(range(10)), model=model, seed=seed)
        if epochs is not None and model != "mean":
            config = replace(config, epochs=epochs)
        trained = train(config)
        compute = run_compute(trained)
        point = {
            "model": model,
            "data": data,
            "accuracy": trained.history[-1]["accuracy"],
            "training_flops": compute["training_flops"],
            "seconds": sum(r["seconds"] for r in trained.history),
            "epochs": compute["epochs"],
        }
        points.append(point)
        if on_run is not None:
            on_run(point)
    return points
