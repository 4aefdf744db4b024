"""Speed on a GPU: the default runs, timed with CUDA events after a warm-up.

    make bench-gpu                      # every row; under 5 minutes on one H200
    python bench/gpu.py --out FILE      # also write the rows as JSON

Per default run (the settings `groundup train` uses, on the GPU):
  - seconds per epoch, from CUDA events recorded at the edges of each epoch (the
    GPU's own clock: what the kernels took, not when Python got round to asking);
  - training time to the accuracy goal, summed over the epochs until validation
    accuracy first reaches it;
  - the share of an epoch spent in GPU kernels, from torch.profiler: near 100% when
    the GPU is kept busy, low when it waits for Python between small kernels;
  - for two fixed settings, Learner.fit ÷ a hand-written loop on the same GPU,
    timed in turn (A B B A ...), the median of the per-pair ratios.

Without a CUDA GPU the script says so and exits 0: nothing here can be measured on
a CPU (`make bench` measures the CPU).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from groundup.learn.widths import cpu_model  # one home: it also keys the width-trap cache

# (name, data, digits, model, accuracy goal): the default runs of docs/ten-digits.md and
# the article's pair; the goals are those of the time-to-accuracy table
RUNS: list[tuple[str, str, Any, str, float | None]] = [
    ("sample 2-vs-9 linear", "sample", (2, 9), "linear", None),
    ("sample 2-vs-9 net", "sample", (2, 9), "net", None),
    ("sample ten digits net", "sample", tuple(range(10)), "net", 0.985),
    ("sample ten digits cnn", "sample", tuple(range(10)), "cnn", 0.990),
    ("fashion-mnist net", "fashion-mnist", tuple(range(10)), "net", 0.900),
    ("fashion-mnist cnn", "fashion-mnist", tuple(range(10)), "cnn", 0.925),
]




class EpochClock:
    """A Learner callback: a CUDA event at the start and at the end of each epoch's
    training and validation (after_validate: before the epoch's one read back)."""

    def before_epoch(self, learn: Any) -> None:
        import torch

        self.start = torch.cuda.Event(enable_timing=True)
        self.start.record()

    def after_validate(self, learn: Any) -> None:
        import torch

        end = torch.cuda.Event(enable_timing=True)
        end.record()
        self.pairs.append((self.start, end))

    def before_fit(self, learn: Any) -> None:
        self.pairs: list[tuple[Any, Any]] = []

    def seconds(self) -> list[float]:
        import torch

        torch.cuda.synchronize()
        return [a.elapsed_time(b) / 1000 for a, b in self.pairs]


def learner_for(name: str, data: str, digits: Any, model: str, sets: dict) -> Any:
    """A fresh run (a TrainedRun) with the defaults of `groundup train`, on the GPU."""
    import torch

    from groundup.data.tensors import DataLoaders, load_data
    from groundup.runs.config import TrainConfig
    from groundup.runs.training import make_run

    if (data, digits) not in sets:
        dls = load_data(data, digits)
        sets[(data, digits)] = (dls.train.dataset.to("cuda"), dls.valid.dataset.to("cuda"))
    train, valid = sets[(data, digits)]
    config = TrainConfig(data=data, digits=digits, model=model, device="cuda")
    dls = DataLoaders.from_datasets(train, valid, config.batch_size, config.seed, source=data)
    torch.manual_seed(0)
    return make_run(config, dls=dls)


def kernel_share(learn: Any) -> float:
    """The share of one epoch's GPU time spent inside kernels (torch.profiler)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        learn.fit(1)
        torch.cuda.synchronize()
    wall_us = (time.perf_counter() - start) * 1e6
    kernel_us = 0.0
    for event in prof.events():
        if str(getattr(event, "device_type", "")).endswith("CUDA"):
            kernel_us += getattr(event, "self_device_time_total", 0.0) or 0.0
    return kernel_us / wall_us


def default_run(name: str, data: str, digits: Any, model: str, goal: float | None, sets: dict):
    import torch

    warm = learner_for(name, data, digits, model, sets)
    warm.learner.fit(1, warm.config.lr)  # CUDA context, cuBLAS/cuDNN handles, kernel loading
    torch.cuda.synchronize()
    run = learner_for(name, data, digits, model, sets)
    learn = run.learner
    clock = EpochClock()
    learn.cbs.append(clock)
    run.fit()
    seconds = clock.seconds()
    accs = [row["accuracy"] for row in learn.history]
    to_goal = None
    if goal is not None:
        reached = [i for i, a in enumerate(accs) if a >= goal]
        to_goal = sum(seconds[: reached[0] + 1]) if reached else None
    share = kernel_share(learn)
    return {
        "name": name,
        "epochs": len(seconds),
        "s_per_epoch": statistics.median(seconds),
        "train_s": sum(seconds),
        "accuracy": accs[-1],
        "goal": goal,
        "s_to_goal": to_goal,
        "kernel_share": share,
    }


def hand_loop(
    model: Any,
    train: Any,
    valid: Any,
    loss_func: Callable,
    lr: float,
    epochs: int,
    seed: int = 0,
    bs: int = 256,
) -> None:
    """The minimal loop a careful user writes for the GPU: data already there, the
    permutation drawn there (the same shuffles as groundup's DataLoader), SGD by hand,
    and validation accuracy summed on the device and read once per epoch."""
    import torch

    from groundup.data.tensors import _epoch_seed
    from groundup.learn.losses import batch_accuracy

    x, y = train.x, train.y
    params = list(model.parameters())
    for epoch in range(epochs):
        gen = torch.Generator("cuda").manual_seed(_epoch_seed(seed, epoch))
        perm = torch.randperm(len(x), generator=gen, device="cuda")
        for i in range(0, len(x), bs):
            idx = perm[i : i + bs]
            loss_func(model(x.index_select(0, idx)), y.index_select(0, idx)).backward()
            with torch.no_grad():
                for p in params:
                    p.sub_(p.grad, alpha=lr)
                    p.grad = None
        total = torch.zeros((), device="cuda")
        with torch.no_grad():
            for i in range(0, len(valid.x), bs):
                xb, yb = valid.x[i : i + bs], valid.y[i : i + bs]
                total += batch_accuracy(model(xb), yb) * len(xb)
        float(total)  # the one read per epoch


def learner_vs_hand(
    name: str,
    data: str,
    digits: Any,
    make_model: Callable,
    loss: Callable,
    lr: float,
    epochs: int,
    reps: int,
    sets: dict,
) -> dict[str, Any]:
    """Learner.fit ÷ the hand loop, timed in turn with CUDA events."""
    import torch

    from groundup.data.tensors import DataLoaders, load_data
    from groundup.learn.learner import Learner
    from groundup.learn.losses import batch_accuracy
    from groundup.learn.optim import BasicOptim

    if (data, digits) not in sets:
        dls = load_data(data, digits)
        sets[(data, digits)] = (dls.train.dataset.to("cuda"), dls.valid.dataset.to("cuda"))
    train, valid = sets[(data, digits)]

    def fresh() -> Any:
        torch.manual_seed(0)
        return make_model().to("cuda")

    def ours(model: Any) -> None:
        dls = DataLoaders.from_datasets(train, valid, 256, 0)
        Learner(dls, model, BasicOptim, loss, batch_accuracy, device="cuda").fit(epochs, lr)

    def theirs(model: Any) -> None:
        hand_loop(model, train, valid, loss, lr, epochs)

    times: dict[str, list[float]] = {"learner": [], "hand": []}
    sides = [("learner", ours), ("hand", theirs)]
    for rnd in range(1 + reps):  # round 0 warms up
        for side, fn in sides if rnd % 2 == 0 else sides[::-1]:
            model = fresh()
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(model)
            end.record()
            torch.cuda.synchronize()
            if rnd:
                times[side].append(start.elapsed_time(end) / 1000)
    ratios = [a / b for a, b in zip(times["learner"], times["hand"], strict=True)]
    return {
        "name": f"Learner.fit ÷ hand loop on the GPU: {name}",
        "ratio": statistics.median(ratios),
        "spread": [min(ratios), max(ratios)],
        "learner_s": statistics.median(times["learner"]),
        "hand_s": statistics.median(times["hand"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(
            f"bench-gpu: no CUDA GPU here (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda or 'none'}; CPU {cpu_model()}), so there is "
            "nothing to measure. Run `make bench-gpu` on a machine with an NVIDIA GPU; "
            "`make bench` measures the CPU."
        )
        return 0
    from groundup.learn.losses import cross_entropy, mnist_loss
    from groundup.learn.models import linear_model, mlp

    machine = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu": cpu_model(),
    }
    print("bench-gpu: " + ", ".join(f"{k} {v}" for k, v in machine.items()), flush=True)
    sets: dict = {}
    rows: list[dict[str, Any]] = []
    failed = 0
    began = time.perf_counter()
    jobs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        (name, lambda r=(name, data, digits, model, goal): default_run(*r, sets))
        for name, data, digits, model, goal in RUNS
    ]
    jobs += [
        (
            "loop sample linear",
            lambda: learner_vs_hand(
                "sample 2-vs-9, linear, SGD lr 1, 20 epochs",
                "sample",
                (2, 9),
                linear_model,
                mnist_loss,
                1.0,
                20,
                5,
                sets,
            ),
        ),
        (
            "loop fashion mlp",
            lambda: learner_vs_hand(
                "fashion-mnist, MLP 784-128-10, SGD lr 0.1, 2 epochs",
                "fashion-mnist",
                tuple(range(10)),
                lambda: mlp((128,), n_out=10),
                cross_entropy,
                0.1,
                2,
                5,
                sets,
            ),
        ),
    ]
    for name, job in jobs:
        try:
            row = job()
        except Exception as err:  # one row's failure is reported, the others still run
            failed += 1
            row = {"name": name, "error": f"{type(err).__name__}: {err}"[:300]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"bench-gpu: {len(rows)} rows in {time.perf_counter() - began:.0f} s, {failed} failed")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
