"""Writing files so that a crash never leaves half of one.

Everything groundup writes (models, reports, figures, caches, downloads) goes to a
temporary file in the same directory first, and is renamed over the target only
once complete: a rename within a directory is atomic, so a reader sees the old file
or the new one, never a mix.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(path: str | os.PathLike[str], mode: int = 0o644) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for writing; on success it replaces `path`.

    On any error the temporary file is removed and `path` is left as it was.
    `mode` sets the permissions (mkstemp would leave 0600, unreadable to others).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    with atomic_file(path) as f:
        f.write(data)


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Fill a temporary folder beside `path`; on success it takes `path`'s place.

    An existing folder at `path` is swapped out and removed only once the new one is
    complete, so a reader finds the old folder or the new one, never a mix of files.
    On any error the temporary folder is removed and `path` is left as it was.
    The caller decides whether an existing `path` may be replaced.
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700
        if not path.exists():
            os.replace(tmp, path)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        try:
            os.replace(path, old / path.name)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old / path.name, path)  # put the old folder back
                raise
        finally:
            if path.exists():  # never remove the old folder unless one stands at `path`
                shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
