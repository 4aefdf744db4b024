"""Beyond one machine: data-parallel training with `torch.distributed`.

Data parallelism runs the same seven steps in N processes, the *workers* (PyTorch
calls each one a *rank*, numbered 0 to N-1), with one copy of the model each:

  1. init      every worker builds the same model from the same seed; rank 0's
               weights are then broadcast, so they start identical for certain
  2. predict   worker r predicts on its own rows of batch k (`ShardedLoader`)
  3. loss      the mean over those n_r rows
  4. gradient  g_r, from that loss
  5. step      first the gradients are combined, g = sum_r n_r g_r / sum_r n_r
               (`all_reduce_gradients`), then every worker takes the same step with
               the same g, so the copies stay identical
  6. repeat    every worker has the same number of batches, so they stay in step
  7. stop      the epoch's sums are added over the workers, so each sees the loss and
               accuracy of the whole sets and all of them stop at the same epoch

The Learner's loop knows none of this: `DataParallel` is one of its callbacks, and
`shard` wraps its loaders (`groundup.runs.training.make_learner` attaches both).

`torchrun` starts the workers and tells each where it stands through environment
variables: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. The command
line reads them (`worker_from_env(os.environ)`) and hands a `Worker` to
`init_distributed`; nothing else in the library reads the environment.

The backend is picked by the device: gloo for CPU tensors, NCCL for CUDA GPUs.
A worker that dies, or one that never arrives, ends the run with a
`DistributedError` (exit code 1) instead of a hang: every wait has a timeout.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from groundup.errors import GroundupError, UsageError

if TYPE_CHECKING:
    from groundup.data.tensors import DataLoader, DataLoaders, Dataset
    from groundup.learn.learner import Learner

# The variables torchrun sets for every worker it starts.
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")

# How long a worker waits for the others, at the rendezvous and at every all_reduce,
# before it gives up. Long enough for a slow peer to load its data; short enough that
# a lost machine does not hold the job for PyTorch's default of 30 minutes.
DEFAULT_TIMEOUT_S = 300.0


class DistributedError(GroundupError):
    """Workers could not meet, or one of them was lost during training (exit code 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Worker:
    """Where this process stands in a data-parallel job."""

    rank: int  # 0 .. world_size-1 over all machines; rank 0 prints and saves
    world_size: int  # how many workers in all
    local_rank: int = 0  # the rank on this machine: which GPU it takes
    master_addr: str = "127.0.0.1"  # the machine where rank 0 listens
    master_port: int = 29500  # the port it listens on

    @property
    def is_main(self) -> bool:
        """True for rank 0, the one that prints progress and writes the run directory."""
        return self.rank == 0

    def __str__(self) -> str:
        return f"worker {self.rank} of {self.world_size}"


def worker_from_env(env: Mapping[str, str]) -> Worker | None:
    """The `Worker` that torchrun described in `env` (pass `os.environ`), or None
    for a plain run, started without torchrun.

    Raises UsageError when the variables are only partly set or not numbers.
    """
    present = [name for name in ENV_VARS if env.get(name)]
    if not present:
        return None
    missing = [name for name in ("RANK", "WORLD_SIZE") if name not in present]
    if missing:
        raise UsageError(
            f"{' and '.join(missing)} must be set along with {', '.join(present)}: "
            "start the workers with torchrun, which sets all of them"
        )
    numbers: dict[str, int] = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        text = env.get(name) or {"LOCAL_RANK": "0", "MASTER_PORT": "29500"}.get(name, "")
        try:
            numbers[name] = int(text)
        except ValueError:
            raise UsageError(
                f"the environment variable {name} must be a whole number, not {text!r}"
            ) from None
    worker = Worker(
        rank=numbers["RANK"],
        world_size=numbers["WORLD_SIZE"],
        local_rank=numbers["LOCAL_RANK"],
        master_addr=env.get("MASTER_ADDR") or "127.0.0.1",
        master_port=numbers["MASTER_PORT"],
    )
    check_worker(worker)
    return worker


def check_worker(worker: Worker) -> None:
    """Raise UsageError for a rank, world size or port no job can have."""
    if worker.world_size < 1:
        raise UsageError(f"the world size must be at least 1, not {worker.world_size}")
    if not 0 <= worker.rank < worker.world_size:
        raise UsageError(
            f"rank {worker.rank} is not within the world size {worker.world_size} "
            f"(ranks run from 0 to {worker.world_size - 1})"
        )
    if worker.local_rank < 0:
        raise UsageError(f"the local rank must be 0 or more, not {worker.local_rank}")
    if not 0 < worker.master_port < 65536:
        raise UsageError(f"the master port must lie in 1-65535, not {worker.master_port}")


def backend_for(device: str | torch.device) -> str:
    """The collective backend for tensors on `device`: NCCL for CUDA, gloo for the CPU."""
    kind = torch.device(device).type
    if kind == "cuda":
        return "nccl"
    if kind == "cpu":
        return "gloo"
    raise UsageError(
        f"data-parallel training runs on the CPU (gloo) or on CUDA GPUs (NCCL), not on {kind}: "
        "pass --device cpu"
    )


def worker_device(device: str, local_rank: int) -> str:
    """The device one worker trains on: with CUDA, the GPU numbered by its local rank
    (one worker per GPU, the usual torchrun layout); otherwise the CPU.

    `device` is what the user asked for: auto, cpu, cuda (or cuda:N, kept as given).
    """
    if device.startswith("cuda:") or device == "cpu":
        return device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise UsageError(
                f"local rank {local_rank} has no GPU of its own: this machine has {count}; "
                f"start at most {count} workers per machine (--nproc-per-node {count})"
            )
        return f"cuda:{local_rank}"
    backend_for(device)  # raises for mps and the rest
    return device


def init_distributed(
    worker: Worker, device: str = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S
) -> str:
    """Join the job: meet the other workers at master_addr:master_port. Returns the backend.

    Rank 0 listens (or, under torchrun, torchrun's own agent does), the others connect;
    each waits at most `timeout_s` seconds for all `world_size` workers, and later
    for each all_reduce. Raises DistributedError with what went wrong.
    """
    import torch.distributed as dist

    check_worker(worker)
    if timeout_s <= 0:
        raise UsageError(f"the distributed timeout must be above 0 seconds, not {timeout_s}")
    backend = backend_for(device)
    if dist.is_initialized():
        raise UsageError("this process has already joined a distributed job")
    if backend == "nccl":
        torch.cuda.set_device(torch.device(device))
    address = f"{worker.master_addr}:{worker.master_port}"
    try:
        dist.init_process_group(
            backend,
            init_method=f"tcp://{address}",
            rank=worker.rank,
            world_size=worker.world_size,
            timeout=timedelta(seconds=timeout_s),
        )
    except RuntimeError as err:  # torch's DistStoreError, DistNetworkError, ...
        raise DistributedError(_rendezvous_message(err, worker, address, timeout_s)) from err
    return backend


def _rendezvous_message(err: Exception, worker: Worker, address: str, timeout_s: float) -> str:
    text = _first_line(err)
    if "EADDRINUSE" in text or "address already in use" in text:
        return (
            f"{worker}: cannot listen on {address}, the port is taken "
            "(another job?); choose a free one with --master-port"
        )
    if "timed out" in text.lower() or "timeout" in text.lower():
        return (
            f"{worker}: the workers did not all meet at {address} within {timeout_s:g} s "
            f"({text}); start all {worker.world_size} of them with the same "
            "--master-addr, --master-port and world size, and check that the port is open"
        )
    return f"{worker}: could not join the job at {address}: {text}"


def shutdown() -> None:
    """Leave the job (a no-op when this process never joined one)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


# -- the training loop's side: a loader wrapper and a callback ---------------------------------


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
    device = torch.device(device)
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


# -- failures ------------------------------------------------------------------------------

# Words in the errors that gloo, NCCL and the TCP store raise when a peer is lost or
# late; a RuntimeError without them is a bug of ours and keeps its traceback.
_PEER_WORDS = ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "socket")


def is_peer_failure(err: BaseException) -> bool:
    """True when `err` says another worker died, hung or became unreachable."""
    import torch.distributed as dist

    if isinstance(err, dist.DistError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and any(word in text for word in _PEER_WORDS)


@contextmanager
def peer_failures_reported(worker: Worker, doing: str = "training") -> Iterator[None]:
    """Turn a lost or late worker into a DistributedError with a one-line message.

    Without this a learner sees a long C++ trace from gloo; with it they read
    'worker 0 of 2: another worker stopped, stalled or became unreachable ...'.
    """
    try:
        yield
    except RuntimeError as err:
        if not is_peer_failure(err):
            raise
        raise DistributedError(
            f"{worker}: another worker stopped, stalled or became unreachable during {doing} "
            f"({_first_line(err)}); nothing was saved; the output of the worker that failed "
            "first says why"
        ) from err


@contextmanager
def sigterm_as_error(worker: Worker) -> Iterator[None]:
    """While inside, SIGTERM raises DistributedError instead of killing silently.

    torchrun sends SIGTERM to the other workers as soon as one fails. Rank 0 then
    says so in one line, and any file being written is cleaned up by the exception
    (`atomic_write_bytes`), so a saved model is never half-written.
    """

    def stop(signum: int, frame: Any) -> None:
        raise DistributedError(
            f"{worker}: stopped by torchrun, because another worker failed or the job was "
            "cancelled; see the first error above"
        )

    if threading.current_thread() is not threading.main_thread():
        yield  # Python lets only the main thread set signal handlers
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    # gloo prefixes its messages with the C++ source file: keep only what a user reads
    if text.startswith("[") and "] " in text:
        text = text.split("] ", 1)[1]
    # ... and follows them with generic advice that the message around it replaces
    text = text.split(" This is typically caused", 1)[0].rstrip(". ")
    return text[:300]
