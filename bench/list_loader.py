"""groundup.all's `DataLoader` over the article's `list(zip(x, y))`, against groundup's own.

The article builds its dataset as a Python list of (image, label) pairs. The
`DataLoader` of `groundup.all` stacks that list once, when it is built, and then
cuts batches by slicing, as groundup's `DataLoader` does over a `Dataset`. Three
figures, over Fashion-MNIST's 60,000 training images, batch 256:

- one epoch, in order (as the article iterates) and shuffled: list loader ÷ groundup's
  loader, each already built. Target: at most 1.2x.
- building: `DataLoaders(train_dl, valid_dl)` from the two lists, with the scaling check
  that catches the article's /255 bug ÷ the same without it (stacking only). The check
  must not make building noticeably slower. Target: at most 1.2x.
"""

from __future__ import annotations

from typing import Any

from groundup.compat import loaders
from groundup.data.tensors import DataLoader as GroundupLoader
from run import interleave, median, pair_ratio

TARGET = 1.2  # list-loader time / groundup-loader time, at most


def one_epoch(loader: Any) -> int:
    """Iterate over every batch, touching each; returns the rows seen."""
    rows = 0
    for xb, yb in loader:
        rows += xb.shape[0]
        xb[0, 0].item()
        yb[0].item()
    return rows


def run(ctx: Any) -> list[dict[str, Any]]:
    source = "sample" if ctx.smoke else "fashion-mnist"
    train, valid = ctx.data(source, "all")
    pairs = list(zip(train.x, train.y))  # the article's dataset: N (x, y) tuples of views
    valid_pairs = list(zip(valid.x, valid.y))
    n = len(pairs)
    where = f"{n:,} {source} images, batch 256"
    rows = []
    for shuffle in (False, True):
        ours = loaders.DataLoader(pairs, batch_size=256, shuffle=shuffle)
        base = GroundupLoader(train, batch_size=256, shuffle=shuffle, seed=0)
        reps = ctx.reps(9)
        times = interleave(
            {
                "list": lambda _, dl=ours: one_epoch(dl),
                "dataset": lambda _, dl=base: one_epoch(dl),
            },
            reps,
            warmup=0 if ctx.smoke else 1,
        )
        ratio, spread = pair_ratio(times["list"], times["dataset"])
        order = "shuffled" if shuffle else "in order"
        rows.append(
            ctx.row(
                f"DataLoader(list(zip(x, y))) ÷ DataLoader(Dataset): one epoch, {where}, {order}",
                ratio,
                target=TARGET,
                ours_s=median(times["list"]),
                base_s=median(times["dataset"]),
                spread=spread,
                reps=reps,
                note="groundup.all's loader stacks the list once, when built",
            )
        )

    def build(check: bool) -> None:
        train_dl = loaders.DataLoader(pairs, batch_size=256)
        valid_dl = loaders.DataLoader(valid_pairs, batch_size=256)
        if check:
            loaders.DataLoaders(train_dl, valid_dl)

    reps = ctx.reps(5)
    times = interleave(
        {"checked": lambda _: build(True), "unchecked": lambda _: build(False)},
        reps,
        warmup=0 if ctx.smoke else 1,
    )
    ratio, spread = pair_ratio(times["checked"], times["unchecked"])
    rows.append(
        ctx.row(
            f"building DataLoaders from list(zip(x, y)): with the scaling check ÷ without; "
            f"{n:,} + {len(valid_pairs):,} {source} images",
            ratio,
            target=TARGET,
            ours_s=median(times["checked"]),
            base_s=median(times["unchecked"]),
            spread=spread,
            reps=reps,
            note="without: stacking the two lists into tensors",
        )
    )
    return rows
