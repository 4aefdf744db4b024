"""`Path` with `.ls()`, the `L` list it returns, and `first`.

fastai adds `ls` to `pathlib.Path` itself (a monkey-patch). groundup does not patch
the standard library: its `Path` is a subclass of the platform's concrete path class
(`PosixPath` or `WindowsPath`). Every path derived from one of ours (`path/'train'`,
`.parent`, the items of `.ls()`) is one of ours too, so a reader who starts from
`untar_data(...)` or `Path(...)` never meets a path without `ls`.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

# How many items an `L` shows before "...": enough for a folder listing, short enough
# for a notebook cell.
SHOWN_ITEMS = 10


class L(list):
    """A list that prints its length first, `(#3) [a, b, c]`, as fastai's `L` does.

    `L(iterable)` holds its items; `L(a, b, c)` holds a, b and c; `L(None)` is empty,
    and `L(x)` of a single non-iterable (or a string) holds just x.
    """

    def __init__(self, items: Any = None, *more: Any) -> None:
        if more:
            items = (items, *more)
        if items is None:
            items = ()
        elif isinstance(items, str | bytes | pathlib.PurePath) or not isinstance(items, Iterable):
            items = (items,)
        super().__init__(items)

    def __getitem__(self, i: Any) -> Any:
        got = super().__getitem__(i)
        return L(got) if isinstance(i, slice) else got

    def sorted(self, key: Callable[[Any], Any] | None = None, reverse: bool = False) -> L:
        """A sorted copy (the original is left as it is)."""
        return L(sorted(self, key=key, reverse=reverse))

    def map(self, f: Callable[[Any], Any]) -> L:
        return L(f(o) for o in self)

    def filter(self, f: Callable[[Any], bool]) -> L:
        return L(o for o in self if f(o))

    def itemgot(self, i: Any) -> L:
        """Item `i` of every element: `L(learn.recorder.values).itemgot(2)` is a column."""
        return L(o[i] for o in self)

    def __repr__(self) -> str:
        shown = ", ".join(repr(o) for o in list.__getitem__(self, slice(SHOWN_ITEMS)))
        more = ", ..." if len(self) > SHOWN_ITEMS else ""
        return f"(#{len(self)}) [{shown}{more}]"


class Path(type(pathlib.Path())):  # type: ignore[misc]  # PosixPath or WindowsPath
    """`pathlib.Path` plus `ls()`, and a repr relative to `Path.BASE_PATH` when set.

    `Path.BASE_PATH = path` makes listings under `path` print short:
    `Path('training/3')` rather than the whole cache path.
    """

    BASE_PATH: ClassVar[pathlib.Path | None] = None

    def ls(
        self, n_max: int | None = None, file_type: str | None = None, file_exts: Any = None
    ) -> L:
        """The entries of this folder as an `L` (in the file system's order).

        `file_exts` keeps names ending in those extensions (".png" or [".png", ".jpg"]);
        `file_type` keeps files whose MIME type starts with it ("image"); `n_max` stops
        after that many.
        """
        if not self.is_dir():
            raise NotADirectoryError(f"ls: {self} is not a folder")
        exts = (file_exts,) if isinstance(file_exts, str) else tuple(file_exts or ())
        found: list[Path] = []
        for entry in self.iterdir():
            if exts and entry.suffix.lower() not in exts:
                continue
            if file_type is not None and not _mime(entry).startswith(file_type):
                continue
            found.append(entry)
            if n_max is not None and len(found) >= n_max:
                break
        return L(found)

    def __repr__(self) -> str:
        base = type(self).BASE_PATH
        shown = self
        if base is not None:
            try:
                shown = self.relative_to(base)
            except ValueError:  # not under BASE_PATH: show it whole
                pass
        return f"Path({shown.as_posix()!r})"


def _mime(path: pathlib.Path) -> str:
    import mimetypes

    return mimetypes.guess_type(path.name)[0] or ""


def first(items: Iterable[Any], f: Callable[[Any], bool] | None = None) -> Any:
    """The first item of `items` (for which `f` is true, if given), or None if there is none.

    `xb, yb = first(dl)` is one mini-batch of a DataLoader.
    """
    it: Iterator[Any] = iter(items) if f is None else (o for o in items if f(o))
    return next(it, None)
