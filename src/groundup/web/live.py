"""The live view: what the page sees of a run while it trains.

`LiveView` is a Learner callback. In the training thread, after each batch, it

  - copies the weights, so that requests read a whole model and never wait for
    training (`run()` gives them as the same `Run` the command line predicts with);
  - publishes the batch losses, at most `BATCH_EVENTS_PER_SECOND` times a second,
    with fresh pictures of the first layer's weights and their histogram;
  - waits at the job's `Gate`: the delay between batches that lets the eye follow,
    or a pause, or a step.

When a batch is stepped, or the delay is long (`SLOW_DELAY`), it also publishes each
of the steps predict, loss, gradient and step as it happens, with a short pause
after each so that the page can light them one by one.

A learning rate set by hand (`set_lr`) holds from the next batch to the end of the
run. Under the one-cycle schedule this switches the schedule off from then on:
the schedule sets the rate before each batch, and the hand-set rate is put back
after it, so the schedule no longer moves it. Reset brings the schedule back.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from groundup.web.events import Hub, Throttle

if TYPE_CHECKING:
    import numpy as np
    import torch

    from groundup.learn.learner import Learner
    from groundup.runs.saved import Run
    from groundup.runs.training import TrainedRun
    from groundup.web.gate import Gate

BATCH_EVENTS_PER_SECOND = 10  # more would flood a browser; the eye cannot follow anyway
SLOW_DELAY = 0.4  # seconds per batch from which each step is shown as it happens
MAX_TILES = 32  # weight images shown for a layer with many units
# The models whose first layer is a (784, k) matrix, drawn as k 28×28 images: the
# article's two. The page offers these of the library's models.
DRAWN_MODELS = ("linear", "net")


class LiveView:
    """The Learner callback that shows a run on the page, and pauses or slows it.

    It is also the page's record of the run: every batch loss (`points`), the latest
    weight pictures, and the weights after the last finished batch (`params`) and
    as init drew them (`start_params`). Requests read these under `_lock`.
    """

    def __init__(self, hub: Hub, gate: Gate) -> None:
        self.hub, self.gate = hub, gate
        self.throttle = Throttle(BATCH_EVENTS_PER_SECOND)
        self._lock = threading.Lock()  # guards the record below: read by requests
        self.points: list[list[float]] = []  # every batch loss of this run: [x, loss]
        self.pictures: dict[str, Any] = {}  # the latest weight pictures, as sent
        self.params: dict[str, torch.Tensor] = {}  # weights after the last finished batch
        self.start_params: dict[str, torch.Tensor] = {}  # ... and as init drew them
        self.lr_by_hand: float | None = None  # a rate set on the page: the schedule's is off
        self._trained: TrainedRun | None = None
        self._run: Run | None = None  # `params` as a Run, built when first asked for
        self._pending: list[list[float]] = []  # batch losses not yet sent: [x, loss]
        self._batch_start = 0.0
        self._slow = False  # show each step as it happens (a stepped batch, or a long delay)
        self._phase_wait = 0.0

    def begin(self, trained: TrainedRun) -> None:
        """Show a new run, not trained yet: the weights init drew are its start."""
        self._trained = trained
        self._keep_weights(trained.learner)
        with self._lock:
            self.start_params = dict(trained.init_state or self.params)
        self._draw_weights()

    # -- read by requests ------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"points": list(self.points), **self.pictures}

    def run(self) -> Run:
        """The weights after the last finished batch, as the `Run` the CLI predicts with.

        Rebuilt only when they changed. A new model each time, never one the training
        thread writes to, so predictions need no lock of their own.
        """
        from groundup.learn.models import build_model
        from groundup.runs.saved import Run

        with self._lock:
            if self._run is not None:
                return self._run
            params = self.params
        assert self._trained is not None
        config, spec = self._trained.config, self._trained.spec
        # zeros init draws no random numbers, so it cannot disturb a seeded run
        model = build_model(replace(spec, init="zeros"))
        model.load_state_dict(params)
        run = Run(path=None, model=model, spec=spec, meta={"digits": list(config.digits)})
        with self._lock:
            if self.params is params:
                self._run = run
        return run

    def set_lr(self, lr: float) -> None:
        """A learning rate set by hand: now, and for every batch after (see the module)."""
        with self._lock:
            self.lr_by_hand = lr
        learn = self._trained.learner if self._trained else None
        if learn is not None and learn.opt is not None:
            learn.set_lr(lr)

    # -- the callback, in the training thread ------------------------------------------------

    def before_fit(self, learn: Learner) -> None:
        self._hand_lr(learn)

    def before_batch(self, learn: Learner) -> None:
        self._batch_start = time.monotonic()
        stepping, delay = self.gate.stepping, self.gate.delay
        self._slow = stepping or delay >= SLOW_DELAY
        self._phase_wait = self.gate.phase_pause if stepping else delay / 4
        self._hand_lr(learn)  # after the schedule's callback, which runs first

    def after_pred(self, learn: Learner) -> None:
        if self._slow:
            n = len(learn.preds)
            self._phase("predict", f"{n} images in, {n} predictions out")

    def after_loss(self, learn: Learner) -> None:
        if self._slow:
            loss = learn.loss.item()
            self._phase("loss", f"loss = {loss:.4f}", loss=loss)

    def after_backward(self, learn: Learner) -> None:
        if not self._slow:
            return
        from groundup.web.pictures import tiles_png

        grads = [p.grad for p in learn.model.parameters() if p.grad is not None]
        norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
        extra: dict[str, Any] = {"norm": norm}
        first = first_layer(grads)
        if first is not None:
            # minus the gradient: the direction the step is about to move each weight
            extra["image"] = tiles_png(-first.numpy(), MAX_TILES)[0]
        self._phase("gradient", f"size of the gradient = {norm:.3g}", **extra)

    def after_step(self, learn: Learner) -> None:
        if self._slow:
            assert learn.opt is not None
            lr, kind = learn.opt.lr, type(learn.opt).__name__
            how = {"BasicOptim": "gradient", "Momentum": "velocity (a running sum of gradients)"}
            if kind in how:
                self._phase("step", f"weights -= {lr:g} × {how[kind]}", wait=False)
            else:
                self._phase("step", f"{kind} step with learning rate {lr:g}", wait=False)

    def after_batch(self, learn: Learner) -> None:
        loss = learn.loss.item()  # the page plots every batch, so it reads every loss
        if not math.isfinite(loss):
            # the Learner's guard raises at the end of this epoch: stop here, unplotted
            learn.stop = True
            return
        x = learn.epoch_count + (learn.batch + 1) / len(learn.dls.train)
        self._pending.append([round(x, 4), round(loss, 5)])
        self._keep_weights(learn)
        if self._slow or self.throttle.ready():
            self._flush(learn)
        if self.gate.wait(self._batch_start):
            learn.stop = True
            learn.stop_reason = "stopped from the page"

    def after_epoch(self, learn: Learner) -> None:
        self._flush(learn)
        self.hub.publish({"type": "epoch", "row": learn.history[-1], "epochs": learn.epochs})

    def after_fit(self, learn: Learner) -> None:
        self._hand_lr(learn)  # the schedule put its own rate back at the end
        self._keep_weights(learn)
        self._flush(learn)

    # -- inside ------------------------------------------------------------------------------

    def _hand_lr(self, learn: Learner) -> None:
        lr = self.lr_by_hand
        if lr is not None and learn.opt is not None:
            learn.opt.lr = lr

    def _flush(self, learn: Learner) -> None:
        """Publish the batch losses gathered so far, with fresh weight pictures."""
        if not self._pending:
            return
        pictures = self._draw_weights()
        event = {
            "type": "batch",
            "epoch": learn.epoch_count,
            "batch": learn.batch + 1,
            "batches": len(learn.dls.train),
            "points": self._pending,
            "lr": learn.lr,
            **pictures,
        }
        with self._lock:
            self.points.extend(self._pending)
        self._pending = []
        self.hub.publish(event)

    def _phase(self, step: str, detail: str, wait: bool = True, **extra: Any) -> None:
        self.hub.publish({"type": "phase", "step": step, "detail": detail, **extra})
        if wait:
            self.gate.hold(self._phase_wait)

    def _keep_weights(self, learn: Learner) -> None:
        """Copy the weights, so requests read a whole model while training goes on."""
        params = {k: v.detach().cpu().clone() for k, v in learn.model.state_dict().items()}
        with self._lock:
            self.params, self._run = params, None

    def _draw_weights(self) -> dict[str, Any]:
        """The first layer's weights as pictures, and their histogram against the start."""
        from groundup.web.pictures import histogram, tiles_png

        with self._lock:
            params, start = self.params, self.start_params
        now_w = first_layer(list(params.values()))
        start_w = first_layer(list(start.values()))
        if now_w is None:
            return {}
        image, tiles, scale = tiles_png(now_w.numpy(), MAX_TILES)
        pictures = {
            "weights": image,
            "tiles": tiles,
            "units": int(now_w.shape[1]),
            "scale": scale,
            "hist": histogram(now_w.numpy(), (start_w if start_w is not None else now_w).numpy()),
        }
        with self._lock:
            self.pictures = pictures
        return pictures


def contributions(run: Run, x: torch.Tensor, column: int) -> tuple[np.ndarray, float] | None:
    """For the linear model: weight × pixel for each pixel of one image x (784,), towards
    output `column`, and the bias. The score is their sum plus the bias. None for a
    net, whose hidden layer mixes the pixels before any score exists."""
    if run.spec.name != "linear":
        return None
    w = run.model.weight.detach()[:, column]  # (784,)
    b = float(run.model.bias.detach()[column])
    return (w * x).numpy(), b  # (784,)


def first_layer(tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """The first (784, k) matrix: the weights (or gradients) that touch the pixels."""
    for t in tensors:
        if t.ndim == 2 and t.shape[0] == 784:
            return t.detach().cpu()
    return None
