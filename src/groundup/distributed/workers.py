"""Joining a data-parallel job, and leaving it cleanly when a worker is lost.

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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from groundup.errors import GroundupError, UsageError

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
    worker: Worker, device: str = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S, ddp: bool = False
) -> str:
    """Join the job: meet the other workers at master_addr:master_port. Returns the backend.

    Rank 0 listens (or, under torchrun, torchrun's own agent does), the others connect;
    each waits at most `timeout_s` seconds for all `world_size` workers, and later
    for each all_reduce. Raises DistributedError with what went wrong.

    `ddp=True`: this process will also wrap a model with `wrap_ddp`. PyTorch's DDP
    imports `torch._dynamo` (about a second), and that import, made while a process
    group exists, keeps a reference to the group: `shutdown()` can then no longer
    free it, gloo's threads outlive it into the interpreter's exit, and tearing them
    down there can abort the process ("terminate called without an active
    exception", SIGABRT). So it is imported here, before the group exists.
    """
    import torch.distributed as dist

    check_worker(worker)
    if timeout_s <= 0:
        raise UsageError(f"the distributed timeout must be above 0 seconds, not {timeout_s}")
    backend = backend_for(device)
    if dist.is_initialized():
        raise UsageError("this process has already joined a distributed job")
    if ddp:
        import torch._dynamo  # noqa: F401  (before the group: see the docstring)
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
