"""Our `DataLoader` against `torch.utils.data.DataLoader(TensorDataset, shuffle=True)`.

One shuffled epoch over Fashion-MNIST's 60,000 training images, batch 256, each batch
touched (its first element read) so that nothing is left lazy. Target: ours at least
5x faster.

Why ours is faster: torch's loader asks the dataset for one row at a time, 60,000
Python calls, and then stacks 256 rows into a batch; ours draws one `randperm` per
epoch and cuts each batch out of the whole tensor with one indexing call. A torch
loader given a `BatchSampler` also fetches whole batches; it is reported alongside,
without a target, as the fastest way to use torch's own loader.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import BatchSampler, RandomSampler, TensorDataset
from torch.utils.data import DataLoader as TorchLoader

from groundup.data.tensors import DataLoader
from run import interleave, median, pair_ratio

TARGET = 5.0  # torch loader time / our loader time, at least


def one_epoch(loader: Any) -> int:
    """Iterate over every batch; returns the number of rows seen (so the work is used)."""
    rows = 0
    for xb, yb in loader:
        rows += xb.shape[0]
        xb[0, 0].item()  # touch the batch
        yb[0].item()
    return rows


class _WholeBatches(TensorDataset):
    """`TensorDataset` indexed by a list of rows at once (for the BatchSampler variant)."""

    def __getitem__(self, rows: Any) -> tuple[torch.Tensor, ...]:
        return tuple(t[rows] for t in self.tensors)


def run(ctx: Any) -> list[dict[str, Any]]:
    source = "sample" if ctx.smoke else "fashion-mnist"
    train, _ = ctx.data(source, "all")
    x, y = train.x, train.y  # (N, 784) float32, (N,) int64
    n = len(x)
    ours = DataLoader(train, batch_size=256, shuffle=True, seed=0)
    torch_plain = TorchLoader(TensorDataset(x, y), batch_size=256, shuffle=True)
    torch_batched = TorchLoader(
        _WholeBatches(x, y),
        sampler=BatchSampler(RandomSampler(range(n)), batch_size=256, drop_last=False),
        batch_size=None,
    )
    fns = {
        "ours": lambda _: one_epoch(ours),
        "torch": lambda _: one_epoch(torch_plain),
        "torch_batch_sampler": lambda _: one_epoch(torch_batched),
    }
    reps = ctx.reps(7)
    times = interleave(fns, reps, warmup=0 if ctx.smoke else 1)
    ratio, spread = pair_ratio(times["torch"], times["ours"])
    ratio_bs, spread_bs = pair_ratio(times["torch_batch_sampler"], times["ours"])
    where = f"{n:,} {source} images, batch 256, shuffled"
    return [
        ctx.row(
            f"torch DataLoader(TensorDataset, shuffle=True) ÷ ours: one epoch, {where}",
            ratio,
            target=TARGET,
            goal="min",
            ours_s=median(times["ours"]),
            base_s=median(times["torch"]),
            spread=spread,
            reps=reps,
        ),
        ctx.row(
            f"torch DataLoader with a BatchSampler ÷ ours: one epoch, {where}",
            ratio_bs,
            ours_s=median(times["ours"]),
            base_s=median(times["torch_batch_sampler"]),
            spread=spread_bs,
            reps=reps,
            note="torch's fastest form, for reference",
        ),
    ]
