"""Publishing the run to every page: Server-Sent Events through a `Hub`.

The training thread publishes; each open page is a `Subscriber`, a queue on the
server's event loop that the page's `/api/events` response drains. An event is a
JSON object with a "type", sent as `event: TYPE` and `data: JSON`:

  snapshot  everything, for a page that joins or a run that starts or resets
  state     the run's state changed (running, paused, done, ...)
  phase     one of the seven steps is happening now, with a value
  batch     the batch losses since the last update, the weights image and histogram
  epoch     one epoch finished: its row of the history (losses, accuracy)
  lr        the learning rate changed
  watchers  how many pages are watching
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

QUEUE_SIZE = 512  # events a slow page may fall behind before it is sent a fresh snapshot


class Subscriber:
    """One page's queue of events; lives on the server's event loop."""

    RESYNC = "resync"  # put in place of events a slow page missed: send it a snapshot
    CLOSED = "closed"  # the server is shutting down

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int = QUEUE_SIZE) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[str] = asyncio.Queue(size)

    def push(self, message: str) -> None:
        """Called on the loop. A page too slow to keep up loses its backlog and is
        sent one fresh snapshot instead, rather than growing memory without end."""
        if self.queue.full():
            while not self.queue.empty():
                self.queue.get_nowait()
            message = self.RESYNC
        self.queue.put_nowait(message)


class Hub:
    """Sends each event to every subscriber. `publish` may be called from any thread."""

    def __init__(self) -> None:
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> Subscriber:
        """A new subscriber on the running event loop (call it from a coroutine)."""
        sub = Subscriber(asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
        self.publish({"type": "watchers", "count": self.count})
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)
        self.publish({"type": "watchers", "count": self.count})

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._subs)

    def publish(self, event: dict[str, Any]) -> None:
        """Encode once, then hand the message to each subscriber's loop."""
        self._send(sse_message(event))

    def close(self) -> None:
        self._send(Subscriber.CLOSED)

    def _send(self, message: str) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub.push, message)
            except RuntimeError:  # that page's loop has closed
                with self._lock:
                    self._subs.discard(sub)


def sse_message(event: dict[str, Any]) -> str:
    """One Server-Sent Event: `event: TYPE`, `data: JSON`, and a blank line."""
    data = json.dumps(event, separators=(",", ":"), allow_nan=False, default=_plain)
    return f"event: {event['type']}\ndata: {data}\n\n"


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"cannot send {type(value).__name__} to the page")


class Throttle:
    """Lets an event through at most `rate` times a second (of `clock`)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self.last = -math.inf

    def ready(self) -> bool:
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            return True
        return False
