"""The training job behind the web page: one per server, run in a background thread.

The page drives it, and every change is published to all the pages watching::

    ready --start--> running --pause--> paused --resume--> running
      |                 |                  '--step--> one batch, then paused again
      '--step--> one batch, then paused
    running | paused --stop--> stopped      running --last epoch--> done
    anything --reset--> ready: the same settings and seed, so the same initial
                        weights and the same shuffles; pressing start replays the run

Only one run at a time: `start` while a run is running or paused raises
`JobConflict` (HTTP 409); stop it or reset it first. The learning rate and the
speed can change while it runs.

The training thread meets the job through `LiveView`, a Learner callback. After
each batch it copies the weights (so requests read a consistent model and never
wait for training), publishes at most `BATCH_EVENTS_PER_SECOND` updates, then
waits: the delay between batches that lets the eye follow, or a pause, or a
step. When a batch is stepped, or the delay is long, it also publishes each of
the steps predict, loss, gradient and step as it happens, with a short pause
after each so the page can light them one by one.

Events are JSON objects with a "type" (`events.Hub` sends them to every page):
  snapshot  everything, for a page that joins or a run that starts or resets
  state     the run's state changed (running, paused, done, ...)
  phase     one of the seven steps is happening now, with a value
  batch     the batch losses since the last update, the weights image and histogram
  epoch     one epoch finished: its row of the history (losses, accuracy)
  lr        the learning rate changed
  watchers  how many pages are watching
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from groundup.errors import DivergenceError, UsageError
from groundup.web.events import Hub, Throttle
from groundup.web.settings import Settings, number_setting, parse_settings

if TYPE_CHECKING:
    import torch

    from groundup.data import Dataset
    from groundup.learner import Learner
    from groundup.models import ModelSpec
    from groundup.sources import RawData

log = logging.getLogger("groundup.web")

BATCH_EVENTS_PER_SECOND = 10  # more would flood a browser; the eye cannot follow anyway
SLOW_DELAY = 0.4  # seconds per batch from which each step is shown as it happens
MAX_TILES = 32  # weight images shown for a layer with many units


# The states a run ends in; from them only Reset (or new settings) trains again.
ENDED = ("done", "stopped", "failed")


class JobConflict(UsageError):
    """The request does not fit the run's state (HTTP 409): e.g. start while one runs."""


# -- the callback inside the training thread -----------------------------------------------


class LiveView:
    """The Learner callback that shows a run on the page, and pauses or slows it."""

    def __init__(self, job: TrainingJob) -> None:
        self.job = job
        self.throttle = Throttle(BATCH_EVENTS_PER_SECOND)
        self.pending: list[list[float]] = []  # batch losses not yet sent: [x, loss]
        self.batch_start = 0.0
        self.slow = False  # show each step as it happens (a stepped batch, or a long delay)
        self.phase_wait = 0.0

    def before_fit(self, learn: Learner) -> None:
        self.job._before_fit(learn)

    def before_batch(self, learn: Learner) -> None:
        self.batch_start = time.monotonic()
        stepping, delay = self.job._stepping, self.job.delay
        self.slow = stepping or delay >= SLOW_DELAY
        self.phase_wait = self.job.phase_pause if stepping else delay / 4

    def after_pred(self, learn: Learner) -> None:
        if self.slow:
            n = len(learn.preds)
            self._phase("predict", f"{n} images in, {n} predictions out")

    def after_loss(self, learn: Learner) -> None:
        if self.slow:
            loss = learn.loss.item()
            self._phase("loss", f"loss = {loss:.4f}", loss=loss)

    def after_backward(self, learn: Learner) -> None:
        if not self.slow:
            return
        from groundup.web.pictures import tiles_png

        grads = [p.grad for p in learn.model.parameters() if p.grad is not None]
        norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
        extra: dict[str, Any] = {"norm": norm}
        first = _first_layer_tensor(grads)
        if first is not None:
            # minus the gradient: the direction the step is about to move each weight
            extra["image"] = tiles_png(-first.numpy(), MAX_TILES)[0]
        self._phase("gradient", f"size of the gradient = {norm:.3g}", **extra)

    def after_step(self, learn: Learner) -> None:
        if self.slow:
            assert learn.opt is not None
            lr, kind = learn.opt.lr, type(learn.opt).__name__
            how = {"BasicOptim": "gradient", "Momentum": "velocity (a running sum of gradients)"}
            if kind in how:
                self._phase("step", f"weights -= {lr:g} × {how[kind]}", wait=False)
            else:
                self._phase("step", f"{kind} step with learning rate {lr:g}", wait=False)

    def after_batch(self, learn: Learner) -> None:
        x = learn.epoch_count + (learn.batch + 1) / len(learn.dls.train)
        self.pending.append([round(x, 4), round(learn.loss.item(), 5)])
        self.job._keep_weights(learn)
        if self.slow or self.throttle.ready():
            self.flush(learn)
        self.job._gate(learn, self.batch_start)

    def after_epoch(self, learn: Learner) -> None:
        self.flush(learn)
        self.job.hub.publish({"type": "epoch", "row": learn.history[-1], "epochs": learn.epochs})

    def after_fit(self, learn: Learner) -> None:
        self.job._keep_weights(learn)
        self.flush(learn)

    def flush(self, learn: Learner) -> None:
        """Publish the batch losses gathered so far, with fresh weight pictures."""
        if not self.pending:
            return
        live = self.job._draw_weights()
        event = {
            "type": "batch",
            "epoch": learn.epoch_count,
            "batch": learn.batch + 1,
            "batches": len(learn.dls.train),
            "points": self.pending,
            "lr": learn.lr,
            **live,
        }
        self.pending = []
        self.job._add_points(event["points"])
        self.job.hub.publish(event)

    def _phase(self, step: str, detail: str, wait: bool = True, **extra: Any) -> None:
        self.job.hub.publish({"type": "phase", "step": step, "detail": detail, **extra})
        if wait:
            self.job._sleep(self.phase_wait)


def _first_layer_tensor(tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """The first (784, k) matrix: the weights (or gradients) that touch the pixels."""
    for t in tensors:
        if t.ndim == 2 and t.shape[0] == 784:
            return t.detach().cpu()
    return None


# -- the job -------------------------------------------------------------------------------


class TrainingJob:
    """One training run at a time, in a background thread, watched by any number of pages.

    `data` is the source every run uses (`sample`, `mnist`, a folder, ...).
    `phase_pause` is how long each step stays lit when a single batch is stepped.
    """

    def __init__(self, data: str = "sample", phase_pause: float = 0.25) -> None:
        self.data = data
        self.phase_pause = phase_pause
        self.hub = Hub()
        self._lock = threading.RLock()  # guards everything below
        self._cond = threading.Condition(self._lock)  # wakes the thread: pause, step, stop
        self._control = threading.Lock()  # one start/step/stop/reset at a time
        self._view_lock = threading.Lock()  # one prediction at a time on the view model
        self._raw: RawData | None = None
        self.settings = Settings()
        self.state = "empty"  # until the first learner is built
        self.message = ""
        self.learn: Learner | None = None
        self.lr = 0.0
        self.delay = self.settings.delay
        self._thread: threading.Thread | None = None
        self._paused = False
        self._stop_requested = False
        self._step_budget = 0  # batches the user asked for while paused
        self._stepping = False  # the batch now running was asked for with Step
        self._points: list[list[float]] = []  # every batch loss of this run: [x, loss]
        self._weights: dict[str, Any] = {}  # the latest weight pictures, as sent
        self._params: dict[str, torch.Tensor] = {}  # weights after the last finished batch
        self._start_params: dict[str, torch.Tensor] = {}  # ... and as init drew them
        self._version = 0  # counts updates of _params
        self._view: Any = None  # a model holding a copy of _params, for predictions
        self._view_version = -1

    # -- control, called by the web requests -------------------------------------------------

    def ensure_ready(self) -> None:
        """Build the default run (not trained yet) if there is none."""
        if self.state != "empty":
            return  # the usual case, without waiting for a start or stop in progress
        with self._control:
            if self.state == "empty":
                self._install(self._build(self.settings), self.settings)

    def start(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Start a new run with these settings (missing ones take their defaults)."""
        with self._control:
            self._refuse_if_active("a run is already training: pause and stop it, or reset it")
            settings = parse_settings(params)
            learn = self._build(settings)
            self._install(learn, settings)
            self._launch(paused=False)
        return self.summary()

    def step(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Train exactly one batch: from a paused run, or as the first batch of a ready
        one (set up first with `params`, the page's choices, when they are given)."""
        with self._control:
            if params and self.state == "ready":
                self._prepare(parse_settings(params))
            with self._cond:
                if self.state == "paused":
                    self._step_budget += 1
                    self._cond.notify_all()
                    return self.summary()
                if self.state == "running":
                    raise JobConflict("training is running: pause it first, then step")
                if self.state != "ready":
                    raise JobConflict(
                        "this run has ended: press Reset to replay it, or Start a new one"
                    )
            self._launch(paused=True)
        return self.summary()

    def pause(self) -> dict[str, Any]:
        with self._cond:
            if self.state != "running":
                raise JobConflict(f"nothing to pause: the run is {self.state}")
            self._paused = True
            self._set_state("paused", "paused: press Step for one batch, or Start to go on")
        return self.summary()

    def resume(self) -> dict[str, Any]:
        with self._cond:
            if self.state != "paused":
                raise JobConflict(f"nothing to resume: the run is {self.state}")
            self._paused = False
            self._cond.notify_all()
            self._set_state("running", "training")
        return self.summary()

    def stop(self) -> dict[str, Any]:
        """End the run after the batch in progress; the model is kept (draw, save)."""
        with self._control:
            with self._cond:
                if self.state not in ("running", "paused"):
                    raise JobConflict(f"nothing to stop: the run is {self.state}")
            self._halt()
        return self.summary()

    def reset(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Back to the initial weights of the same settings and seed: Start replays the run.

        With `params` (the page's choices), set up a new run from them instead, ready
        but not trained: the page shows its initial weights at once.
        """
        settings = parse_settings(params) if params else None
        with self._control:
            self._halt()
            with self._lock:
                settings = settings or self.settings
            self._install(self._build(settings), settings)
        return self.summary()

    def _prepare(self, settings: Settings) -> None:
        """Make a ready run follow `settings`, unless it already does."""
        if settings != self.settings:
            self._install(self._build(settings), settings)

    def set_lr(self, lr: Any) -> dict[str, Any]:
        """Change the learning rate now, also in the middle of a run."""
        value = number_setting({"lr": lr}, "lr", low=0.0, high=1000.0, low_open=True)
        if value is None:
            raise UsageError("lr must be a number above 0")
        with self._lock:
            if self.state in ENDED:
                # the next run takes its rate from its settings: a 200 here changed nothing
                raise JobConflict(
                    f"the run has ended ({self.state}): a new learning rate changes a run in "
                    "progress; to train again with it, set it and press Reset"
                )
            self.lr = value
            if self.learn is not None and self.learn.opt is not None:
                self.learn.set_lr(value)
        self.hub.publish({"type": "lr", "lr": value})
        return self.summary()

    def set_delay(self, delay: Any) -> dict[str, Any]:
        """Change the wait between batches (seconds) now, also in the middle of a run."""
        value = number_setting({"delay": delay}, "delay", low=0.0, high=5.0)
        if value is None:
            raise UsageError("delay must be a number of seconds")
        with self._cond:
            self.delay = value
            self._cond.notify_all()  # a long wait in progress is cut to the new one
        self.hub.publish({"type": "state", **self.summary()})
        return self.summary()

    def shutdown(self) -> None:
        """Stop any run and tell the pages the server is going away."""
        self._halt()
        self.hub.close()

    # -- what the pages read -----------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The run's state in a few fields (sent with every `state` event)."""
        with self._lock:
            learn = self.learn
            config = getattr(learn, "config", None)
            return {
                "state": self.state,
                "message": self.message,
                "lr": self.lr,
                "delay": self.delay,
                "settings": self.settings.to_dict(),
                "digits": list(config.digits) if config else list(self.settings.digits),
                "model": config.model if config else self.settings.model,
                "epoch": learn.epoch_count if learn else 0,
                "epochs": config.epochs if config else None,
                "batches": len(learn.dls.train) if learn else None,
                "train_size": len(learn.dls.train.dataset) if learn else None,
                "valid_size": len(learn.dls.valid.dataset) if learn else None,
                "source": learn.dls.source if learn else self.data,
                "watchers": self.hub.count,
            }

    def snapshot(self) -> dict[str, Any]:
        """Everything a page needs to draw the run from scratch."""
        with self._lock:
            return {
                "type": "snapshot",
                **self.summary(),
                "history": list(self.learn.history) if self.learn else [],
                "points": list(self._points),
                **self._weights,
            }

    def display_order(self, split: str) -> torch.Tensor:
        """A fixed shuffle of a split, for browsing: the sources keep each digit's
        images together, and a grid of only 2s teaches nothing."""
        import torch

        n = len(self.dataset(split))
        return torch.randperm(n, generator=torch.Generator().manual_seed(0))

    def dataset(self, split: str) -> Dataset:
        """The training or validation images of the current run's digits."""
        if split not in ("train", "valid"):
            raise UsageError(f"split must be train or valid, not {split!r}")
        self.ensure_ready()
        with self._lock:
            assert self.learn is not None
            loader = self.learn.dls.train if split == "train" else self.learn.dls.valid
            return loader.dataset

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Probabilities (N, C) of each digit for images x (N, 784), with the weights
        of the last finished batch; and the digits, in the order of the columns."""
        import torch

        self.ensure_ready()
        model, digits = self._model_now()
        with self._view_lock, torch.no_grad():
            out = model(x)  # (N, 1) for a pair, (N, C) otherwise
            if len(digits) == 2:
                p = torch.sigmoid(out[:, 0])  # (N,): the probability of the first digit
                return torch.stack([p, 1 - p], dim=1), digits  # (N, 2)
            return torch.softmax(out, dim=1), digits  # (N, C)

    def contributions(self, x: torch.Tensor, column: int) -> tuple[np.ndarray, float] | None:
        """For the linear model: weight × pixel for each pixel of one image x (784,),
        towards output `column`, and the bias. The score is their sum plus the bias.
        None for a net, whose hidden layer mixes the pixels before any score exists."""
        self.ensure_ready()
        with self._lock:
            params, model = self._params, self.settings.model
        if model != "linear" or "weight" not in params:
            return None
        w = params["weight"][:, column]  # (784,)
        b = float(params["bias"][column])
        return (w * x).numpy(), b  # (784,)

    def save(self, run_dir: Any) -> dict[str, Any]:
        """Save the current model as a run directory (`groundup predict`/`report` read it)."""
        from groundup.runs import save_run
        from groundup.training import model_spec

        self.ensure_ready()
        with self._lock:
            assert self.learn is not None
            config = self.learn.config
            history = [dict(row) for row in self.learn.history]
            source = self.learn.dls.source
            init_state = dict(self._start_params)
        model, digits = self._model_now()
        with self._view_lock:
            save_run(
                run_dir,
                model,
                model_spec(config),
                digits,
                source,
                history,
                config.to_dict(),
                extra={"trained_in": "groundup serve"},
                init_state=init_state,  # so `groundup report` shows what training changed
            )
        return {"epochs": len(history), "final": history[-1] if history else {}}

    # -- inside ------------------------------------------------------------------------------

    def _raw_data(self) -> RawData:
        if self._raw is None:
            from groundup.sources import load_source

            self._raw = load_source(self.data)
        return self._raw

    def _build(self, settings: Settings) -> Learner:
        """A seeded learner for `settings`, from the source loaded once per server."""
        from groundup.data import DataLoaders, Dataset, require_digits, to_tensors
        from groundup.training import make_learner

        config = settings.train_config(self.data)
        raw = self._raw_data()
        require_digits(raw, config.digits)
        digits = config.digits
        train = Dataset(*to_tensors(raw.train_images, raw.train_labels, digits), digits, "train")
        valid = Dataset(*to_tensors(raw.valid_images, raw.valid_labels, digits), digits, "valid")
        dls = DataLoaders.from_datasets(
            train, valid, config.batch_size, config.seed, source=raw.name
        )
        return make_learner(config, dls=dls, cbs=[LiveView(self)])

    def _install(self, learn: Learner, settings: Settings) -> None:
        """Make `learn` the current, untrained run and tell every page."""
        with self._lock:
            self.learn, self.settings = learn, settings
            self.lr = float(learn.config.lr)
            self.delay = settings.delay
            self._points = []
            self._keep_weights(learn)
            self._start_params = dict(self._params)
            self._draw_weights()
            config = learn.config
            self._set_state(
                "ready",
                f"{config.init} init, seed {config.seed}: press Start to train, or Step "
                "for one batch",
                publish=False,
            )
        self.hub.publish(self.snapshot())
        self.hub.publish(
            {"type": "phase", "step": "init", "detail": f"weights drawn: {learn.config.init} init"}
        )

    def _launch(self, paused: bool) -> None:
        """Run the current (ready) learner in a new thread."""
        with self._cond:
            assert self.learn is not None
            self._paused = paused
            self._stepping = paused  # a run started with Step shows its first batch slowly
            self._step_budget = 0
            self._stop_requested = False
            self._thread = threading.Thread(
                target=self._train, args=(self.learn,), name="groundup-training", daemon=True
            )
            if paused:
                self._set_state("paused", "one batch, then paused")
            else:
                self._set_state("running", "training")
            self._thread.start()

    def _train(self, learn: Learner) -> None:
        """The thread: fit, then record how it ended."""
        error = ""
        try:
            learn.fit(learn.config.epochs, self.lr)
        except DivergenceError as err:
            error = str(err)
        except Exception as err:  # a bug: keep the server up, tell the page, log it
            log.exception("training failed")
            error = f"training failed: {err}"
        with self._lock:
            if learn is not self.learn:
                return  # replaced by a reset meanwhile
            self._keep_weights(learn)
            acc = learn.history[-1].get("accuracy") if learn.history else None
            result = f"valid accuracy {acc:.4f}" if acc is not None else "no epoch finished"
            if error:
                self._set_state("failed", error)
            elif self._stop_requested:
                self._set_state("stopped", f"stopped after {learn.epoch_count} epochs: {result}")
            else:
                self._set_state("done", f"done: {learn.epoch_count} epochs, {result}")
            stop_detail = self.message
        self.hub.publish({"type": "phase", "step": "stop", "detail": stop_detail})

    def _halt(self) -> None:
        """Ask the thread to stop after its batch, and wait until it has."""
        with self._cond:
            thread = self._thread
            if thread is None or not thread.is_alive():
                return
            self._stop_requested = True
            self._paused = False
            self._cond.notify_all()
        thread.join()

    def _refuse_if_active(self, message: str) -> None:
        with self._lock:
            if self.state in ("running", "paused"):
                raise JobConflict(message)

    def _set_state(self, state: str, message: str, publish: bool = True) -> None:
        with self._lock:
            self.state, self.message = state, message
        if publish:
            self.hub.publish({"type": "state", **self.summary()})

    # -- called by LiveView, in the training thread ------------------------------------------

    def _before_fit(self, learn: Learner) -> None:
        with self._lock:
            learn.set_lr(self.lr)  # a change made between start and the optimizer's birth

    def _gate(self, learn: Learner, batch_start: float) -> None:
        """Between batches: wait out the delay, a pause, or a step; see a stop request."""
        with self._cond:
            self._stepping = False
            while not self._stop_requested:
                if self._paused:
                    if self._step_budget > 0:
                        self._step_budget -= 1
                        self._stepping = True
                        break
                    self._cond.wait()
                    continue
                remaining = batch_start + self.delay - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._stop_requested:
                learn.stop = True
                learn.stop_reason = "stopped from the page"

    def _sleep(self, seconds: float) -> None:
        """Wait so a step stays lit on the page, unless a stop is asked for."""
        if seconds > 0:
            with self._cond:
                self._cond.wait_for(lambda: self._stop_requested, timeout=seconds)

    def _keep_weights(self, learn: Learner) -> None:
        """Copy the weights, so requests read a whole model while training goes on."""
        params = {k: v.detach().cpu().clone() for k, v in learn.model.state_dict().items()}
        with self._lock:
            if learn is self.learn:
                self._params = params
                self._version += 1

    def _add_points(self, points: list[list[float]]) -> None:
        with self._lock:
            self._points.extend(points)

    def _draw_weights(self) -> dict[str, Any]:
        """The first layer's weights as pictures, and their histogram against the start."""
        from groundup.web.pictures import histogram, tiles_png

        with self._lock:
            params, start = self._params, self._start_params
        now_w = _first_layer_tensor(list(params.values()))
        start_w = _first_layer_tensor(list(start.values()))
        if now_w is None:
            return {}
        image, tiles, scale = tiles_png(now_w.numpy(), MAX_TILES)
        live = {
            "weights": image,
            "tiles": tiles,
            "units": int(now_w.shape[1]),
            "scale": scale,
            "hist": histogram(now_w.numpy(), (start_w if start_w is not None else now_w).numpy()),
        }
        with self._lock:
            self._weights = live
        return live

    def _model_now(self) -> tuple[Any, tuple[int, ...]]:
        """A model holding the latest copied weights (rebuilt only when they changed)."""
        from groundup.models import build_model
        from groundup.training import model_spec

        with self._lock:
            assert self.learn is not None
            spec: ModelSpec = model_spec(self.learn.config)
            params, version, digits = self._params, self._version, self.learn.config.digits
        with self._view_lock:
            if self._view_version != version or self._view is None:
                # zero init draws no random numbers, so it cannot disturb a seeded run
                view = build_model(replace(spec, init="zeros"))
                view.load_state_dict(params)
                view.eval()
                self._view, self._view_version = view, version
            return self._view, tuple(digits)
