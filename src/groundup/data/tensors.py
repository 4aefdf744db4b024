"""From images to tensors: choosing digits, `Dataset`, `DataLoader`, `DataLoaders`.

The article stacks its 2s and 9s into one tensor, flattens each image to a row of
784 pixels, scales them to [0, 1], and labels a 2 as 1 and a 9 as 0::

    train_x = torch.cat([stacked_twos, stacked_nines]).view(-1, 28*28)
    train_y = tensor([1]*len(twos) + [0]*len(nines)).unsqueeze(1)

`to_tensors` does exactly that for any choice of digits. A `Dataset` behaves like the
article's `list(zip(x, y))` but keeps the two tensors whole, and a `DataLoader` makes
mini-batches by slicing them: a shuffled epoch is one `randperm`, with no Python
object per image.

`DataLoaders` checks every set it is given (`check_normalisation`), because the
article's own notebook scaled its validation 2s twice and its 9s not at all, and
every validation accuracy it printed was meaningless.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from groundup.data import BATCH_SIZE, FULL
from groundup.data.digits import ALL_DIGITS, parse_digits, require_digits  # noqa: F401 (re-exported)
from groundup.errors import DataError, UsageError
from groundup.learn.task import Task

if TYPE_CHECKING:
    from groundup.data.sources import RawData

# A split or class whose mean pixel lies this many times off the median of the
# others is "far": MNIST classes differ by at most ~1.6x (a 1 has the least ink),
# whereas a double /255 gives ~255x and a forgotten /255 ~255x the other way.
MEAN_RATIO_LIMIT = 4.0


def to_tensors(
    images: np.ndarray, labels: np.ndarray, digits: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """Keep the images of `digits` and turn them into the article's `x` and `y`.

    images: uint8 (N, 28, 28); labels: int (N,).
    Returns x: float32 (n, 784) in [0, 1], and y:
      - for a pair, float32 (n, 1): 1.0 for the first digit, 0.0 for the second;
      - for three or more, int64 (n,): the digit's position in `digits`
        (so `all` gives labels equal to the digits).
    """
    digits = list(digits)
    keep = np.isin(labels, digits)
    imgs, labs = (images, labels) if keep.all() else (images[keep], labels[keep])  # (n, 28, 28)
    # position of each label within `digits`
    lookup = np.full(10, -1, dtype=np.int64)
    lookup[digits] = np.arange(len(digits))
    cls = lookup[labs]  # (n,)
    x = torch.from_numpy(imgs.reshape(len(imgs), -1)).to(torch.float32).div_(255.0)  # (n, 784)
    y = Task(digits).labels(torch.from_numpy(cls))  # the article: a "2" is 1, a "9" is 0
    return x, y


class Dataset:
    """Images and labels, like the article's `list(zip(x, y))`, stored as two tensors.

    `len(ds)` and `ds[i] -> (x_i, y_i)` behave as on the list; `ds[a:b]` gives a
    smaller Dataset sharing the same memory. `classes` names each label
    (the digit it stands for).
    """

    def __init__(self, x: Tensor, y: Tensor, classes: Sequence[int] = (), name: str = "") -> None:
        if len(x) != len(y):
            raise DataError(f"{name or 'dataset'}: {len(x)} images but {len(y)} labels")
        self.x = x  # (N, 784) float32
        self.y = y  # (N, 1) float32 for a pair, (N,) int64 otherwise
        self.classes = tuple(classes)
        self.name = name

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int | slice) -> tuple[Tensor, Tensor] | Dataset:
        if isinstance(i, slice):
            return Dataset(self.x[i], self.y[i], self.classes, self.name)
        return self.x[i], self.y[i]

    @property
    def binary(self) -> bool:
        """True for the article's two-class setting (one output, sigmoid)."""
        return self.y.ndim == 2

    def class_counts(self) -> dict[int, int]:
        """Images per class, keyed by digit."""
        idx = self.class_index()
        counts = torch.bincount(idx, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts))

    def class_index(self) -> Tensor:
        """(N,) int64: each image's position in `classes` (pairs: 0 for the first digit)."""
        if self.binary:
            return (1 - self.y[:, 0]).long()
        return self.y.long()

    def to(self, device: torch.device | str) -> Dataset:
        return Dataset(self.x.to(device), self.y.to(device), self.classes, self.name)

    def __repr__(self) -> str:
        counts = ", ".join(f"{d}: {n}" for d, n in self.class_counts().items())
        return f"Dataset({self.name or 'unnamed'}, {len(self)} images; {counts})"

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{d}</td><td>{n}</td></tr>" for d, n in self.class_counts().items())
        return (
            f"<b>Dataset</b> {self.name}: {len(self)} images, x {tuple(self.x.shape)}, "
            f"y {tuple(self.y.shape)}<table><tr><th>digit</th><th>images</th></tr>{rows}</table>"
        )


class DataLoader:
    """Mini-batches `(xb, yb)` cut from a `Dataset` by slicing its tensors.

    A shuffled epoch draws one `randperm` from a generator seeded with a hash of
    (seed, epoch), so the same seed repeats the same batches, and each new pass
    over the loader is a new shuffle. The permutation is drawn where the data lives
    (on a GPU, by the GPU's own generator), so a batch is one `index_select` on that
    device and nothing is copied from the host per batch or per epoch. The last batch
    may be smaller, unless `drop_last`.

    Data-parallel training wraps it in `groundup.distributed.ShardedLoader`, which
    gives each worker its share of every batch through `epoch_order`, `batch_bounds`
    and `rows`.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = BATCH_SIZE,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        batch_size = _batch_size(batch_size)
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0  # how many shuffled passes have begun

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.epoch_order()
        for start, stop in self.batch_bounds():
            yield self.rows(order, start, stop)

    def epoch_order(self) -> Tensor | None:
        """This pass's permutation of the rows, (N,) int64 on the data's device, or None
        when not shuffling. Each call begins a new pass (a new shuffle)."""
        if not self.shuffle:
            return None
        device = self.dataset.x.device
        # CPU and CUDA draw on the data's device; others (MPS) on the CPU, then move
        where = device if device.type in ("cpu", "cuda") else torch.device("cpu")
        gen = torch.Generator(where).manual_seed(_epoch_seed(self.seed, self.epoch))
        self.epoch += 1
        return torch.randperm(len(self.dataset), generator=gen, device=where).to(device)

    def batch_bounds(self) -> Iterator[tuple[int, int]]:
        """(start, stop) of each batch, as positions in the epoch's order."""
        n, bs = len(self.dataset), self.batch_size
        for k in range(len(self)):
            yield k * bs, min((k + 1) * bs, n)

    def rows(self, order: Tensor | None, start: int, stop: int) -> tuple[Tensor, Tensor]:
        """Rows [start, stop) of the epoch's order: views when unshuffled, else one
        `index_select` per tensor (2-5x faster than x[idx] on the CPU)."""
        x, y = self.dataset.x, self.dataset.y
        if order is None:
            return x[start:stop], y[start:stop]  # views: no copy
        idx = order[start:stop]
        return x.index_select(0, idx), y.index_select(0, idx)

    def __repr__(self) -> str:
        return (
            f"DataLoader({len(self.dataset)} images, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, {len(self)} batches)"
        )


def _batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch size must be a whole number of at least 1, not {batch_size}")
    return batch_size


def _epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one epoch: (seed, epoch) mixed by numpy's SeedSequence.

    Not `seed + epoch`, under which seed 1 would replay seed 0's shuffles one epoch
    late, so runs "over seeds 0-4" would share most of their batches.
    """
    state = np.random.SeedSequence([seed % 2**64, epoch]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))  # 63 bits: within torch's manual_seed range


@dataclass
class DataLoaders:
    """The training and validation loaders, checked for normalisation on the way in."""

    train: DataLoader
    valid: DataLoader
    source: str = ""  # where the data came from, for reports and saved runs

    def __post_init__(self) -> None:
        check_normalisation({"train": self.train.dataset, "valid": self.valid.dataset})

    @classmethod
    def from_datasets(
        cls,
        train: Dataset,
        valid: Dataset,
        batch_size: int | str = BATCH_SIZE,
        seed: int = 0,
        source: str = "",
    ) -> DataLoaders:
        """Shuffled training batches and ordered validation ones (see `set_batch_size`)."""
        dls = cls(
            DataLoader(train, shuffle=True, seed=seed),
            DataLoader(valid, shuffle=False),
            source=source,
        )
        dls.set_batch_size(batch_size)
        return dls

    def set_batch_size(self, batch_size: int | str) -> None:
        """Mini-batches of `batch_size`, or FULL: gradient descent, the whole training set as
        one batch (validation keeps the default size, which changes nothing but memory)."""
        if batch_size == FULL:
            self.train.batch_size = max(len(self.train.dataset), 1)
            self.valid.batch_size = BATCH_SIZE
        else:
            self.train.batch_size = self.valid.batch_size = _batch_size(batch_size)

    @property
    def classes(self) -> tuple[int, ...]:
        return self.train.dataset.classes

    def to(self, device: torch.device | str) -> DataLoaders:
        """The same loaders with both datasets moved to `device` once, up front."""
        self.train.dataset = self.train.dataset.to(device)
        self.valid.dataset = self.valid.dataset.to(device)
        return self

    def __repr__(self) -> str:
        return f"DataLoaders(train={self.train.dataset!r}, valid={self.valid.dataset!r})"


def check_normalisation(datasets: dict[str, Dataset]) -> None:
    """Refuse data that was scaled wrongly: the bug in the article's own notebook.

    Two checks, each naming the split and class and giving the numbers:
      - every pixel must lie in [0, 1] (a forgotten `/255` gives values up to 255);
      - each (split, class) mean pixel must lie within `MEAN_RATIO_LIMIT` times the
        median of all the (split, class) means (a double `/255` makes a class ~255x
        darker than the rest).
    """
    means: dict[tuple[str, int], float] = {}
    for split, ds in datasets.items():
        if len(ds) == 0:
            raise DataError(f"the {split} split is empty")
        lo, hi = (float(v) for v in torch.aminmax(ds.x))  # one pass for both
        idx = ds.class_index()
        # min and max are NaN or infinite when any pixel is: only then look for the row
        # (isfinite over all pixels builds temporaries 1.5x the data's size: +300 MB at 60k)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            bad = ~torch.isfinite(ds.x).all(dim=1)  # (N,): a NaN slips through every comparison
            row = int(bad.nonzero()[0])
            digit = ds.classes[int(idx[row])] if ds.classes else int(idx[row])
            raise DataError(
                f"the {split} split, class {digit}, has {int(bad.sum())} image(s) with pixels "
                f"that are not finite numbers (NaN or infinite), the first at row {row}"
            )
        # each class's mean pixel from the rows' sums: one pass, no copy of any class
        n_classes = len(ds.classes) or int(idx.max()) + 1
        lo_idx, hi_idx = (int(v) for v in torch.aminmax(idx))
        if lo_idx < 0 or hi_idx >= n_classes:  # e.g. a pair's label that is not 0 or 1
            row = int(((idx < 0) | (idx >= n_classes)).nonzero()[0])
            raise DataError(
                f"the {split} split's label at row {row} ({ds.y[row].tolist()}) is none of "
                f"its {n_classes} classes"
            )
        row_sums = ds.x.sum(dim=1).double()  # (N,); summing in float64 would copy all of x
        sums = torch.zeros(n_classes, dtype=torch.float64, device=idx.device)
        sums = sums.index_add_(0, idx, row_sums).tolist()  # (n_classes,)
        counts = torch.bincount(idx, minlength=n_classes).tolist()
        for pos, digit in enumerate(ds.classes or range(n_classes)):
            if not counts[pos]:
                continue
            if lo < 0.0 or hi > 1.0:  # the rare path: find the class that is out of range
                cmin, cmax = (float(v) for v in torch.aminmax(ds.x[idx == pos]))
                if cmin < 0.0 or cmax > 1.0:
                    raise DataError(
                        f"pixels of the {split} split, class {digit}, range over "
                        f"[{cmin:g}, {cmax:g}], outside [0, 1]: were they divided by 255?"
                    )
            means[(split, digit)] = sums[pos] / (counts[pos] * ds.x.shape[1])
    if len(means) < 2:
        return
    median = float(np.median(list(means.values())))
    for (split, digit), m in means.items():
        ratio = max(m, 1e-12) / max(median, 1e-12)
        if ratio > MEAN_RATIO_LIMIT or ratio < 1 / MEAN_RATIO_LIMIT:
            raise DataError(
                f"the {split} split, class {digit}, has mean pixel {m:.4g} against a median of "
                f"{median:.4g} over all splits and classes ({ratio:.3g}x): "
                "was it scaled differently from the rest (divided by 255 twice, or not at all)?"
            )


def load_data(
    source: str = "sample",
    digits: Sequence[int] | Sequence[str] | str | None = (2, 9),
    batch_size: int | str = BATCH_SIZE,
    seed: int = 0,
    raw: RawData | None = None,
) -> DataLoaders:
    """Load a source (`sample`, `mnist`, a folder, ...) and make checked loaders.

    Example: `dls = load_data("sample", (2, 9))` gives 800 training and 200
    validation images, `dls.train` shuffled each epoch. `raw`: data already loaded
    (by `load_source`), used instead of loading `source` again.
    """
    from groundup.data.sources import load_source

    if digits is not None and not isinstance(digits, str):
        # integers too go through parse_digits, so (2, 2), (2,) and 12 are refused
        # here rather than giving a set whose labels are all the same
        digits = [str(d) for d in digits]
    digits = parse_digits(digits)
    raw = raw if raw is not None else load_source(source)
    require_digits(raw, digits)
    train = Dataset(*to_tensors(raw.train_images, raw.train_labels, digits), digits, "train")
    valid = Dataset(*to_tensors(raw.valid_images, raw.valid_labels, digits), digits, "valid")
    return DataLoaders.from_datasets(train, valid, batch_size, seed, source=raw.name)
