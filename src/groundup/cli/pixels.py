"""`groundup data show`: one image as the article shows it, a 28x28 table of its pixel
values shaded by value, and optionally as a PNG file, enlarged.

The `data` command's options are in data.py; this module is what `show` does with
them. Heavy imports (numpy, rich, Pillow) happen inside the functions.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from groundup.errors import DataError, UsageError

if TYPE_CHECKING:
    import numpy as np

    from groundup.data.sources import RawData


def _pick(raw: RawData, split: str, digit: int | None, index: int) -> int:
    """The row in `split` of the `index`-th image (of `digit`, when given)."""
    import numpy as np

    _, labels = raw.split(split)
    if digit is None:
        rows, what = np.arange(len(labels)), f"{len(labels):,} images"
    else:
        rows = np.flatnonzero(labels == digit)
        if len(rows) == 0:
            raise DataError(f"the {split} split of {raw.name!r} has no digit {digit}")
        what = f"{len(rows):,} images of digit {digit}"
    if not 0 <= index < len(rows):
        raise UsageError(
            f"--index {index} is out of range: the {split} split has {what} (0 to {len(rows) - 1})"
        )
    return int(rows[index])


def pixel_table(image: np.ndarray) -> object:
    """A rich Text: the 28×28 values, each cell on a gray background of its own value."""
    from rich.text import Text

    text = Text()
    text.append("    " + "".join(f"{c:>4}" for c in range(image.shape[1])) + "\n", style="dim")
    for r, row in enumerate(image):
        text.append(f"{r:>3} ", style="dim")
        for v in row.tolist():
            ink = "black" if v > 127 else "grey70"  # readable on both dark and light cells
            text.append(f"{v:>4}", style=f"{ink} on rgb({v},{v},{v})")
        text.append("\n")
    return text


def cmd_show(args: argparse.Namespace) -> int:
    """One image as its table of pixel values; optionally a PNG of it."""
    import json

    from rich.markup import escape

    from groundup.cli import rich_console
    from groundup.data.sources import load_source

    if args.png is not None:
        _check_png_target(args.png, args.scale)
    raw = load_source(args.data)
    row = _pick(raw, args.split, args.digit, args.index)
    images, labels = raw.split(args.split)
    image = images[row]  # (28, 28) uint8
    if args.json:
        if args.png is not None:
            _write_png(image, args.png, args.scale)
        print(json.dumps({
            "source": raw.name, "split": args.split, "index": row, "label": int(labels[row]),
            "pixels": image.tolist(), "png": None if args.png is None else str(args.png),
        }))  # fmt: skip
        return 0
    console = rich_console()
    console.print(
        f"[bold]{escape(raw.name)}[/], {args.split} image {row}: digit {int(labels[row])} "
        f"(pixels 0-255: 0 is the black background, 255 full ink)",
        soft_wrap=True,
    )
    console.print(pixel_table(image), soft_wrap=True)  # soft_wrap: never fold the 116 columns
    if args.png is not None:
        _write_png(image, args.png, args.scale)
        console.print(f"wrote {escape(str(args.png))}", soft_wrap=True)
    return 0


def _check_png_target(path: Path, scale: int) -> None:
    """Catch a bad --png before any work, so that nothing is written on error."""
    from PIL import Image

    if not 1 <= scale <= 100:
        raise UsageError(f"--scale must be between 1 and 100, not {scale}")
    if path.suffix.lower() not in Image.registered_extensions():
        raise UsageError(f"--png {path}: unknown image type {path.suffix!r}; use a .png name")
    if not path.parent.is_dir():
        raise UsageError(f"--png {path}: no such folder {path.parent}")


def _write_png(image: np.ndarray, path: Path, scale: int) -> None:
    """Save `image` enlarged `scale` times (sharp squares, not blurred), atomically."""
    import io

    from PIL import Image

    from groundup.atomic import atomic_write_bytes

    size = (image.shape[1] * scale, image.shape[0] * scale)
    picture = Image.fromarray(image).resize(size, Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format=Image.registered_extensions()[path.suffix.lower()])
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as err:
        raise DataError(f"cannot write {path}: {err.strerror or err}") from None
