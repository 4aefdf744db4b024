"""Experiments: compare settings over several seeds (the learning-rate finder is in lrfind).

`compare` answers questions the article leaves open, such as "was there a better
way to initialise the weights?": it trains the same model once per (value, seed),
changing only one setting, and reports the mean and spread of the results::

    compare(TrainConfig(), "init", ["normal", "xavier", "kaiming"], seeds=range(5))
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


# -- figures ----------------------------------------------------------------------------------


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
