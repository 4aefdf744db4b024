"""Writing files so that a crash never leaves half of one.

Everything groundup writes (models, reports, figures, caches, downloads) goes to a
temporary file in the same directory first, and is renamed over the target only
once complete: a rename within a directory is atomic, so a reader sees the old file
or the new one, never a mix. The file, then its folder, is flushed to disk
(`fsync`) before and after the rename, so that a power cut cannot undo the order.

A run folder is replaced whole (`atomic_dir`): the new folder is filled beside it,
then the two are swapped in one step (Linux's `renameat2(RENAME_EXCHANGE)`), so that
at every instant the path holds the old run or the new one. Where the swap is not
available, two renames are used, and a crash between them leaves the old folder in
a hidden `.NAME.PID.XXXX.old/`, which `recover_dir` puts back.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (the names in it) to disk: makes a rename in it durable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # a folder that cannot be opened (Windows): nothing more we can do
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot flush a folder; the rename is still atomic
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: str | os.PathLike[str], mode: int = 0o644) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for writing; on success it replaces `path`.

    The temporary file has a name of its own (mkstemp), so two processes writing
    the same path never share one. On any error it is removed and `path` is left
    as it was. `mode` sets the permissions (mkstemp would leave 0600).
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
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    with atomic_file(path) as f:
        f.write(data)


# -- whole folders -------------------------------------------------------------------------

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100
_renameat2: Callable[..., int] | None | bool = False  # False: not looked up yet


def exchange(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Swap two existing paths in one atomic step; False where the system cannot.

    Linux's `renameat2(..., RENAME_EXCHANGE)` (kernel 3.15, glibc 2.28); other
    systems, and file systems without it, get False and the caller falls back.
    """
    global _renameat2
    if _renameat2 is False:
        _renameat2 = None
        if sys.platform.startswith("linux"):
            try:
                fn = ctypes.CDLL(None, use_errno=True).renameat2
                c_int, c_path = ctypes.c_int, ctypes.c_char_p
                fn.argtypes = [c_int, c_path, c_int, c_path, ctypes.c_uint]
                fn.restype = ctypes.c_int
                _renameat2 = fn
            except (OSError, AttributeError):
                pass
    if not callable(_renameat2):
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))


def _leftover_name(name: str, kind: str) -> tuple[str, str]:
    """mkdtemp's prefix and suffix for a leftover of `name`: `.NAME.PID.XXXX.kind`.

    The process id lets a later command tell a crashed save from one still running."""
    return f".{name}.{os.getpid()}.", f".{kind}"


def _sync_tree(folder: Path) -> None:
    """fsync every file in `folder` (one level: a run folder is flat), then the folder."""
    for entry in folder.iterdir():
        if entry.is_file() and not entry.is_symlink():
            fd = os.open(entry, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fsync_dir(folder)


def remove_owned(folder: Path, owned: Callable[[Path], bool] | None = None) -> list[Path]:
    """Remove `folder` and the entries in it that `owned` accepts (all when None).

    Returns the entries left behind (never removed: not ours); the folder then stays.
    """
    if owned is None:
        shutil.rmtree(folder, ignore_errors=True)
        return []
    kept = []
    for entry in folder.iterdir():
        if owned(entry):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        else:
            kept.append(entry)
    if not kept:
        try:
            folder.rmdir()
        except OSError:
            kept = list(folder.iterdir())  # something appeared meanwhile: leave it
    return kept


@contextmanager
def atomic_dir(
    path: str | os.PathLike[str], owned: Callable[[Path], bool] | None = None
) -> Iterator[Path]:
    """Fill a temporary folder beside `path`; on success it takes `path`'s place.

    At every instant `path` is the old folder or the new one: the two are swapped in
    one step where the system can (`exchange`), else by two renames whose gap
    `recover_dir` repairs. Files and folders are fsynced before and after.
    The old folder is then removed, but only the entries `owned` accepts (all when
    None): a file that appeared there meanwhile is left in the hidden old folder.
    On any error before the swap the temporary folder is removed and `path` is
    left as it was. The caller decides whether an existing `path` may be replaced.
    """
    path = Path(path)
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _leftover_name(path.name, "tmp")
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700
        _sync_tree(tmp)
        if not path.exists():
            os.replace(tmp, path)
            fsync_dir(parent)
            return
        if exchange(tmp, path):
            fsync_dir(parent)
            remove_owned(tmp, owned)  # the old folder, now at the temporary name
            return
        prefix, suffix = _leftover_name(path.name, "old")
        old = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
        try:
            os.replace(path, old / path.name)
        except BaseException:
            old.rmdir()
            raise
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old / path.name, path)  # put the old folder back
            old.rmdir()
            raise
        fsync_dir(parent)
        if not remove_owned(old / path.name, owned):
            old.rmdir()
    except BaseException:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers can only be from a save that has ended
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or we cannot tell: leave it alone
    return True


def recover_dir(
    path: str | os.PathLike[str], owned: Callable[[Path], bool] | None = None
) -> list[str]:
    """Repair what an interrupted `atomic_dir(path)` left beside `path`; says what it did.

    - `.NAME.PID.XXXX.old/NAME`: the old folder, moved away just before the new one
      took its place. If nothing stands at `path`, it is put back; else it is removed.
    - `.NAME.PID.XXXX.tmp/`: a new folder not yet swapped in, or the old one swapped
      out and not yet removed: removed.

    Leftovers of a process that is still running (a save in progress) are left alone,
    and only the entries `owned` accepts are ever removed.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:(\d+)\.)?[A-Za-z0-9_]+\.(tmp|old)")
    notes = []
    for entry in sorted(parent.iterdir()):
        m = pattern.fullmatch(entry.name)
        if m is None or not entry.is_dir() or entry.is_symlink():
            continue
        if m[1] is not None and _pid_alive(int(m[1])):
            continue
        if m[2] == "old":
            inner = entry / path.name
            if inner.is_dir() and not path.exists():
                os.replace(inner, path)
                fsync_dir(parent)
                entry.rmdir()
                notes.append(f"put back {path}, moved aside by a save that was interrupted")
                continue
            if inner.is_dir():
                left = remove_owned(inner, owned)
                if left:
                    notes.append(f"kept {inner}: it holds files groundup did not write")
                    continue
            if entry.exists():
                try:
                    entry.rmdir()
                except OSError:
                    notes.append(f"kept {entry}: it holds files groundup did not write")
                    continue
            notes.append(f"removed {entry.name}, left by a save that was interrupted")
        else:
            left = remove_owned(entry, owned)
            if left:
                notes.append(f"kept {entry}: it holds files groundup did not write")
            else:
                notes.append(f"removed {entry.name}, left by a save that was interrupted")
    return notes
