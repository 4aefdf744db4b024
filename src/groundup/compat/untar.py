"""`URLs` and `untar_data`, offline: MNIST image folders built from groundup's data.

fastai downloads an archive and unpacks it. groundup writes the same folder layout
from the digits it already has, so a reader's `path = untar_data(URLs.MNIST)` works
without a network:

  URLs.MNIST          training/<digit>/*.png and testing/<digit>/*.png, all ten digits
  URLs.MNIST_SAMPLE   train/{3,7} and valid/{3,7}
  URLs.MNIST_TINY     train/{3,7} and valid/{3,7}, at most TINY_PER_DIGIT images each

Each folder is built once, from the best source present (the full MNIST after
`groundup fetch mnist`, else the bundled 5,000-digit sample), into
`<cache>/untar_data/<source>/<name>`: a temporary folder filled and then renamed, so
a reader never sees half a folder. Training images come from the source's training
split and the others from its test (validation) split. The images are 28×28 8-bit
grayscale PNGs, white ink on black, as MNIST's are.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path as StdPath

from groundup.compat.paths import Path
from groundup.errors import DataError, UsageError

TINY_PER_DIGIT = 350  # images per digit and split in MNIST_TINY (fastai's has ~350)
# the sources `untar_data` can build from, best first
SOURCES = ("mnist", "sample")


class URLs:
    """The archive addresses fastai knows for MNIST; `untar_data` knows these three."""

    MNIST = "https://s3.amazonaws.com/fast-ai-imageclas/mnist_png.tgz"
    MNIST_SAMPLE = "https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz"
    MNIST_TINY = "https://s3.amazonaws.com/fast-ai-sample/mnist_tiny.tgz"


@dataclass(frozen=True)
class Layout:
    """What one archive holds: its folder name, split folder names, digits, size cap."""

    folder: str
    train: str
    valid: str
    digits: tuple[int, ...]
    per_digit: int | None = None  # None: every image the source has


LAYOUTS: dict[str, Layout] = {
    URLs.MNIST: Layout("mnist_png", "training", "testing", tuple(range(10))),
    URLs.MNIST_SAMPLE: Layout("mnist_sample", "train", "valid", (3, 7)),
    URLs.MNIST_TINY: Layout("mnist_tiny", "train", "valid", (3, 7), TINY_PER_DIGIT),
}


def untar_data(url: str, *, force_download: bool = False) -> Path:
    """The folder for `url`, built on first use; returns its `Path`.

    `force_download=True` rebuilds it. When the bundled sample stands in for the full
    MNIST, one line on stderr says so and how to get the full set.
    """
    layout = LAYOUTS.get(url)
    if layout is None:
        known = ", ".join(f"URLs.{k}" for k, v in vars(URLs).items() if v in LAYOUTS)
        raise UsageError(f"untar_data: groundup knows only {known}; not {url!r}")
    from groundup.data.sources import cache_dir

    source = best_source()
    dest = cache_dir() / "untar_data" / source / layout.folder
    if force_download or not dest.is_dir():
        _build(layout, source, dest, replace=force_download)
    if source == "sample":
        print(
            "untar_data: using groundup's bundled sample (5,000 MNIST digits) in place of "
            "the full MNIST; run 'groundup fetch mnist' for all 70,000",
            file=sys.stderr,
        )
    return Path(dest)


def best_source() -> str:
    """ "mnist" when `groundup fetch mnist` has run, else "sample" (bundled, offline)."""
    from groundup.data.sources import locate

    try:
        locate("mnist")
        return "mnist"
    except DataError:
        pass
    try:
        locate("sample")
    except DataError as err:  # no bundled sample either: say what would fix it, never wait
        raise DataError(
            f"untar_data: no MNIST data to build from: the full set is not downloaded and {err}"
            "; or, where there is a network, run 'groundup fetch mnist'"
        ) from None
    return "sample"


def _build(layout: Layout, source: str, dest: StdPath, replace: bool = False) -> None:
    """Write the layout's PNGs into a temporary folder beside `dest`, then rename it.

    If `dest` appears meanwhile (another process built it first), that folder is kept
    and ours dropped, unless `replace`: then the old folder is moved aside, ours put in
    its place, and the old one removed, so `dest` is always one whole folder.
    """
    from groundup.data.sources import load_source, write_image_folder

    write_image_folder(
        load_source(source),
        dest,
        lambda build, dest: _put_in_place(build, dest, replace),
        folders=(layout.train, layout.valid),
        digits=layout.digits,
        per_digit=layout.per_digit,
        what="untar_data: ",
    )


def _put_in_place(build: StdPath, dest: StdPath, replace: bool) -> None:
    """Rename the finished `build` folder to `dest` (see `_build` for an existing `dest`)."""
    if dest.is_dir() and not replace:
        shutil.rmtree(build)  # another process finished first: use its folder
        return
    if not dest.exists():
        try:
            os.replace(build, dest)
            return
        except OSError:  # another process got there between the check and the rename
            if not dest.is_dir():
                raise
            shutil.rmtree(build)
            return
    old = StdPath(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".old"))
    os.replace(dest, old / dest.name)
    os.replace(build, dest)
    shutil.rmtree(old)
