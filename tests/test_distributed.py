"""Data-parallel training: the environment, the backend, exact equivalence with one
process, rank-0-only output, and clean failures.

The multi-process tests start their own workers on 127.0.0.1, on a free port: two
through `torch.multiprocessing.spawn` (the library), and two or more through
`torchrun` (the command line). Every wait has a short timeout, so a broken test
fails instead of hanging.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from groundup import distributed
from groundup.distributed import DistributedError, Worker
from groundup.errors import UsageError
from groundup.runs.config import TrainConfig
from helpers_net import free_port
from helpers_runs import save_model

# Each scenario trains with 2 workers and with 1 process, and must end with the same
# weights. 800 training and 200 validation images (sample, 2 vs 9):
#   batch 256: 256, 256, 256, 32: every share even (128/128, ..., 16/16)
#   batch  63: 12 x 63 and a last 44: training shares 31/32; validation 31/32 and 5/6
#   batch 799: 799 then 1: on the last step worker 0's share is empty
SCENARIOS: dict[str, dict[str, Any]] = {
    "linear-256": {"model": "linear", "batch_size": 256, "epochs": 1},
    "net-256": {"model": "net", "batch_size": 256, "epochs": 1},
    "linear-63-uneven": {"model": "linear", "batch_size": 63, "epochs": 2},
    "net-799-empty-share": {"model": "net", "batch_size": 799, "epochs": 1},
}

# float32 sums taken in another order differ in the last bits, not more
ATOL = 1e-5


def plain_env() -> dict[str, str]:
    """This environment without any torchrun variable (pytest may itself run under one)."""
    env = {k: v for k, v in os.environ.items() if k not in distributed.ENV_VARS}
    env["OMP_NUM_THREADS"] = "1"
    return env


def torchrun(n: int, port: int) -> list[str]:
    """torchrun, as `python -m torch.distributed.run` (the same program, found by this Python)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(n),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
    ]


def weights(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# -- the environment, the backend, the device -----------------------------------------------


def test_worker_from_env_is_none_without_torchrun() -> None:
    assert distributed.worker_from_env({}) is None
    assert distributed.worker_from_env({"HOME": "/root"}) is None


def test_worker_from_env_reads_what_torchrun_sets() -> None:
    env = {
        "RANK": "3",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "10.0.0.5",
        "MASTER_PORT": "29600",
    }
    worker = distributed.worker_from_env(env)
    assert worker == Worker(
        rank=3, world_size=4, local_rank=1, master_addr="10.0.0.5", master_port=29600
    )
    assert not worker.is_main
    assert str(worker) == "worker 3 of 4"
    assert distributed.worker_from_env({"RANK": "0", "WORLD_SIZE": "2"}).is_main


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"RANK": "0"}, "WORLD_SIZE must be set"),
        ({"MASTER_ADDR": "h"}, "RANK and WORLD_SIZE must be set"),
        ({"RANK": "one", "WORLD_SIZE": "2"}, "RANK must be a whole number, not 'one'"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "rank 2 is not within the world size 2"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, "world size must be at least 1"),
        ({"RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "70000"}, "must lie in 1-65535"),
    ],
)
def test_worker_from_env_rejects_bad_values(env: dict[str, str], words: str) -> None:
    with pytest.raises(UsageError, match=re.escape(words)):
        distributed.worker_from_env(env)


def test_backend_is_picked_by_device() -> None:
    assert distributed.backend_for("cpu") == "gloo"
    assert distributed.backend_for("cuda") == "nccl"
    assert distributed.backend_for(torch.device("cuda", 1)) == "nccl"
    with pytest.raises(UsageError, match="not on mps"):
        distributed.backend_for("mps")


def test_worker_device() -> None:
    assert distributed.worker_device("cpu", 3) == "cpu"
    assert distributed.worker_device("cuda:1", 0) == "cuda:1"  # the user's choice is kept
    if not torch.cuda.is_available():
        assert distributed.worker_device("auto", 1) == "cpu"
        with pytest.raises(UsageError, match="no CUDA GPU"):
            distributed.worker_device("cuda", 0)


def test_init_refuses_a_bad_timeout() -> None:
    with pytest.raises(UsageError, match="timeout must be above 0"):
        distributed.init_distributed(Worker(0, 2), "cpu", timeout_s=0)


def test_peer_failures_become_one_line() -> None:
    gloo = RuntimeError(
        "[../third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer "
        "[127.0.0.1]:35751. This is typically caused by a remote worker crashing. GLHF!"
    )
    assert distributed.is_peer_failure(gloo)
    bug = RuntimeError("mat1 and mat2 shapes cannot be multiplied")
    assert not distributed.is_peer_failure(bug)
    with pytest.raises(DistributedError) as info:
        with distributed.peer_failures_reported(Worker(0, 2)):
            raise gloo
    assert str(info.value) == (
        "worker 0 of 2: another worker stopped, stalled or became unreachable during training "
        "(Connection closed by peer [127.0.0.1]:35751); nothing was saved; the output of the "
        "worker that failed first says why"
    )
    # a bug of ours keeps its own exception and traceback
    with pytest.raises(RuntimeError, match="shapes"):
        with distributed.peer_failures_reported(Worker(0, 2)):
            raise bug


def test_sigterm_becomes_an_error_then_the_old_handler_returns() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(DistributedError, match="worker 0 of 2: stopped by torchrun"):
        with distributed.sigterm_as_error(Worker(0, 2)):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this at once
    assert signal.getsignal(signal.SIGTERM) is before


def test_wrap_ddp_refuses_our_own_models() -> None:
    from groundup.learn.models import simple_net

    with pytest.raises(UsageError, match="torch.nn.Module"):
        distributed.wrap_ddp(simple_net())


# -- two workers through the library (torch.multiprocessing) --------------------------------


def _spawned_worker(rank: int, port: int, out_dir: str) -> None:
    """One of two workers: the hand-worked all-reduce cases, then every scenario."""
    from safetensors.torch import save_file

    from groundup.distributed import all_reduce_gradients
    from groundup.runs.training import make_run

    torch.set_num_threads(1)
    before = _thread_names()
    distributed.init_distributed(
        Worker(rank, 2, 0, "127.0.0.1", port), "cpu", timeout_s=60, ddp=True
    )
    results: dict[str, Any] = {}
    try:
        # worker 0: g_0 = [1, 4] from 1 row; worker 1: g_1 = [2, -1] from 2 rows
        p = torch.zeros(2, requires_grad=True)
        p.grad = torch.tensor([1.0, 4.0]) if rank == 0 else torch.tensor([2.0, -1.0])
        results["rows"] = all_reduce_gradients([p], 1 if rank == 0 else 2)
        results["weighted"] = p.grad.tolist()
        # worker 0 has no rows and no gradient; worker 1 has g = [3] from 5 rows
        q = torch.zeros(1, requires_grad=True)
        if rank == 1:
            q.grad = torch.tensor([3.0])
        results["empty"] = [all_reduce_gradients([q], 0 if rank == 0 else 5), q.grad.tolist()]
        results["sums"] = distributed.sum_across_workers([rank + 1.0, 10.0 * rank])
        results["ddp"] = _ddp_gradients(rank)

        for name, settings in SCENARIOS.items():
            # one thread each, whatever OMP_NUM_THREADS says: two workers share two cores,
            # and a second OpenMP thread would be counted as left behind below
            config = TrainConfig(device="cpu", threads=1, **settings)
            run = make_run(config, rank=rank, world_size=2).fit()
            save_file(weights(run.model), f"{out_dir}/{name}-{rank}.safetensors")
            results[name] = run.history
    finally:
        distributed.shutdown()
    # the threads this worker still runs beyond those it began with: none may be gloo's,
    # or they would be torn down while Python exits (an intermittent SIGABRT)
    results["threads_left"] = _threads_left(before)
    Path(out_dir, f"results-{rank}.json").write_text(json.dumps(results))


def _threads_left(before: list[str], wait_s: float = 5.0) -> list[str]:
    """The threads this worker runs beyond those it began with, once the ones that are
    ending have ended: a store's thread exits a moment after it is told to, and only one
    still there after `wait_s` would meet the interpreter's exit."""
    deadline = time.monotonic() + wait_s
    while True:
        after = _thread_names()
        left = sorted({n for n in after if after.count(n) > before.count(n)})
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _thread_names() -> list[str]:
    """The names of this process's threads (Linux: /proc/self/task/*/comm)."""
    names = []
    for task in Path("/proc/self/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:  # a thread that ended meanwhile
            pass
    return names


def _toy_problem() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """A torch.nn.Linear(4, 1), the same on every worker, and 3 rows of data."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 4, generator=gen), torch.randn(3, 1, generator=gen)  # (3, 4), (3, 1)
    torch.manual_seed(1)
    return torch.nn.Linear(4, 1), x, y


def _gradient(model: Any, x: torch.Tensor, y: torch.Tensor, scale: float = 1.0) -> list[float]:
    """Backward on the mean squared error over the rows given; the gradients, flattened."""
    model.zero_grad()
    (((model(x) - y) ** 2).mean() * scale).backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()]).tolist()


def _ddp_gradients(rank: int) -> dict[str, list[float]]:
    """Worker 0 holds row 0, worker 1 rows 1-2: the gradient each way of combining."""
    from groundup.distributed import all_reduce_gradients

    net, x, y = _toy_problem()
    rows = slice(0, 1) if rank == 0 else slice(1, 3)
    n_rows = 1 if rank == 0 else 2
    ddp = distributed.wrap_ddp(net)
    plain = _gradient(ddp, x[rows], y[rows])  # DDP: (g_0 + g_1) / 2
    scaled = _gradient(ddp, x[rows], y[rows], scale=n_rows * 2 / 3)  # loss x n_r W / N
    mine, _, _ = _toy_problem()
    _gradient(mine, x[rows], y[rows])
    all_reduce_gradients(list(mine.parameters()), n_rows)  # (1 g_0 + 2 g_1) / 3
    ours = torch.cat([p.grad.reshape(-1) for p in mine.parameters()]).tolist()
    return {"ddp": plain, "ddp_scaled": scaled, "ours": ours}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """Runs `_spawned_worker` in two processes once; returns their folder and results."""
    import torch.multiprocessing as mp

    out = tmp_path_factory.mktemp("two-workers")
    mp.spawn(_spawned_worker, args=(free_port(), str(out)), nprocs=2, join=True)
    return out, [json.loads((out / f"results-{r}.json").read_text()) for r in range(2)]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_workers_leave_no_gloo_thread_behind(two_workers: Any) -> None:
    """After `shutdown()` the process group is freed with its threads (gloo's run
    loops, rank 0's TCP store). DDP's first import of torch._dynamo, made while the
    group existed, used to keep it alive: its threads then met the interpreter's exit,
    and 1 full run in 3 ended with 'terminate called without an active exception'."""
    _, results = two_workers
    for res in results:
        assert res["threads_left"] == [], res["threads_left"]


def test_wrap_ddp_asks_for_init_with_ddp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch._dynamo", raising=False)
    with pytest.raises(UsageError, match=r"init_distributed\(\.\.\., ddp=True\)"):
        distributed.wrap_ddp(torch.nn.Linear(2, 1))


def test_all_reduce_gradients_weights_each_worker_by_its_rows(two_workers: Any) -> None:
    _, results = two_workers
    for res in results:
        assert res["rows"] == 3
        # (1 * [1, 4] + 2 * [2, -1]) / 3 = [5/3, 2/3]; a plain mean would give [1.5, 1.5]
        assert res["weighted"] == pytest.approx([5 / 3, 2 / 3], abs=1e-6)
        # an empty share adds nothing: the gradient is worker 1's own
        assert res["empty"] == [5, pytest.approx([3.0])]
        assert res["sums"] == [3.0, 10.0]


def test_ddp_takes_a_plain_mean_all_reduce_gradients_the_whole_batch(two_workers: Any) -> None:
    """With shares of 1 and 2 rows: DDP's plain mean of the workers' gradients is not
    the gradient of the 3 rows; `all_reduce_gradients`, or DDP with each loss scaled
    by n_r W / N, is."""
    _, results = two_workers
    net, x, y = _toy_problem()
    whole = torch.tensor(_gradient(net, x, y))  # the gradient one process computes
    mean_of_two = (
        torch.tensor(_gradient(net, x[:1], y[:1])) + torch.tensor(_gradient(net, x[1:], y[1:]))
    ) / 2
    assert float((whole - mean_of_two).abs().max()) > 0.05  # the two differ here
    for res in results:
        got = {k: torch.tensor(v) for k, v in res["ddp"].items()}
        torch.testing.assert_close(got["ddp"], mean_of_two, atol=1e-6, rtol=0)
        torch.testing.assert_close(got["ddp_scaled"], whole, atol=1e-6, rtol=0)
        torch.testing.assert_close(got["ours"], whole, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_two_workers_give_the_weights_of_one_process(two_workers: Any, name: str) -> None:
    """The issue's test: plain SGD, 2 workers at global batch 256 end an epoch with
    the weights of 1 process at batch 256; also with uneven and empty shares."""
    from safetensors.torch import load_file

    from groundup.runs.training import make_run

    out, results = two_workers
    run = make_run(TrainConfig(device="cpu", **SCENARIOS[name]))
    learn = run.learner
    start = weights(learn.model)
    run.fit()
    single = weights(learn.model)
    w0 = load_file(str(out / f"{name}-0.safetensors"))
    w1 = load_file(str(out / f"{name}-1.safetensors"))
    for key in single:
        # the same averaged gradient on the same weights: the two copies agree bit for bit
        assert torch.equal(w0[key], w1[key]), key
        torch.testing.assert_close(w0[key], single[key], atol=ATOL, rtol=0)
    # training moved the weights far more than the tolerance, so the agreement means something
    moved = max(float((single[k] - start[k]).abs().max()) for k in single)
    assert moved > 100 * ATOL
    # the printed metrics are those of the whole sets, on every worker
    for res in results:
        for dist_row, row in zip(res[name], learn.history, strict=True):
            for key in ("train_loss", "valid_loss", "accuracy"):
                assert dist_row[key] == pytest.approx(row[key], abs=2e-6), (key, dist_row, row)


# -- the command line under torchrun ----------------------------------------------------------


def test_torchrun_train_prints_and_saves_once_with_the_accuracy_of_one_process(
    tmp_path: Path,
) -> None:
    from groundup.runs.evaluate import evaluate_run
    from groundup.runs.saved import load_run
    from groundup.runs.training import train

    args = [
        "-m",
        "groundup",
        "train",
        "--model",
        "net",
        "--epochs",
        "3",
        "--out",
        "run",
        "--dist-timeout",
        "60",
    ]
    proc = subprocess.run(
        torchrun(2, free_port()) + args,
        cwd=tmp_path,
        env=plain_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    # rank 0 alone prints: one header, three epoch rows, one summary
    assert sum(line.startswith("data: ") for line in lines) == 1, proc.stdout
    assert "| 2 workers (gloo)" in lines[0]
    done = [line for line in lines if line.startswith("done: ")]
    assert len(done) == 1 and len(lines) == 1 + 1 + 3 + 1, proc.stdout
    printed = float(re.search(r"valid accuracy ([0-9.]+)", done[0]).group(1))
    # rank 0 alone writes: one run directory, nothing else
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    run = load_run(tmp_path / "run")
    assert run.meta["distributed"] == {"workers": 2, "backend": "gloo"}
    assert run.meta["final"]["accuracy"] == pytest.approx(printed, abs=5e-5)
    assert evaluate_run(run)["accuracy"] == pytest.approx(printed, abs=5e-5)
    # one process with the same settings: the same history and weights
    single = train(TrainConfig(model="net", epochs=3, device="cpu"))
    assert run.meta["final"]["accuracy"] == single.history[-1]["accuracy"]
    for key, value in weights(single.model).items():
        torch.testing.assert_close(run.model.state_dict()[key], value, atol=ATOL, rtol=0)


DYING_WORKER = """
import os, sys
from groundup.learn import learner
from groundup.cli import main

if os.environ["RANK"] == "1":  # worker 1 dies in the middle of epoch 2, without a word
    one_batch = learner.Learner._one_batch

    def dying(self, xb, yb):
        if self.epoch == 1 and self.batch == 1:
            os._exit(3)
        return one_batch(self, xb, yb)

    learner.Learner._one_batch = dying
sys.exit(main())
"""


def test_a_dying_worker_ends_the_run_with_one_clear_line(tmp_path: Path) -> None:
    from groundup.learn.models import ModelSpec, build_model
    from groundup.runs.saved import load_run

    out = tmp_path / "run"
    save_model(out, build_model(ModelSpec()))  # an earlier run
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    script = tmp_path / "dying.py"
    script.write_text(textwrap.dedent(DYING_WORKER))
    args = [
        str(script),
        "train",
        "--quiet",
        "--epochs",
        "4",
        "--out",
        str(out),
        "--dist-timeout",
        "10",
    ]
    proc = subprocess.run(
        torchrun(2, free_port()) + args,
        cwd=tmp_path,
        env=plain_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert proc.stdout == ""  # --quiet, and no worker printed progress
    ours = [line for line in proc.stderr.splitlines() if line.startswith("groundup: error:")]
    assert len(ours) == 1, proc.stderr[-3000:]
    assert ours[0].startswith("groundup: error: worker 0 of 2: ")
    # gloo's lost connection, or torchrun's SIGTERM, whichever reaches worker 0 first
    lost = "another worker stopped, stalled or became unreachable|stopped by torchrun"
    assert re.search(lost, ours[0]), ours[0]
    # the earlier run is untouched, and no half-written file lies beside it
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    load_run(out)


def test_a_worker_left_alone_times_out_with_a_clear_message(tmp_path: Path) -> None:
    """Worker 0 of 2, started by hand, waits for a worker 1 that never comes."""
    env = plain_env() | {
        "RANK": "0",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
    }
    cmd = [
        sys.executable,
        "-m",
        "groundup",
        "train",
        "--quiet",
        "--dist-timeout",
        "2",
        "--out",
        str(tmp_path / "run"),
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "groundup: error: worker 0 of 2: the workers did not all meet at 127.0.0.1:"
    ), proc.stderr[-3000:]
    assert "within 2 s (Timed out after" in last and "1/2 clients joined" in last
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("torch_says", "we_say"),
    [
        # a worker 1 that finds no worker 0 listening
        (
            "The client socket has timed out after 3000ms while trying to connect to "
            "(127.0.0.1, 29713).",
            "worker 1 of 2: the workers did not all meet at 10.0.0.1:29713",
        ),
        (
            "The server socket has failed to listen on any local network address. port: 29713, "
            "code: -98, name: EADDRINUSE, message: address already in use",
            "worker 1 of 2: cannot listen on 10.0.0.1:29713, the port is taken",
        ),
        ("something else", "worker 1 of 2: could not join the job at 10.0.0.1:29713: something"),
    ],
)
def test_rendezvous_messages(torch_says: str, we_say: str) -> None:
    message = distributed.workers._rendezvous_message(
        RuntimeError(torch_says), Worker(1, 2), "10.0.0.1:29713", 3.0
    )
    assert message.startswith(we_say)
