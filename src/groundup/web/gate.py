"""Where the training thread waits between batches: the delay that lets the eye follow,
a pause, a step of one batch, or a stop. The job (web/jobs.py) owns the gate and shares
its lock with it, so the job's state and the gate always agree."""

from __future__ import annotations

import threading
import time


class Gate:
    """Where the training thread waits between batches: out the delay, through a pause,
    for a step, or until a stop. It shares the job's lock, so the job's state and the
    gate always agree."""

    def __init__(self, lock: threading.RLock, delay: float, phase_pause: float) -> None:
        self.cond = threading.Condition(lock)
        self.delay = delay  # seconds to wait after each batch
        self.phase_pause = phase_pause  # seconds each step stays lit in a stepped batch
        self.paused = False
        self.stop_requested = False
        self.steps = 0  # batches asked for with Step while paused
        self.stepping = False  # the batch now running was asked for with Step

    def arm(self, paused: bool) -> None:
        """Before a new run's thread starts (call with the lock held)."""
        self.paused = self.stepping = paused  # a run started with Step shows its batch slowly
        self.steps, self.stop_requested = 0, False

    def wait(self, batch_start: float) -> bool:
        """After a batch, in the training thread. True when the run must stop."""
        with self.cond:
            self.stepping = False
            while not self.stop_requested:
                if self.paused:
                    if self.steps > 0:
                        self.steps -= 1
                        self.stepping = True
                        break
                    self.cond.wait()
                    continue
                remaining = batch_start + self.delay - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
            return self.stop_requested

    def hold(self, seconds: float) -> None:
        """Wait so a step stays lit on the page, unless a stop is asked for."""
        if seconds > 0:
            with self.cond:
                self.cond.wait_for(lambda: self.stop_requested, timeout=seconds)

    def wake(self) -> None:
        self.cond.notify_all()
