"""scikit-learn's `MLPClassifier` against ours: the time each takes to reach the same
test accuracy on Fashion-MNIST.

Both train an MLP 784-128-10 with ReLU and Adam (lr 1e-3, betas 0.9/0.999), batch 200
(scikit-learn's default), on the 60,000 training images as float32, and check the
accuracy on the 10,000 test images after every epoch; the clock stops at the first
epoch that reaches `TARGET_ACCURACY`, and includes that checking on both sides.
scikit-learn keeps its default L2 penalty (alpha 1e-4) and Glorot initialisation; ours
uses no penalty and Kaiming initialisation. Each side runs `reps` times, in turn.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import torch

from groundup.data.tensors import DataLoaders
from groundup.learn.callbacks import TargetAccuracy
from groundup.learn.learner import Learner
from groundup.learn.losses import batch_accuracy, cross_entropy
from groundup.learn.models import mlp
from groundup.learn.optim import Adam
from run import interleave, median, pair_ratio

TARGET_ACCURACY = 0.85
MAX_EPOCHS = 10


def ours_to_target(train: Any, valid: Any, target: float, max_epochs: int) -> tuple[int, float]:
    """Train until the validation accuracy reaches `target`: (epochs, accuracy)."""
    dls = DataLoaders.from_datasets(train, valid, batch_size=200, seed=0)
    torch.manual_seed(0)
    learn = Learner(
        dls,
        mlp((128,), n_out=10),
        opt_func=Adam,
        loss_func=cross_entropy,
        metrics=batch_accuracy,
        cbs=[TargetAccuracy(target)],
    )
    learn.fit(max_epochs, 1e-3)
    return len(learn.history), learn.history[-1]["accuracy"]


def sklearn_to_target(train: Any, valid: Any, target: float, max_epochs: int) -> tuple[int, float]:
    """The same with `MLPClassifier.partial_fit`, one epoch per call."""
    from sklearn.neural_network import MLPClassifier

    x, y = train.x.numpy(), train.y.numpy()
    xv, yv = valid.x.numpy(), valid.y.numpy()
    clf = MLPClassifier(hidden_layer_sizes=(128,), solver="adam", batch_size=200, random_state=0)
    classes = sorted(set(y.tolist()))
    acc = 0.0
    for epoch in range(1, max_epochs + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(x, y, classes=classes)
        acc = float((clf.predict(xv) == yv).mean())
        if acc >= target:
            return epoch, acc
    return max_epochs, acc


def run(ctx: Any) -> list[dict[str, Any]]:
    source = "sample" if ctx.smoke else "fashion-mnist"
    train, valid = ctx.data(source, "all")
    target = 0.5 if ctx.smoke else TARGET_ACCURACY
    max_epochs = 2 if ctx.smoke else MAX_EPOCHS
    got: dict[str, tuple[int, float]] = {}

    def timed(name: str, fn: Any) -> Any:
        def go(_: Any) -> None:
            got[name] = fn(train, valid, target, max_epochs)

        return go

    fns = {"ours": timed("ours", ours_to_target), "sklearn": timed("sklearn", sklearn_to_target)}
    reps = ctx.reps(2)
    start = time.perf_counter()
    times = interleave(fns, reps, warmup=0)
    ratio, spread = pair_ratio(times["sklearn"], times["ours"])
    reached = {k: acc >= target for k, (_, acc) in got.items()}
    note = "; ".join(
        f"{k}: {e} epochs, accuracy {acc:.4f}" + ("" if reached[k] else " (did NOT reach it)")
        for k, (e, acc) in got.items()
    )
    return [
        ctx.row(
            f"scikit-learn MLPClassifier ÷ ours: time to {target:.0%} test accuracy, {source}, "
            "MLP 784-128-10, Adam",
            ratio,
            ours_s=median(times["ours"]),
            base_s=median(times["sklearn"]),
            spread=spread,
            reps=reps,
            note=note + f" ({time.perf_counter() - start:.0f} s in all)",
        )
    ]
