"""Run settings as one typed dataclass: the CLI fills it, the library reads it.

Fields left as None take defaults that depend on the task (`resolved()`): the
article's pair task trains with plain SGD and a constant learning rate, which
is the lesson; three or more classes use the settings that reach the accuracy
goals in the README.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from groundup.errors import UsageError

# The names `--model` accepts; `groundup.models.MODELS` builds each. Kept here, as
# plain strings, so that `groundup --help` needs no torch.
MODEL_NAMES = ("linear", "net", "cnn", "mean")

# Three or more classes train with Adam and the one-cycle schedule. Per model:
# (epochs on a small training set, epochs on a large one, learning rate). Chosen to
# reach the accuracy goals of docs/ten-digits.md on a 2-core CPU: the bundled sample
# (4,000 images) needs many epochs, and augmentation, to make up for its size;
# Fashion-MNIST's 60,000 images need few, and no augmentation.
TEN_CLASS_DEFAULTS: dict[str, tuple[int, int, float]] = {
    "linear": (20, 8, 1e-2),
    "net": (40, 15, 3e-3),
    "cnn": (20, 6, 1e-2),
}
LARGE_TRAIN = 20_000  # training images from which a set counts as large
# The largest learning rate a float32 optimizer can hold (torch.finfo(torch.float32).max):
# above it the rate itself overflows to inf inside the step.
FLOAT32_MAX = 3.4028234663852886e38
# Bytes each weight of a `net` costs while training: the weight, its gradient, Adam's two
# running averages, the divergence guard's copy and the initial copy kept for the report,
# all float32. Widths whose weights would not fit in this computer's memory are refused
# before anything is allocated.
BYTES_PER_WEIGHT = 6 * 4


@dataclass
class TrainConfig:
    data: str = "sample"  # a source: sample, mnist, fashion-mnist, kmnist, or a folder
    digits: tuple[int, ...] = (2, 9)  # a pair: first is label 1; three or more: softmax
    model: str = "linear"  # linear | net (and the ten-digit models)
    hidden: list[int] | None = None  # hidden widths of `net`; default [30], the article's
    init: str = "kaiming"  # normal | uniform | xavier | kaiming | zeros
    std: float = 1.0  # standard deviation for init "normal" (the article: 1.0)
    epochs: int | None = None  # default: 20 for linear, 40 for net (the article's)
    lr: float | None = None  # default for a pair: 1.0 linear, 0.1 net (the article's)
    batch_size: int = 256  # mini-batch size for SGD
    full_batch: bool = False  # GD: one step per epoch on the whole training set
    opt: str | None = None  # sgd | momentum | adam; default sgd for a pair
    schedule: str | None = None  # constant | one-cycle; default constant for a pair
    augment: bool | None = None  # random shifts/rotations/scaling of training batches
    seed: int = 0  # seeds the initial weights and the shuffles
    device: str = "auto"  # auto | cpu | cuda | mps
    target_accuracy: float | None = None  # stop once validation accuracy reaches it
    patience: int | None = None  # stop after this many epochs without a better valid loss
    extra: dict[str, Any] = field(default_factory=dict)  # model-specific settings

    @property
    def n_classes(self) -> int:
        return len(self.digits)

    @property
    def binary(self) -> bool:
        return len(self.digits) == 2

    def resolved(self, n_train: int | None = None) -> TrainConfig:
        """A copy with every None replaced by the default for this task.

        `n_train`, the number of training images, chooses between the ten-class
        defaults for a small and a large set (`LARGE_TRAIN`); unknown counts as small.
        """
        c = replace(self, digits=tuple(self.digits))
        c.validate()  # first: `epochs or 20` below would turn epochs=0 into 20
        if c.hidden is None:
            c.hidden = [30] if c.binary else [256, 128]
        if c.model == "mean":
            # pixel similarity averages the training images in one pass; nothing to step
            c.opt = c.opt or "sgd"
            c.schedule = c.schedule or "constant"
            c.lr = c.lr if c.lr is not None else 1.0
            c.epochs = c.epochs or 1
            c.augment = bool(c.augment)
        elif c.binary:
            c.opt = c.opt or "sgd"
            c.schedule = c.schedule or "constant"
            # the article's rates: 1.0 for the linear model, 0.1 for simple_net
            c.lr = c.lr if c.lr is not None else (1.0 if c.model == "linear" else 0.1)
            c.epochs = c.epochs or (20 if c.model == "linear" else 40)
            c.augment = bool(c.augment)
        else:
            c.opt = c.opt or "adam"
            c.schedule = c.schedule or "one-cycle"
            large = n_train is not None and n_train >= LARGE_TRAIN
            small_epochs, large_epochs, lr = TEN_CLASS_DEFAULTS.get(c.model, (20, 8, 3e-3))
            c.lr = c.lr if c.lr is not None else lr
            c.epochs = c.epochs or (large_epochs if large else small_epochs)
            if c.augment is None:
                # on where it lifts the nets past the peers: few images, a net that can use it
                c.augment = c.model in ("net", "cnn") and not large
        c.validate()
        return c

    def validate(self) -> None:
        """Raise UsageError for values no run can use."""
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise UsageError(f"--lr must be a number above 0, not {self.lr}")
        if self.lr is not None and not self.lr <= FLOAT32_MAX:
            raise UsageError(
                f"--lr must be at most {FLOAT32_MAX:.4g}, the largest float32, not {self.lr}"
            )
        if self.epochs is not None and self.epochs < 1:
            raise UsageError(f"--epochs must be at least 1, not {self.epochs}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, not {self.batch_size}")
        if not 0 < self.std < float("inf"):  # also refuses nan
            raise UsageError(f"--std must be a finite number above 0, not {self.std}")
        if self.hidden is not None and any(h < 1 for h in self.hidden):
            raise UsageError(f"hidden layer widths must be at least 1, not {self.hidden}")
        if self.hidden is not None and self.model == "net":
            self._check_net_fits()
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise UsageError(
                f"--target-accuracy is a share between 0 and 1, not {self.target_accuracy}"
            )
        if self.patience is not None and self.patience < 1:
            raise UsageError(f"--patience must be at least 1, not {self.patience}")
        if not 0 <= self.seed < 2**63:  # torch.manual_seed's range (it overflows beyond)
            raise UsageError(f"--seed must be a whole number from 0 to 2**63 - 1, not {self.seed}")

    def _check_net_fits(self) -> None:
        """Refuse hidden widths whose training would not fit in memory, before any
        allocation: the weights (see BYTES_PER_WEIGHT) and one batch's activations."""
        assert self.hidden is not None
        n_out = 1 if self.binary else self.n_classes
        widths = [784, *self.hidden, n_out]
        weights = sum((a + 1) * b for a, b in zip(widths, widths[1:]))  # W (a, b) and bias (b,)
        # each hidden layer's output, its ReLU and its gradient, for one batch
        activations = 3 * 4 * self.batch_size * sum(self.hidden)
        need = weights * BYTES_PER_WEIGHT + activations
        have = physical_memory()
        if have is not None and need > have:
            raise UsageError(
                f"hidden widths {','.join(map(str, self.hidden))} need about "
                f"{_bytes(need)} to train ({weights:,} weights), more than this computer's "
                f"{_bytes(have)} of memory: choose smaller widths"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["digits"] = list(self.digits)
        return d


def physical_memory() -> int | None:
    """This computer's memory in bytes, or None where the system does not say."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # not reached
