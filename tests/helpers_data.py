"""Helpers for the data tests: tiny IDX directories, synthetic RawData, a local HTTP server."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from groundup.data import idx
from groundup.data.sources import IDX_FILES, RawData

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def require_fashion() -> Path:
    """The Debian Fashion-MNIST folder; skip without it, but fail under CI=true."""
    if all((FASHION_DIR / f"{stem}.gz").is_file() for stem in IDX_FILES.values()):
        return FASHION_DIR
    reason = f"Fashion-MNIST IDX files not in {FASHION_DIR} (apt-get install dataset-fashion-mnist)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def digit_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """uint8 (N, 28, 28) images whose content depends on the label and the index (all distinct)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
    images[:, 0, 0] = labels  # the label is readable from the image, for cross-checks
    return images


def synthetic_raw(per_class: int = 3, digits: tuple[int, ...] = (2, 9)) -> RawData:
    """A small RawData with `per_class` train and `per_class - 1` valid images per digit."""
    train_labels = np.repeat(np.array(digits, dtype=np.int64), per_class)
    valid_labels = np.repeat(np.array(digits, dtype=np.int64), per_class - 1)
    return RawData(
        "synthetic",
        "made by the test",
        "sample",
        digit_images(train_labels, 1),
        train_labels,
        digit_images(valid_labels, 2),
        valid_labels,
    )


def write_idx_dir(folder: Path, raw: RawData | None = None, *, gz: bool = True) -> dict[str, Path]:
    """Write `raw` (default: synthetic) as the four IDX files; return role -> path."""
    raw = raw or synthetic_raw()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, stem in IDX_FILES.items():
        array = getattr(raw, role)
        paths[role] = idx.write_idx(folder / (stem + (".gz" if gz else "")), array.astype(np.uint8))
    return paths


Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


@contextmanager
def local_server(routes: dict[str, bytes | Handler]) -> Iterator[tuple[str, list[str]]]:
    """Serve `routes` (path -> body, or a function that answers) on 127.0.0.1.

    Yields the base URL and the list of paths requested so far.
    """
    requested: list[str] = []

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            requested.append(self.path)
            route = routes.get(self.path)
            if route is None:
                self.send_error(404)
            elif callable(route):
                route(self)
            else:
                self.send_response(200)
                self.send_header("Content-Length", str(len(route)))
                self.end_headers()
                self.wfile.write(route)

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def cut_after(body: bytes, keep: int) -> Handler:
    """A handler that promises all of `body` (Content-Length), sends `keep` bytes, and hangs up."""

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[:keep])
        handler.wfile.flush()
        handler.close_connection = True

    return answer
