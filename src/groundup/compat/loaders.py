"""fastai's `DataLoader` and `DataLoaders`, for data the reader built by hand.

The article makes its dataset as `list(zip(train_x, train_y))`: a Python list of
(image, label) pairs. Cutting a mini-batch out of such a list means gathering 256
pairs and stacking them, every batch of every epoch. This `DataLoader` stacks the
list once, when it is built, into one tensor per field, and from then on cuts
batches by slicing, as groundup's own loader does: an epoch over 60,000 pairs costs
what an epoch over groundup's `Dataset` costs (`bench/list_loader.py` measures it).

Items are collated as torch's `default_collate` does: tensors are stacked, Python
ints become int64, floats float64, bools bool, numpy arrays and scalars tensors of
their dtype; strings stay strings (a batch holds a tuple of them). An item is one
such value or a tuple or list of them, `(x, y)` most often.

`DataLoaders(train_dl, valid_dl)` checks that both sets were scaled alike before
any training: the article's own notebook divided its validation 2s by 255 twice and
left its validation 9s unscaled, and every accuracy it printed after that was
meaningless. `check_scaling` finds exactly that, names the set, and says why.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from groundup.data.tensors import MEAN_RATIO_LIMIT
from groundup.data.tensors import DataLoader as GroundupLoader
from groundup.errors import DataError, UsageError

# Labels with at most this many distinct values are classes: the scaling check
# compares the images of each class; with more (a regression target), whole sets.
MAX_CLASSES = 100

Column = Tensor | tuple  # one field of every item: a stacked tensor, or a tuple of strings


class DataLoader:
    """Mini-batches of `dataset`, a sized, indexable collection of items.

    `dataset` is a `list(zip(x, y))`, a `range`, an `L`, groundup's `Dataset`, or
    anything with `len()` and `[i]`. Batches are in order unless `shuffle`, which
    draws a new order each epoch from torch's global generator (`torch.manual_seed`
    repeats it). The last batch may be smaller, unless `drop_last`.
    """

    world_size = 1  # one process: the Learner's data-parallel code stays out of the way
    rank = 0

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 64,
        shuffle: bool = False,
        drop_last: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise UsageError(
                f"DataLoader: batch_size must be a whole number >= 1, not {batch_size!r}"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.columns, self.is_tuple = collate_all(dataset)
        self.n = len(dataset)

    def __len__(self) -> int:
        n, bs = self.n, self.batch_size
        return n // bs if self.drop_last else math.ceil(n / bs)

    def __iter__(self) -> Iterator[Any]:
        order = torch.randperm(self.n) if self.shuffle else None
        bs = self.batch_size
        for k in range(len(self)):
            start, stop = k * bs, min((k + 1) * bs, self.n)
            if order is None:
                cols = [c[start:stop] for c in self.columns]  # views: no copy
            else:
                idx = order[start:stop]
                cols = [_take(c, idx) for c in self.columns]
            yield tuple(cols) if self.is_tuple else cols[0]

    def tensors(self) -> tuple[Tensor, Tensor] | None:
        """(x, y) when every item is a pair of tensors or numbers; else None."""
        if (
            self.is_tuple
            and len(self.columns) == 2
            and all(isinstance(c, Tensor) for c in self.columns)
        ):
            return self.columns[0], self.columns[1]
        return None

    def to(self, device: torch.device | str) -> DataLoader:
        """Move the stacked tensors to `device`, once."""
        self.columns = [c.to(device) if isinstance(c, Tensor) else c for c in self.columns]
        return self

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.n} items, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, {len(self)} batches)"
        )


def _take(column: Column, idx: Tensor) -> Column:
    if isinstance(column, Tensor):
        # index_select gathers the same rows as column[idx], faster on CPU
        return column.index_select(0, idx.to(column.device))
    return tuple(column[i] for i in idx.tolist())


# -- collation: a dataset of items -> one column per field ----------------------------------


def collate_all(dataset: Any) -> tuple[list[Column], bool]:
    """Stack every item of `dataset` once: (one column per field, whether items are tuples).

    A groundup `Dataset` is already two tensors and is used as it is.
    """
    x, y = getattr(dataset, "x", None), getattr(dataset, "y", None)
    if isinstance(x, Tensor) and isinstance(y, Tensor) and len(x) == len(y) == len(dataset):
        return [x, y], True
    try:
        n = len(dataset)
    except TypeError:
        raise UsageError(
            f"DataLoader: the dataset must have a length and items by index; "
            f"a {type(dataset).__name__} has no len()"
        ) from None
    if n == 0:
        raise DataError("DataLoader: the dataset is empty: there is nothing to make batches of")
    items = dataset if isinstance(dataset, list | tuple) else [dataset[i] for i in range(n)]
    head = items[0]
    if isinstance(head, tuple | list):
        width = len(head)
        for i, item in enumerate(items):
            if not isinstance(item, tuple | list) or len(item) != width:
                got = f"{len(item)} parts" if isinstance(item, tuple | list) else "a single value"
                raise DataError(
                    f"DataLoader: item {i} has {got}, but item 0 has {width} parts; "
                    "every item must have the same form, (x, y) for example"
                )
        fields = list(zip(*items)) if width else []
        return [_column(f, k, width) for k, f in enumerate(fields)], True
    return [_column(items, None, 1)], False


def _column(values: Sequence[Any], field: int | None, width: int) -> Column:
    """Stack one field of every item, or say which item first breaks the pattern."""
    what = "" if field is None else f" part {field} ({'xy'[field] if width == 2 else field})"
    head = values[0]
    if isinstance(head, Tensor):
        if all(isinstance(v, Tensor) and v.shape == head.shape for v in values):
            return torch.stack(list(values))
        return _mismatch(
            values,
            what,
            lambda v: isinstance(v, Tensor) and v.shape == head.shape,
            f"a tensor of shape {tuple(head.shape)}",
        )
    if isinstance(head, np.ndarray | np.generic):
        if all(
            isinstance(v, np.ndarray | np.generic) and np.shape(v) == np.shape(head) for v in values
        ):
            return torch.from_numpy(np.stack(values))
        return _mismatch(
            values,
            what,
            lambda v: isinstance(v, np.ndarray | np.generic) and np.shape(v) == np.shape(head),
            f"an array of shape {np.shape(head)}",
        )
    if isinstance(head, str | bytes):
        if all(isinstance(v, str | bytes) for v in values):
            return tuple(values)
        return _mismatch(values, what, lambda v: isinstance(v, str | bytes), "a string")
    if isinstance(head, numbers.Number):
        kind = (
            bool if isinstance(head, bool) else int if isinstance(head, numbers.Integral) else float
        )
        ok = (
            (lambda v: isinstance(v, bool))
            if kind is bool
            else (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool))
        )
        if all(ok(v) for v in values):
            # default_collate's dtypes: bool, int64, float64 (a mix of ints and floats: float64)
            dtype = {bool: torch.bool, int: torch.int64, float: torch.float64}[kind]
            if kind is int and any(not isinstance(v, numbers.Integral) for v in values):
                dtype = torch.float64
            return torch.tensor(list(values), dtype=dtype)
        return _mismatch(values, what, ok, f"a {kind.__name__}")
    raise DataError(
        f"DataLoader: item 0{what} is a {type(head).__name__}; items must be tensors, numbers, "
        "numpy arrays or strings, alone or in a tuple such as (x, y)"
    )


def _mismatch(values: Sequence[Any], what: str, ok: Any, expected: str) -> Column:
    i = next(i for i, v in enumerate(values) if not ok(v))
    v = values[i]
    got = (
        f"a tensor of shape {tuple(v.shape)}"
        if isinstance(v, Tensor)
        else (
            f"an array of shape {np.shape(v)}"
            if isinstance(v, np.ndarray)
            else f"a {type(v).__name__}"
        )
    )
    raise DataError(
        f"DataLoader: item {i}{what} is {got}, but item 0's is {expected}; "
        "a batch stacks them, so they must all match"
    )


# -- DataLoaders and the scaling check -------------------------------------------------------


class DataLoaders:
    """The training and validation loaders: `DataLoaders(train_dl, valid_dl)`.

    Both sets are checked by `check_scaling` as they come in: a set scaled
    differently from the rest stops here with a `DataError`, before any training.
    """

    def __init__(self, *loaders: Any) -> None:
        if len(loaders) != 2:
            raise UsageError(
                f"DataLoaders takes two loaders, training then validation, not {len(loaders)}"
            )
        for dl in loaders:
            if not isinstance(dl, DataLoader | GroundupLoader):
                raise UsageError(
                    f"DataLoaders takes groundup's DataLoader objects, not {type(dl).__name__}"
                )
        self.loaders = list(loaders)
        check_scaling({"training": _xy(self.train), "validation": _xy(self.valid)})

    @property
    def train(self) -> Any:
        return self.loaders[0]

    @property
    def valid(self) -> Any:
        return self.loaders[1]

    def __getitem__(self, i: int) -> Any:
        return self.loaders[i]

    def to(self, device: torch.device | str) -> DataLoaders:
        for dl in self.loaders:
            if isinstance(dl, DataLoader):
                dl.to(device)
            else:
                dl.dataset = dl.dataset.to(device)
        return self

    def __repr__(self) -> str:
        return f"DataLoaders(train={self.train!r}, valid={self.valid!r})"


def _xy(dl: Any) -> tuple[Tensor, Tensor] | None:
    if isinstance(dl, GroundupLoader):
        return dl.dataset.x, dl.dataset.y
    return dl.tensors()


def check_scaling(sets: dict[str, tuple[Tensor, Tensor] | None]) -> None:
    """Refuse sets whose images were scaled differently: the article's notebook bug.

    Every pixel of every set is read once, for its smallest and largest value; then,
    per set and (when the labels are classes) per class, the mean and the
    root-mean-square of the pixels:
      - a pixel that is NaN or infinite is refused, naming the set and the item;
      - pixels that are all >= 0 but reach above 1 were not divided by 255;
      - a group whose root-mean-square lies more than `MEAN_RATIO_LIMIT` times off the
        median of all groups was scaled differently from the rest: about 255x smaller
        is a double /255, about 255x bigger a missing one. (MNIST's classes differ far
        less: a 1 has the least ink, 1.6x less than the mean.)
    The root-mean-square rather than the mean, so that inputs standardised to mean 0
    are compared by their spread. Each group's scale is measured on at most
    `SCALE_ROWS` of its images, evenly spaced: a scaling mistake affects whole sets or
    classes, and a thousand images measure a class's scale to within a few percent,
    at a fraction of the cost of reading 60,000. The figures in the error are exact.
    Sets that are not two tensors (x, y) are not checked. Every problem is reported
    in one `DataError`.
    """
    groups: list[_Group] = []
    unscaled: set[str] = set()  # sets with pixels >= 0 that reach above 1
    for name, xy in sets.items():
        if xy is None or xy[0].is_complex() or xy[0].dtype == torch.bool:
            continue  # not pixels
        x, y = xy
        if len(x) == 0:
            raise DataError(f"DataLoaders: the {name} set is empty")
        rows = x.reshape(len(x), -1)
        if not rows.is_floating_point():
            rows = rows.float()
        lo, hi = (float(v) for v in torch.aminmax(rows))  # NaN if any pixel is NaN
        if not (math.isfinite(lo) and math.isfinite(hi)):
            bad = ~torch.isfinite(rows).all(dim=1)  # (N,): only now, to name the item
            raise DataError(
                f"DataLoaders: the {name} set has {int(bad.sum())} image(s) with pixels that "
                f"are not finite numbers (NaN or infinite), the first at item "
                f"{int(bad.nonzero()[0])}"
            )
        if lo >= 0 and hi > 1:
            unscaled.add(name)
        groups += [_Group(name, label, rows, idx) for label, idx in _classes(y, len(rows))]
    if not groups:
        return
    median = float(np.median([g.rms for g in groups]))
    problems = []
    for g in groups:
        ratio = max(g.rms, 1e-12) / max(median, 1e-12)
        cause = ""
        if ratio > MEAN_RATIO_LIMIT:
            cause = "not divided by 255?"
        elif ratio < 1 / MEAN_RATIO_LIMIT:
            cause = "divided by 255 twice?"
        elif g.set in unscaled and g.exact()[0] >= 0 and g.exact()[1] > 1:
            cause = "not divided by 255?"  # every image counts here, not the estimate's
        if cause:
            lo, hi, mean = g.exact()
            subject = f"the {g.set} set" + (f"'s images labelled {g.label}" if g.label else "")
            verb = "range" if g.label else "ranges"
            problems.append(
                f"{subject} {verb} over [{lo:.4g}, {hi:.4g}] with mean {mean:.4g} ({cause})"
            )
    if problems:
        typical = float(np.median([g.exact()[2] for g in groups]))
        raise DataError(
            "DataLoaders: the images are not all scaled alike: "
            + "; ".join(problems)
            + f". The median mean over all sets and labels is {typical:.4g}; divide every "
            "set's pixels by 255 exactly once, as in x.float()/255"
        )


# Images per group that the scale estimate reads (evenly spaced through the group).
SCALE_ROWS = 1024


class _Group:
    """The images of one set and label: a scale estimate now, exact figures on demand."""

    def __init__(self, set_name: str, label: str, rows: Tensor, idx: Tensor | None) -> None:
        self.set, self.label, self.rows, self.idx = set_name, label, rows, idx
        n = len(rows) if idx is None else len(idx)
        step = max(1, math.ceil(n / SCALE_ROWS))
        pick = torch.arange(0, n, step) if idx is None else idx[::step]
        part = rows.index_select(0, pick)  # (<= SCALE_ROWS, pixels)
        self.rms = float(torch.linalg.vector_norm(part)) / math.sqrt(part.numel())
        self._exact: tuple[float, float, float] | None = None

    def exact(self) -> tuple[float, float, float]:
        """(min, max, mean) over every image of the group, computed once when asked."""
        if self._exact is None:
            part = self.rows if self.idx is None else self.rows.index_select(0, self.idx)
            lo, hi = torch.aminmax(part)
            self._exact = (float(lo), float(hi), float(part.mean(dtype=torch.float64)))
        return self._exact


def _classes(y: Tensor, n: int) -> list[tuple[str, Tensor | None]]:
    """(label text, row indices) per class of `y`; [("", None)] when `y` is not classes.

    Labels are classes when they are whole numbers with at most `MAX_CLASSES` values.
    """
    labels = y.reshape(len(y), -1)[:, 0] if y.ndim >= 1 and len(y) == n else None
    if labels is None or (
        labels.is_floating_point() and not bool((labels == labels.round()).all())
    ):
        return [("", None)]
    values, inverse = torch.unique(labels, return_inverse=True)
    if len(values) > MAX_CLASSES:
        return [("", None)]
    return [(_num(v), (inverse == k).nonzero().squeeze(1)) for k, v in enumerate(values)]


def _num(v: Tensor) -> str:
    f = float(v)
    return str(int(f)) if f == int(f) else f"{f:g}"
