"""Download MNIST, Fashion-MNIST or KMNIST: the four IDX `.gz` files, checked.

Each file is streamed into a temporary file beside its destination while its
MD5 is computed, and renamed into place only when the byte count and the
checksum are right. A failed, cut or corrupt download therefore leaves nothing
behind, and a file already present with the right checksum is not downloaded
again. Mirrors are tried in order.

The checksums are those published with each dataset (and listed by torchvision's
`datasets/mnist.py`); MD5 is what they publish, and here it guards against
corruption, not tampering.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from groundup.errors import DataError, UsageError

# name -> {file: md5 of the .gz file}
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "kmnist": {
        "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
    },
}

# name -> base URLs, tried in order. yann.lecun.com, MNIST's original home, now
# refuses most downloads, so it is not listed.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    "kmnist": ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
}

CHUNK = 1 << 16  # bytes per read: small enough for a smooth progress bar


def md5sum(path: Path) -> str:
    """The MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(
    name: str,
    dest: Path | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download dataset `name` ("mnist", "fashion-mnist" or "kmnist") into `dest`; return `dest`.

    `dest` defaults to `cache_dir()/<name>`, where `load_source(name)` looks.
    `mirrors` replaces the built-in base URLs (tests point it at a local server).
    `progress` shows a progress bar when stderr is a terminal. Raises `DataError`
    naming the file, each mirror tried and what went wrong there.
    """
    if name not in CHECKSUMS:
        raise UsageError(f"unknown dataset {name!r}; fetch knows {', '.join(CHECKSUMS)}")
    if dest is None:
        from groundup.data.sources import cache_dir

        dest = cache_dir() / name
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create {dest}: {err.strerror or err}") from None
    bases = list(mirrors) if mirrors is not None else list(MIRRORS[name])
    if not bases:
        raise UsageError("no mirrors to download from")
    show = progress and sys.stderr.isatty()
    for filename, md5 in CHECKSUMS[name].items():
        target = dest / filename
        if target.is_file() and md5sum(target) == md5:
            continue  # already here and intact
        failures = []
        for base in bases:
            url = base if base.endswith("/") else base + "/"
            url += filename
            try:
                _download(url, target, md5, timeout=timeout, show=show)
                break
            except _Failed as err:
                failures.append(f"{url}: {err}")
        else:
            raise DataError(f"could not download {filename} for {name}; " + "; ".join(failures))
    return dest


class _Failed(Exception):
    """One mirror failed for one file (the next mirror is tried)."""


def _download(url: str, target: Path, md5: str, *, timeout: float, show: bool) -> None:
    """Stream `url` into a temporary file beside `target`, check it, rename it into place."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        with os.fdopen(fd, "wb") as out, _open(url, timeout) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with _progress_bar(target.name, expected, show) as advance:
                while True:
                    try:
                        block = response.read(CHUNK)
                    except http.client.IncompleteRead as err:  # newer Pythons raise on a cut
                        block, expected = err.partial, received + len(err.partial) + err.expected
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    advance(len(block))
        # http.client does not raise when a server closes early: compare with the header
        if expected is not None and received != expected:
            raise _Failed(f"connection closed after {received:,} of {expected:,} bytes")
        if digest.hexdigest() != md5:
            raise _Failed(f"checksum mismatch: got MD5 {digest.hexdigest()}, expected {md5}")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, target)
    except _Failed:
        tmp.unlink(missing_ok=True)
        raise
    except (OSError, http.client.HTTPException) as err:
        tmp.unlink(missing_ok=True)
        raise _Failed(_describe(err, timeout)) from None
    except BaseException:  # Ctrl-C included: never leave a partial file
        tmp.unlink(missing_ok=True)
        raise


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": "groundup-fetch"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http(s) URLs only)


def _describe(err: BaseException, timeout: float) -> str:
    """A short human reading of a network error."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        reason = err.reason
        if isinstance(reason, socket.timeout | TimeoutError):
            return f"no answer within {timeout:g} s"
        return f"cannot connect ({getattr(reason, 'strerror', None) or reason})"
    if isinstance(err, socket.timeout | TimeoutError):
        return f"no data for {timeout:g} s"
    if isinstance(err, http.client.HTTPException):
        return f"bad HTTP response ({type(err).__name__}: {err})"
    return f"{getattr(err, 'strerror', None) or err}"


@contextmanager
def _progress_bar(label: str, total: int | None, show: bool) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n_bytes)`: a rich progress bar on stderr, or a no-op when not `show`."""
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with Progress(*columns, TransferSpeedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
