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
