"""The training job behind the web page: one run at a time, in a background thread.

The page drives it, and every change is published to all the pages watching::

    ready --start--> running --pause--> paused --resume--> running
      |                 |                  '--step--> one batch, then paused again
      '--step--> one batch, then paused
    running | paused --stop--> stopped      running --last epoch--> done
    anything --reset--> ready: the same settings and seed, so the same initial
                        weights and the same shuffles; pressing start replays the run

Only one run at a time: `start` while a run is running or paused raises
`JobConflict` (HTTP 409). The learning rate and the speed can change while it runs.

A run is what `groundup train` trains for the same settings: the page's settings
go through `TrainConfig.from_mapping` (web/form.py), the data through `load_data`,
the run through `make_run`, and `fit` gets the config's epochs and rate;
predictions and saves go through the command line's `Run` and `save_run`. The
thread meets the job at the `Gate` between batches (pause, step, stop, the delay)
and in the `LiveView` callback (web/live.py), which publishes the run to the pages
(the event types are listed in web/events.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groundup.errors import DivergenceError, UsageError
from groundup.runs.config import TrainConfig, resolve_defaults
from groundup.web.events import Hub
from groundup.web.form import DELAY, PAGE_SETTINGS, check_delay, read_settings, settings_schema
from groundup.web.gate import Gate
from groundup.web.live import LiveView

if TYPE_CHECKING:
    from groundup.data.sources import RawData
    from groundup.data.tensors import Dataset
    from groundup.learn.learner import Learner
    from groundup.runs.saved import Run
    from groundup.runs.training import TrainedRun

log = logging.getLogger("groundup.web")


# The states a run ends in; from them only Reset (or new settings) trains again.
ENDED = ("done", "stopped", "failed")


class JobConflict(UsageError):
    """The request does not fit the run's state (HTTP 409): e.g. start while one runs."""


class TrainingJob:
    """One training run at a time, in a background thread, watched by any number of pages.

    `data` is the source every run uses (`sample`, `mnist`, a folder, ...), loaded once.
    `phase_pause` is how long each step stays lit when a single batch is stepped.
    """

    def __init__(self, data: str = "sample", phase_pause: float = 0.25) -> None:
        self.data = data
        self.hub = Hub()
        self._lock = threading.RLock()  # guards the state below, and the gate
        self._control = threading.Lock()  # one start/step/stop/reset at a time
        self.gate = Gate(self._lock, DELAY["default"], phase_pause)
        self._raw: RawData | None = None
        self.choices: dict[str, Any] = {}  # the page's settings of this run, as sent
        self.state = "empty"  # until the first learner is built
        self.message = ""
        self.trained: TrainedRun | None = None  # the current run, ready or trained
        self.live: LiveView | None = None
        self._thread: threading.Thread | None = None

    @property
    def learn(self) -> Learner | None:
        """The current run's learner."""
        trained = self.trained
        return trained.learner if trained else None

    # -- settings ----------------------------------------------------------------------------

    def settings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The form's schema, and every setting resolved for the page's current choices."""
        choices, config, _ = read_settings(params)
        mapping = {**choices, "data": self.data, "device": "cpu"}
        resolved = resolve_defaults(mapping, self._n_train(config.digits))
        return {
            "schema": settings_schema(),
            "resolved": {k: resolved[k] for k in PAGE_SETTINGS},
            "classes": self.classes(),
        }

    def classes(self) -> dict[str, Any]:
        """What the server's data calls its labels, for the page: {"word": "digit" or
        "class", "names": label k's name, "3" or "3 Dress"}, from `data.sources`."""
        from groundup.data.digits import ALL_DIGITS
        from groundup.data.sources import class_name, class_word

        return {
            "word": class_word(self.data),
            "names": [class_name(self.data, d) for d in ALL_DIGITS],
        }

    # -- control, called by the web requests -------------------------------------------------

    def ensure_ready(self) -> None:
        """Build the default run (not trained yet) if there is none."""
        if self.state != "empty":
            return  # the usual case, without waiting for a start or stop in progress
        with self._control:
            if self.state == "empty":
                self._install(*read_settings({}))

    def start(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Start a new run with these settings (missing ones take their defaults)."""
        with self._control:
            self._refuse_if_active("a run is already training: pause and stop it, or reset it")
            self._install(*read_settings(params))
            self._launch(paused=False)
        return self.summary()

    def step(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Train exactly one batch: from a paused run, or as the first batch of a ready
        one (set up first with `params`, the page's choices, when they are given)."""
        with self._control:
            if params and self.state == "ready":
                choices, config, delay = read_settings(params)
                if choices != self.choices:
                    self._install(choices, config, delay)
                elif delay is not None:
                    self.gate.delay = delay
            with self._lock:
                if self.state == "paused":
                    self.gate.steps += 1
                    self.gate.wake()
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
        with self._lock:
            if self.state != "running":
                raise JobConflict(f"nothing to pause: the run is {self.state}")
            self.gate.paused = True
            self._set_state("paused", "paused: press Step for one batch, or Start to go on")
        return self.summary()

    def resume(self) -> dict[str, Any]:
        with self._lock:
            if self.state != "paused":
                raise JobConflict(f"nothing to resume: the run is {self.state}")
            self.gate.paused = False
            self.gate.wake()
            self._set_state("running", "training")
        return self.summary()

    def stop(self) -> dict[str, Any]:
        """End the run after the batch in progress; the model is kept (draw, save)."""
        with self._control:
            with self._lock:
                if self.state not in ("running", "paused"):
                    raise JobConflict(f"nothing to stop: the run is {self.state}")
            self._halt()
        return self.summary()

    def reset(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Back to the initial weights of the same settings and seed: Start replays the run.

        With `params` (the page's choices), set up a new run from them instead, ready
        but not trained: the page shows its initial weights at once.
        """
        settings = read_settings(params) if params else None
        with self._control:
            self._halt()
            self._install(*(settings or read_settings(self.choices)))
        return self.summary()

    def set_lr(self, lr: Any) -> dict[str, Any]:
        """Change the learning rate now, also in the middle of a run. Under a schedule,
        this switches the schedule off for the rest of the run (see web/live.py)."""
        value = TrainConfig.from_mapping({"lr": lr}).lr
        if value is None:
            raise UsageError("lr must be a number above 0")
        with self._lock:
            if self.state in ENDED:
                # the next run takes its rate from its settings: a 200 here changed nothing
                raise JobConflict(
                    f"the run has ended ({self.state}): a new learning rate changes a run in "
                    "progress; to train again with it, set it and press Reset"
                )
            if self.live is not None:
                self.live.set_lr(value)
            schedule = self.trained.config.schedule if self.trained else "constant"
        note = f"Learning rate is now {value:g}: it applies from the next batch"
        if schedule != "constant":
            note += f"; the {schedule} schedule is off for the rest of this run"
        self.hub.publish({"type": "lr", **self.summary()})
        return {**self.summary(), "note": note}

    def set_delay(self, delay: Any) -> dict[str, Any]:
        """Change the wait between batches (seconds) now, also in the middle of a run."""
        value = check_delay(delay)
        if value is None:
            raise UsageError("delay must be a number of seconds")
        with self._lock:
            self.gate.delay = value
            self.gate.wake()  # a long wait in progress is cut to the new one
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
            learn, live = self.learn, self.live
            config = self.trained.config if self.trained else None
            by_hand = live.lr_by_hand if live else None
            return {
                "state": self.state,
                "message": self.message,
                "lr": by_hand if by_hand is not None else (config.lr if config else None),
                "lr_by_hand": by_hand is not None,
                "delay": self.gate.delay,
                "settings": dict(self.choices),
                "config": {k: getattr(config, k) for k in PAGE_SETTINGS} if config else None,
                "digits": list(config.digits) if config else None,
                "model": config.model if config else None,
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
            history = list(self.learn.history) if self.learn else []
            live = self.live.snapshot() if self.live else {"points": []}
            return {"type": "snapshot", **self.summary(), "history": history, **live}

    def run(self) -> Run:
        """The model after the last finished batch, as the `Run` `groundup predict` uses."""
        self.ensure_ready()
        with self._lock:
            assert self.live is not None
            live = self.live
        return live.run()

    def dataset(self, split: str) -> Dataset:
        """The training or validation images of the current run's digits."""
        if split not in ("train", "valid"):
            raise UsageError(f"split must be train or valid, not {split!r}")
        self.ensure_ready()
        with self._lock:
            assert self.learn is not None
            loader = self.learn.dls.train if split == "train" else self.learn.dls.valid
            return loader.dataset

    def display_order(self, split: str) -> Any:
        """A fixed shuffle of a split, for browsing: the sources keep each digit's
        images together, and a grid of only 2s teaches nothing."""
        import torch

        n = len(self.dataset(split))
        return torch.randperm(n, generator=torch.Generator().manual_seed(0))

    def save(self, run_dir: Path) -> dict[str, Any]:
        """Save the current model as a run directory, with `save_run`, as `groundup train`
        does: the weights after the last finished batch, while training may go on."""
        from groundup.learn.learner import Learner
        from groundup.runs.saved import save_run
        from groundup.runs.training import TrainedRun

        run = self.run()
        with self._lock:
            trained = self.trained
            assert trained is not None
            history = [dict(row) for row in trained.history]
        # a run value of their own: the copied weights, the run's config, data and start
        learner = Learner(trained.learner.dls, run.model)
        learner.history = history
        extra = {"trained_in": "groundup serve"}
        save_run(run_dir, TrainedRun(trained.config, learner, trained.init_state, extra))
        return {"epochs": len(history), "final": history[-1] if history else {}}

    # -- inside ------------------------------------------------------------------------------

    def _raw_data(self) -> RawData:
        if self._raw is None:
            from groundup.data.sources import load_source

            self._raw = load_source(self.data)
        return self._raw

    def _n_train(self, digits: tuple[int, ...]) -> int:
        import numpy as np

        return int(np.isin(self._raw_data().train_labels, digits).sum())

    def _install(self, choices: dict[str, Any], config: TrainConfig, delay: float | None) -> None:
        """Build a seeded, untrained run of `config`, make it current and tell every page.

        The same path as `groundup train`: load_data (on the source loaded once), then
        make_run, which seeds the model and adds the schedule and augmentation."""
        from groundup.data.tensors import load_data
        from groundup.runs.training import make_run

        config = replace(config, data=self.data)
        dls = load_data(
            config.data, config.digits, config.batch_size, config.seed, raw=self._raw_data()
        )
        live = LiveView(self.hub, self.gate)
        trained = make_run(config, dls=dls, cbs=[live])
        live.begin(trained)
        config = trained.config
        with self._lock:
            self.trained, self.live, self.choices = trained, live, dict(choices)
            if delay is not None:
                self.gate.delay = delay
            self._set_state(
                "ready",
                f"{config.init} init, seed {config.seed}: press Start to train, or Step "
                "for one batch",
                publish=False,
            )
        self.hub.publish(self.snapshot())
        self.hub.publish(
            {"type": "phase", "step": "init", "detail": f"weights drawn: {config.init} init"}
        )

    def _launch(self, paused: bool) -> None:
        """Run the current (ready) learner in a new thread."""
        with self._lock:
            assert self.trained is not None
            self.gate.arm(paused)
            self._thread = threading.Thread(
                target=self._train, args=(self.trained,), name="groundup-training", daemon=True
            )
            if paused:
                self._set_state("paused", "one batch, then paused")
            else:
                self._set_state("running", "training")
            self._thread.start()

    def _train(self, trained: TrainedRun) -> None:
        """The thread: fit as `groundup train` does, then record how it ended."""
        learn, error = trained.learner, ""
        try:
            trained.fit()  # the config's epochs at its learning rate
        except DivergenceError as err:
            error = str(err)
        except Exception as err:  # a bug: keep the server up, tell the page, log it
            log.exception("training failed")
            error = f"training failed: {err}"
        with self._lock:
            if trained is not self.trained:
                return  # replaced by a reset meanwhile
            acc = learn.history[-1].get("accuracy") if learn.history else None
            result = f"valid accuracy {acc:.4f}" if acc is not None else "no epoch finished"
            if error:
                self._set_state("failed", error)
            elif self.gate.stop_requested:
                self._set_state("stopped", f"stopped after {learn.epoch_count} epochs: {result}")
            else:
                self._set_state("done", f"done: {learn.epoch_count} epochs, {result}")
            stop_detail = self.message
        self.hub.publish({"type": "phase", "step": "stop", "detail": stop_detail})

    def _halt(self) -> None:
        """Ask the thread to stop after its batch, and wait until it has."""
        with self._lock:
            thread = self._thread
            if thread is None or not thread.is_alive():
                return
            self.gate.stop_requested = True
            self.gate.paused = False
            self.gate.wake()
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
