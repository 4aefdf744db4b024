"""Run settings: every setting's default, choices, range and help, written once.

`TrainConfig` is the one home of a run's settings. Each field carries a `Setting`
(its help, the values it may take) and every face reads it from there:

  - the command line builds `train`, `compare` and `lr-find`'s options from it
    (`groundup.cli.options`), and turns a bad field into its flag;
  - the web page asks the server for `config_schema()` and `resolve_defaults()`;
  - everything that turns what a user typed into a config goes through
    `TrainConfig.from_mapping`, and a config checks its values once, when made.

Fields left as None take a default that depends on the task and model
(`TASK_DEFAULTS`, applied by `resolved()`): the article's pair task trains with plain
SGD at a constant rate, which is the lesson; three or more classes use the settings
that reach the accuracy goals in the README. The choices come from the registries'
names (`groundup.learn.names`), which import no torch, so `--help` stays quick.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from groundup.data import BATCH_SIZE, FULL
from groundup.errors import SettingError
from groundup.learn import names
from groundup.runs.setting import Setting, format_number

MAX_WIDTH = 65_536  # a hidden layer wider than this will not fit a learner's machine
# Bytes each weight of a `net` costs while training: the weight, its gradient, Adam's two
# running averages, the divergence guard's copy and the starting copy kept for the
# report, all float32. Widths whose weights would not fit in this computer's memory are
# refused before anything is allocated.
BYTES_PER_WEIGHT = 6 * 4
LARGE_TRAIN = 20_000  # training images from which a set counts as large
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _setting(default: Any, help: str, **spec: Any) -> Any:
    return field(default=default, metadata={"setting": Setting(help=help, **spec)})


@dataclass(frozen=True)
class TaskDefaults:
    """The settings a run takes when they are left unset, for one task and model."""

    opt: str
    schedule: str
    lr: float
    epochs: int
    augment: bool = False


# By task ("pair": the article's two digits; "small"/"large": three or more classes, on
# fewer or more than LARGE_TRAIN training images) and model. A pair keeps the article's
# loop: plain SGD at the article's rates (1.0 linear, 0.1 simple_net). More classes train
# with Adam and the one-cycle schedule, chosen to reach the goals of docs/ten-digits.md on
# a 2-core CPU: the 4,000-image sample needs many epochs, and augmentation for the nets,
# to make up for its size; Fashion-MNIST's 60,000 images need few, and no augmentation.
# Pixel similarity (`mean`) averages the training images in one pass: nothing to step.
_MEAN = TaskDefaults("sgd", "constant", lr=1.0, epochs=1)
TASK_DEFAULTS: dict[tuple[str, str], TaskDefaults] = {
    ("pair", "linear"): TaskDefaults("sgd", "constant", lr=1.0, epochs=20),
    ("pair", "net"): TaskDefaults("sgd", "constant", lr=0.1, epochs=40),
    ("pair", "cnn"): TaskDefaults("sgd", "constant", lr=0.1, epochs=40),
    ("pair", "mean"): _MEAN,
    ("small", "linear"): TaskDefaults("adam", "one-cycle", lr=1e-2, epochs=20),
    ("small", "net"): TaskDefaults("adam", "one-cycle", lr=3e-3, epochs=40, augment=True),
    ("small", "cnn"): TaskDefaults("adam", "one-cycle", lr=1e-2, epochs=15, augment=True),
    ("small", "mean"): _MEAN,
    ("large", "linear"): TaskDefaults("adam", "one-cycle", lr=1e-2, epochs=8),
    ("large", "net"): TaskDefaults("adam", "one-cycle", lr=2e-3, epochs=25),
    ("large", "cnn"): TaskDefaults("adam", "one-cycle", lr=1e-2, epochs=6),
    ("large", "mean"): _MEAN,
}
# The hidden widths of `net`: the article's simple_net for a pair, wider for more classes.
HIDDEN: dict[str, tuple[int, ...]] = {"pair": (30,), "small": (256, 128), "large": (256, 128)}


# Threads. On a shared 2-core machine, torch's two OpenMP threads spin-wait for each
# other at every operation, so a neighbour holding one core stalls both. Whether the
# second thread pays depends on the work per operation, that is on the model's size.
# Whole default `groundup train` runs (bench/threads.py, Intel Xeon, 2026-12-03; "busy":
# beside one pure-Python busy loop), 1 thread against 2:
#   sample net (0.47 MFLOP a forward pass per image): quiet 5.1 / 4.8 s, busy 5.5 / 13.4 s
#   Fashion net (0.47 MFLOP):                          quiet 27.9 / 21.4 s, busy 27.3 / 79.0 s
#   sample cnn (7.7 MFLOP):                            quiet 31.3 / 15.7 s, busy 32.2 / 39.9 s
#   Fashion cnn (7.7 MFLOP):                           quiet 120 / 73 s,    busy 131 / 236 s
# A net gains at most 1.3x from a second thread on a quiet machine and loses 2.4-2.9x
# beside a neighbour; the cnn gains 1.6-2.0x and loses 1.2-1.8x. The goals are set for a
# quiet machine, so models from MANY_THREADS_FLOPS forward FLOPs per image (between the
# two measured sizes) take both cores, smaller ones one; on a busy machine, --threads 1
# suits the cnn too. The choice is recorded in model.json; --threads and OMP_NUM_THREADS
# override it.
MANY_THREADS = 2  # the most threads the policy gives (the machines we meet have 2 cores)
MANY_THREADS_FLOPS = 2_000_000  # forward FLOPs per sample from which a model gets them


def default_threads(forward_flops: int, cpus: int, env: str | None = None) -> int:
    """The threads a run uses when --threads is not given.

    `env`, the value of OMP_NUM_THREADS, is the user's choice if it is a whole number;
    otherwise 1 thread below MANY_THREADS_FLOPS forward FLOPs per sample, and
    min(MANY_THREADS, cpus) from there."""
    if env and env.strip().isdigit() and int(env) >= 1:
        return int(env)
    if forward_flops >= MANY_THREADS_FLOPS:
        return max(1, min(MANY_THREADS, cpus))
    return 1


def task_kind(n_classes: int, n_train: int | None = None) -> str:
    """'pair', 'small' or 'large': the row of TASK_DEFAULTS. An unknown size is small."""
    if n_classes == 2:
        return "pair"
    return "large" if n_train is not None and n_train >= LARGE_TRAIN else "small"


def _task_help(key: str) -> str:
    """'default: a pair: linear 1, net 0.1, ...': the table above, in words for --help."""
    rows = []
    for kind, label in (("pair", "a pair"), ("small", "more digits"), ("large", "a large set")):
        by_model = {m: getattr(TASK_DEFAULTS[(kind, m)], key) for m in names.MODELS if m != "mean"}
        if len(set(by_model.values())) == 1:
            rows.append(f"{label}: {_num_or_str(by_model['linear'])}")
        else:
            rows.append(
                f"{label}: " + ", ".join(f"{m} {_num_or_str(v)}" for m, v in by_model.items())
            )
    return "default: " + "; ".join(rows)


def _widths(widths: tuple[int, ...]) -> str:
    return ",".join(map(str, widths))


def _num_or_str(v: Any) -> str:
    return format_number(v) if isinstance(v, float) else str(v).lower()


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run. None means "the task's default" (see resolved)."""

    data: str = _setting(
        "sample",
        "where the digits come from: sample (bundled, default), mnist, fashion-mnist, kmnist, "
        "or a folder (IDX files, or images in train/<label>/ and valid/<label>/)",
        metavar="SRC",
    )
    digits: tuple[int, ...] = _setting(
        (2, 9),
        "digits to tell apart: a pair (default 2 9; the first is label 1), a list, or all",
        kind="digits",
        metavar="D",
    )
    model: str = _setting(
        "linear", "the model (default linear, the article's)", choices=names.MODELS
    )
    hidden: tuple[int, ...] | None = _setting(
        None,
        f"hidden widths of 'net', e.g. 30 or 256,128 (default {_widths(HIDDEN['pair'])} for "
        f"a pair, {_widths(HIDDEN['small'])} for more digits)",
        kind="widths",
        low=1,
        high=MAX_WIDTH,
        metavar="W,W",
    )
    init: str = _setting(
        "kaiming",
        "weight initialisation (default kaiming; the article's is normal with --std 1.0)",
        choices=names.INITS,
    )
    std: float = _setting(
        1.0, "std of init normal (default 1.0)", kind="float", low=0.0, low_open=True
    )
    epochs: int | None = _setting(
        None,
        "epochs to train (" + _task_help("epochs") + ")",
        kind="int",
        low=1,
        high=100_000,
        metavar="N",
    )
    lr: float | None = _setting(
        None,
        "learning rate (" + _task_help("lr") + ")",
        kind="float",
        low=0.0,
        low_open=True,
        high=names.LR_MAX,
    )
    batch_size: int | str = _setting(
        BATCH_SIZE,
        f"mini-batch size, or '{FULL}' for gradient descent: one step per epoch on the whole "
        f"training set (default {BATCH_SIZE})",
        kind="batch",
        low=1,
        high=10_000_000,
        metavar="N",
    )
    opt: str | None = _setting(
        None, "optimizer (" + _task_help("opt") + ")", choices=names.OPTIMIZERS
    )
    schedule: str | None = _setting(
        None, "learning-rate schedule (" + _task_help("schedule") + ")", choices=names.SCHEDULES
    )
    augment: bool | None = _setting(
        None,
        "randomly shift, rotate and scale training batches (" + _task_help("augment") + ")",
        kind="bool",
    )
    seed: int = _setting(
        0, "seeds the weights and the shuffles (default 0)", kind="int", low=0, high=2**63 - 1
    )
    device: str = _setting("auto", "auto (a GPU if present), cpu, cuda, cuda:N or mps")
    threads: int | None = _setting(
        None,
        "CPU threads for the math (default: OMP_NUM_THREADS if set, else 1, and up to "
        f"{MANY_THREADS} for models of {MANY_THREADS_FLOPS / 1e6:g}+ MFLOP an image)",
        kind="int",
        low=1,
        high=1024,
        metavar="N",
    )
    target_accuracy: float | None = _setting(
        None,
        "stop once validation accuracy reaches this share, e.g. 0.99",
        kind="float",
        low=0.0,
        low_open=True,
        high=1.0,
        metavar="A",
    )
    patience: int | None = _setting(
        None,
        "stop after N epochs without a better validation loss",
        kind="int",
        low=1,
        high=100_000,
        metavar="N",
    )

    def __post_init__(self) -> None:
        # every value is checked here, once, however the config was made
        for f in fields(self):
            value = f.metadata["setting"].check(f.name, getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        if not _DEVICE.fullmatch(self.device):
            raise SettingError(
                "device", f"must be auto, cpu, cuda, cuda:N or mps, not {self.device!r}"
            )
        if self.hidden is not None and self.model != "net":
            raise SettingError(
                "hidden", f"sets the widths of model net; model {self.model} has no hidden layer"
            )
        if self.hidden is not None:
            self._check_net_fits()

    def _check_net_fits(self) -> None:
        """Refuse hidden widths whose training would not fit in memory, before any
        allocation: the weights (see BYTES_PER_WEIGHT) and one batch's activations."""
        assert self.hidden is not None
        widths = [784, *self.hidden, self.n_classes]  # a pair's one output counted as two
        weights = sum((a + 1) * b for a, b in zip(widths, widths[1:]))  # W (a, b), bias (b,)
        batch = self.batch_size if isinstance(self.batch_size, int) else BATCH_SIZE
        # each hidden layer's output, its ReLU and its gradient, for one batch
        activations = 3 * 4 * batch * sum(self.hidden)
        need = weights * BYTES_PER_WEIGHT + activations
        have = physical_memory()
        if have is not None and need > have:
            raise SettingError(
                "hidden",
                f"{_widths(self.hidden)} needs about {_bytes(need)} to train ({weights:,} "
                f"weights), more than this computer's {_bytes(have)} of memory: choose smaller "
                "widths",
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> TrainConfig:
        """A config from what a face collected: the CLI's options, the page's form.

        Missing or None values keep their defaults; an unknown name is a SettingError."""
        known = {f.name for f in fields(cls)}
        for name in mapping:
            if name not in known:
                raise SettingError(name, "is not a setting of a training run")
        return cls(**{k: v for k, v in mapping.items() if v is not None})

    @property
    def n_classes(self) -> int:
        return len(self.digits)

    @property
    def binary(self) -> bool:
        return len(self.digits) == 2

    @property
    def full_batch(self) -> bool:
        """Gradient descent: one step per epoch on the whole training set."""
        return self.batch_size == FULL

    def resolved(self, n_train: int | None = None) -> TrainConfig:
        """A copy with every None replaced by the default for this task and model.

        `n_train`, the number of training images, tells a small set from a large one
        (`task_kind`); unknown counts as small."""
        kind = task_kind(self.n_classes, n_train)
        d = TASK_DEFAULTS[(kind, self.model)]
        return replace(
            self,
            hidden=self.hidden or (HIDDEN[kind] if self.model == "net" else None),
            opt=self.opt or d.opt,
            schedule=self.schedule or d.schedule,
            lr=self.lr if self.lr is not None else d.lr,
            epochs=self.epochs or d.epochs,
            augment=d.augment if self.augment is None else self.augment,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["digits"] = list(self.digits)
        d["hidden"] = None if self.hidden is None else list(self.hidden)
        return d


SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in fields(TrainConfig)}


def config_schema() -> dict[str, Any]:
    """Every setting, for the web page: default, kind, choices, range and help."""
    defaults = TrainConfig()
    return {
        name: {**s.describe(), "default": _json(getattr(defaults, name))}
        for name, s in SETTINGS.items()
    }


def resolve_defaults(mapping: Mapping[str, Any], n_train: int | None = None) -> dict[str, Any]:
    """Every setting a run with these choices would use (the page shows them)."""
    return TrainConfig.from_mapping(mapping).resolved(n_train).to_dict()


def physical_memory() -> int | None:
    """This computer's memory in bytes, or None where the system does not say."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TB"


def _json(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v
