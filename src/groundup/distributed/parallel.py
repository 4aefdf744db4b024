"""The training loop's side of data-parallel training: each worker's share of every
batch (`ShardedLoader`, `shard`), and the Learner callback that makes the workers
step as one (`DataParallel`), with the collectives it is built from.

See the package's docstring for the seven steps as N workers take them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from groundup.errors import UsageError

if TYPE_CHECKING:
    from groundup.data.tensors import DataLoader, DataLoaders, Dataset
    from groundup.learn.learner import Learner


class ShardedLoader:
    """One worker's view of a `DataLoader`: its share of every batch.

    All workers draw the same permutation, and batch k of worker r holds rows
    [k*B + r*b, k*B + (r+1)*b) of it, where B is the global batch size and
    b = B / world_size. So the union of the workers' k-th batches is exactly the
    k-th batch a single process would see. A short last batch is split as evenly as
    it goes (a worker may get one row fewer; none is padded or dropped).

    `keep_empty`: yield a share that is empty (a last batch with fewer rows than
    workers), so that every worker takes every step together (training). Validation
    passes False: no worker waits for another there.
    """

    def __init__(
        self, loader: DataLoader, rank: int, world_size: int, keep_empty: bool = True
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise UsageError(f"rank {rank} is not within world size {world_size}")
        self.loader, self.rank, self.world_size = loader, rank, world_size
        self.keep_empty = keep_empty

    # what the Learner and its callbacks read of a loader is the wrapped loader's
    @property
    def dataset(self) -> Dataset:
        return self.loader.dataset

    @dataset.setter
    def dataset(self, value: Dataset) -> None:  # DataLoaders.to moves the data
        self.loader.dataset = value

    @property
    def batch_size(self) -> int:
        return self.loader.batch_size  # the global batch size, over all workers

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.loader.batch_size = value

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.loader.epoch_order()  # the same permutation on every worker
        for start, stop in self.loader.batch_bounds():
            lo, hi = _shard(start, stop, self.rank, self.world_size)
            if hi > lo or self.keep_empty:
                yield self.loader.rows(order, lo, hi)

    def __repr__(self) -> str:
        return f"ShardedLoader({self.loader!r}, {self.rank} of {self.world_size})"


def _shard(start: int, stop: int, rank: int, world_size: int) -> tuple[int, int]:
    """This worker's part of rows [start, stop): equal shares, the last batch split as
    evenly as it goes."""
    n = stop - start
    lo = start + (n * rank) // world_size
    hi = start + (n * (rank + 1)) // world_size
    return lo, hi


def shard(dls: DataLoaders, rank: int, world_size: int) -> DataLoaders:
    """`dls` with both loaders wrapped, so that worker `rank` sees its share of each batch."""
    dls.train = ShardedLoader(dls.train, rank, world_size)  # type: ignore[assignment]
    dls.valid = ShardedLoader(dls.valid, rank, world_size, keep_empty=False)  # type: ignore[assignment]
    return dls


class DataParallel:
    """The Learner callback that makes N workers, each on its shard (`shard`), train as
    one process would. Attach it before any other callback (the Learner puts its
    Recorder before it): the others then see the whole batch's gradient, and the sums
    it adds up include the Recorder's.

      before_fit      rank 0's weights are copied to every worker
      after_loss      an empty share (a last batch with fewer rows than workers) gets
                      a loss of 0 with a zero gradient: it adds nothing, but the
                      worker still takes the step with the others
      after_backward  every worker gets the whole batch's gradient (`all_reduce_gradients`)
      after_validate  each batch's loss and every sum of the epoch (`learn.sums`) are
                      added over the workers, so each worker sees the loss and
                      metrics of the whole sets, and all of them stop together
    """

    def before_fit(self, learn: Learner) -> None:
        broadcast_parameters(list(learn.model.parameters()))

    def after_loss(self, learn: Learner) -> None:
        if learn.xb.shape[0] == 0:  # the mean over no rows would be 0/0
            learn.loss = learn.preds.sum()  # 0, and a zero gradient for every weight

    def after_backward(self, learn: Learner) -> None:
        assert learn.opt is not None
        all_reduce_gradients(learn.opt.params, learn.xb.shape[0])

    def after_validate(self, learn: Learner) -> None:
        """Worker r's batch k has the mean loss l_rk over n_rk rows; the whole batch's
        is sum_r n_rk l_rk / sum_r n_rk. The sums are sums already: they just add."""
        import torch.distributed as dist

        n = len(learn.batch_rows)
        rows = torch.tensor(learn.batch_rows, dtype=torch.float64, device=learn.device)  # (n,)
        sums = [s.to(torch.float64) for s in learn.sums.values()]
        flat = torch.cat([learn.batch_losses.to(torch.float64) * rows, rows, *sums])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)  # float64, so that counts stay exact
        loss_sums, rows, *sums = flat.split([n, n, *(len(s) for s in sums)])
        learn.batch_losses = loss_sums / rows.clamp(min=1)
        learn.batch_rows = [int(r) for r in rows.tolist()]
        learn.sums = dict(zip(learn.sums, sums))


def all_reduce_gradients(params: Sequence[Tensor], n_rows: int) -> int:
    """Data-parallel step 5, first half: give every worker the gradient of the whole batch.

    Worker r holds g_r, the gradient of the mean loss over its own n_r rows. The
    gradient of the mean over all N = sum_r n_r rows of the batch is

        g = sum_r n_r * g_r / N

    so each worker multiplies its gradients by n_r, `all_reduce` adds them up over
    the workers, and each divides by N. Every worker then takes the same step
    (`opt.step()`), so their copies of the model stay identical. Weighting by n_r
    keeps a short last batch, split unevenly, exact too; a plain average of the g_r
    is exact only when every share has the same size.

    params: the model's parameters, in the same order on every worker. A parameter
    without a gradient counts as a zero gradient. All the gradients travel in one
    flat buffer, with n_r in its last slot: one all_reduce per step, not one per
    tensor. Returns N.
    """
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads] + [grads[0].new_ones(1)])  # (P + 1,)
    flat.mul_(n_rows)  # n_r * g_r, and n_r itself in the last slot
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)  # sum_r n_r g_r, and N
    total = int(round(float(flat[-1])))
    if total > 0:
        flat.div_(total)  # g = sum_r n_r g_r / N
    offset = 0
    for p, g in zip(params, grads, strict=True):
        p.grad = flat[offset : offset + g.numel()].view_as(g)  # a view: no copy
        offset += g.numel()
    return total


def sum_across_workers(values: Sequence[float], device: str | torch.device = "cpu") -> list[float]:
    """Add each value over all the workers: [a, b] -> [sum_r a_r, sum_r b_r].

    This is how metrics become those of the whole validation set: each worker sends
    its sums and its count, never its means, since a mean of means is wrong when the
    shares differ in size. Float64, so that counts stay exact.
    """
    import torch.distributed as dist

    totals = torch.tensor(list(values), dtype=torch.float64, device=device)  # (V,)
    dist.all_reduce(totals, op=dist.ReduceOp.SUM)
    return totals.tolist()


def broadcast_parameters(params: Sequence[Tensor], src: int = 0) -> None:
    """Copy rank `src`'s weights into every worker's model, in place.

    The same seed already gives the same initial weights everywhere; this makes it
    certain (as `DistributedDataParallel` does when it wraps a model).
    """
    import torch.distributed as dist

    for p in params:
        dist.broadcast(p.detach(), src=src)  # detach() shares p's memory: written in place


def wrap_ddp(model: Any, device: str | torch.device = "cpu") -> Any:
    """PyTorch's `DistributedDataParallel` around a `torch.nn.Module` (such as `cnn`).

    DDP averages the gradients itself, during `backward()`, bucket by bucket, while
    the rest of the backward pass still runs: faster on big models, but hidden.
    Its average is a plain mean over workers, (1/N) sum_r g_r, which equals the
    gradient of the whole batch only when every worker has the same number of rows
    (see docs/distributed.md). groundup's own models are not `nn.Module`s; they use
    `all_reduce_gradients`, which shows the step.
    """
    from torch.nn.parallel import DistributedDataParallel

    if not isinstance(model, torch.nn.Module):
        raise UsageError(
            f"DistributedDataParallel wraps torch.nn.Module models, not {type(model).__name__}; "
            "groundup's own models average their gradients with all_reduce_gradients"
        )
    if "torch._dynamo" not in sys.modules:
        raise UsageError(
            "wrap_ddp needs init_distributed(..., ddp=True): DistributedDataParallel imports "
            "torch._dynamo, which must be loaded before the process group exists, or the "
            "group outlives shutdown() and its threads can abort the process at exit"
        )
    device = torch.device(device)
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
