"""groundup's `Learner` against fastai 2.8.12's `Learner` on the same task. Target: 3x.

Same data tensors, same initial weights, batch size, learning rate, epochs and plain
SGD; both validate every epoch. fastai gets its data the way fastbook chapter 4 (and
the article) gives it: `DataLoader(list(zip(x, y)), bs=256, shuffle=True)`, and torch
`nn` layers holding our initial weights. Its progress bar and logging are off
(`with learn.no_bar(), learn.no_logging():`), so it is timed doing the same work. The hand-written
loop of bench/loop.py runs alongside, to place both against the floor.

fastai runs in a child process: importing it patches torch's tensor classes, which
must not touch the other benchmarks. It is optional (the `[bench]` extra plus
`pip install --no-deps fastai==2.8.12`, which `make bench` does); without it the rows
say so and the suite goes on.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

TARGET = 3.0  # fastai time / groundup time, at least
INSTALL = "pip install --no-deps -c constraints.txt fastai==2.8.12 (make bench does it)"


def _tasks(smoke: bool) -> list[dict[str, Any]]:
    if smoke:
        return [dict(key="linear", source="sample", digits=(2, 9), epochs=1, lr=1.0, reps=1)]
    return [
        dict(key="linear", source="sample", digits=(2, 9), epochs=20, lr=1.0, reps=7),
        dict(key="simple_net", source="sample", digits=(2, 9), epochs=40, lr=0.1, reps=5),
        dict(key="mlp", source="fashion-mnist", digits="all", epochs=1, lr=0.1, reps=3),
    ]


def run(ctx: Any) -> list[dict[str, Any]]:
    names = [_name(t) for t in _tasks(ctx.smoke)]
    if importlib.util.find_spec("fastai") is None:
        return [ctx.skip(n, f"fastai is not installed: {INSTALL}", TARGET, "min") for n in names]
    import torch

    cmd = [sys.executable, str(Path(__file__).resolve()), "--child"]
    cmd += ["--threads", str(torch.get_num_threads()), *(["--smoke"] if ctx.smoke else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the fastai child process failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _name(task: dict[str, Any]) -> str:
    model = {"linear": "linear", "simple_net": "simple_net", "mlp": "MLP 784-128-10"}
    what = "2-vs-9" if task["source"] == "sample" else "10 classes"
    return (
        f"fastai Learner ÷ groundup Learner: {task['source']} {what}, {model[task['key']]}, "
        f"SGD lr {task['lr']:g}, {task['epochs']} epochs"
    )


# -- the child process -----------------------------------------------------------------------


def _torch_twin(model: Any, key: str) -> Any:
    """The same model as torch `nn` layers, holding a copy of our initial weights."""
    import torch
    from torch import nn

    ours = model.layers if key != "linear" else [model]
    layers: list[nn.Module] = []
    for layer in ours:
        if hasattr(layer, "weight"):
            n_in, n_out = layer.weight.shape
            lin = nn.Linear(n_in, n_out)
            with torch.no_grad():
                lin.weight.copy_(layer.weight.T)  # ours is (in, out), torch's (out, in)
                lin.bias.copy_(layer.bias)
            layers.append(lin)
        else:
            layers.append(nn.ReLU())
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


def child(smoke: bool) -> list[dict[str, Any]]:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from groundup.data.tensors import DataLoaders
    from groundup.learn.losses import batch_accuracy, cross_entropy, mnist_loss
    from groundup.learn.models import linear_model, mlp, simple_net
    from loop import hand_fit, learner_fit
    from run import Context, interleave, median, pair_ratio

    ctx = Context(smoke=smoke, bench="fastai_vs")
    try:
        import fastai.callback.progress  # noqa: F401  (the usual bar; no_bar() turns it off)
        from fastai.data.core import DataLoaders as FastDataLoaders
        from fastai.data.load import DataLoader as FastDataLoader
        from fastai.learner import Learner as FastLearner
        from fastai.optimizer import SGD as FastSGD
    except ImportError as err:
        why = f"fastai does not import ({err}): {INSTALL}, plus the [bench] extra"
        return [ctx.skip(_name(t), why, TARGET, "min") for t in _tasks(smoke)]

    builders = {
        "linear": linear_model,
        "simple_net": simple_net,
        "mlp": lambda: mlp((128,), n_out=10),
    }
    rows = []
    for task in _tasks(smoke):
        train, valid = ctx.data(task["source"], task["digits"])
        loss_func = mnist_loss if task["source"] == "sample" else cross_entropy
        dls = DataLoaders.from_datasets(train, valid, batch_size=256, seed=0)
        fast_dls = FastDataLoaders(
            FastDataLoader(list(zip(train.x, train.y, strict=True)), bs=256, shuffle=True),
            FastDataLoader(list(zip(valid.x, valid.y, strict=True)), bs=256),
        )
        build, epochs, lr = builders[task["key"]], task["epochs"], task["lr"]

        def fresh(build: Any = build) -> Any:
            torch.manual_seed(0)
            return build()

        def run_fastai(
            model: Any, task: dict = task, fast_dls: Any = fast_dls, loss_func: Any = loss_func
        ) -> None:
            learn = FastLearner(
                fast_dls,
                _torch_twin(model, task["key"]),
                opt_func=FastSGD,
                loss_func=loss_func,
                metrics=batch_accuracy,
            )
            with learn.no_bar(), learn.no_logging():  # both are context managers
                learn.fit(task["epochs"], task["lr"])

        fns = {
            "groundup": lambda m, dls=dls, lf=loss_func, e=epochs, lr=lr: learner_fit(
                dls, m, lf, lr, e
            ),
            "fastai": run_fastai,
            "hand": lambda m, tr=train, va=valid, lf=loss_func, e=epochs, lr=lr: hand_fit(
                m, (tr.x, tr.y), (va.x, va.y), lf, lr, e
            ),
        }
        times = interleave(fns, task["reps"], setup=fresh, warmup=0 if smoke else 1)
        ratio, spread = pair_ratio(times["fastai"], times["groundup"])
        vs_hand, _ = pair_ratio(times["fastai"], times["hand"])
        ours_vs_hand, _ = pair_ratio(times["groundup"], times["hand"])
        rows.append(
            ctx.row(
                _name(task),
                ratio,
                target=TARGET,
                goal="min",
                ours_s=median(times["groundup"]),
                base_s=median(times["fastai"]),
                spread=spread,
                reps=task["reps"],
                note=f"fastai ÷ hand loop {vs_hand:.2f}×; groundup ÷ hand loop "
                f"{ours_vs_hand:.2f}×; fastai fed list(zip(x, y)) as in fastbook",
            )
        )
    return rows


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="the fastai comparison, as a child process")
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(json.dumps(child(args.smoke)))
