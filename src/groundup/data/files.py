"""Opening a user's file to read it: regular files only, so that nothing can hang us.

`open()` on a named pipe (FIFO) waits for a writer, forever; a device can stream
without end. Every file groundup reads from a user (IDX files, images, a CSV) is
opened here: without blocking, then checked to be a regular file by the open
descriptor itself (no gap for the path to change in between).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from groundup.errors import DataError


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open `path` for reading in binary; a `DataError` unless it is a regular file."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: opening a FIFO returns at once
    except FileNotFoundError:
        raise DataError(f"no such file or directory: {path}") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a file") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise DataError(f"{path} is a folder, not a file")
        if not stat.S_ISREG(mode):
            raise DataError(f"{path} is not a regular file (a pipe, socket or device): not read")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # back to ordinary reads
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
