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
`shard` wraps its loaders (`groundup.runs.training.make_run` attaches both).

    workers   joining a job: `Worker`, `worker_from_env`, `init_distributed`,
              `shutdown`; the backend, the timeouts, and lost workers as one-line errors
    parallel  the loop's side: `ShardedLoader` and `shard`, the `DataParallel` callback,
              `all_reduce_gradients`, `sum_across_workers`, `wrap_ddp`

Every public name of both is here too: `from groundup.distributed import Worker`.
"""

from groundup.distributed.parallel import (
    DataParallel,
    ShardedLoader,
    all_reduce_gradients,
    broadcast_parameters,
    shard,
    sum_across_workers,
    wrap_ddp,
)
from groundup.distributed.workers import (
    DEFAULT_TIMEOUT_S,
    ENV_VARS,
    DistributedError,
    Worker,
    backend_for,
    check_worker,
    init_distributed,
    is_peer_failure,
    peer_failures_reported,
    shutdown,
    sigterm_as_error,
    worker_device,
    worker_from_env,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ENV_VARS",
    "DataParallel",
    "DistributedError",
    "ShardedLoader",
    "Worker",
    "all_reduce_gradients",
    "backend_for",
    "broadcast_parameters",
    "check_worker",
    "init_distributed",
    "is_peer_failure",
    "peer_failures_reported",
    "shard",
    "shutdown",
    "sigterm_as_error",
    "sum_across_workers",
    "worker_device",
    "worker_from_env",
    "wrap_ddp",
]
