"""Image files ↔ 28×28 arrays, and the MNIST-style preparation of a user's own digit.

Two jobs, kept apart on purpose:

- `read_image` reads a file from a dataset folder as it is: grayscale uint8,
  resized to 28×28 if it is not already. No inversion, no centring: the folder is
  assumed to be MNIST-like already (white ink on black).
- `prepare_digit` turns a photo or a drawing into what an MNIST model expects,
  following the recipe of the MNIST paper (LeCun et al., 1998): the digit is
  scaled to fit a 20×20 box keeping its aspect ratio, then placed in a 28×28
  field so that its centre of mass is at the centre. A model trained on MNIST
  sees nothing else, so anything else (black ink on white paper, a digit in a
  corner) would be out of its world.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from groundup.data.files import open_regular
from groundup.errors import DataError

SIZE = 28  # MNIST images are 28×28
BOX = 20  # ... with the digit scaled to fit 20×20 inside
# Where the centre of mass lands, in pixel indices (row, col). Measured on the
# 5,000 MNIST digits of the sample: the mean is (13.99, 14.00), std 0.29.
CENTRE = 14.0
# Pixels fainter than this (on [0, 1], after removing the background) are not ink:
# JPEG noise and paper texture stay below it.
INK_THRESHOLD = 0.2
# If the brightest pixel stands less than this above the background, there is no digit.
MIN_CONTRAST = 0.1

ImageLike = str | os.PathLike | Image.Image | np.ndarray  # what prepare_digit accepts

# The most pixels an image may have: checked from its header, before decoding, so a
# small file cannot make us allocate gigabytes (a 24 KB PNG may be 13000x13000). 40
# million covers the photos of phone cameras (12 to 24 MP by default) with room.
MAX_PIXELS = 40_000_000
# prepare_digit shrinks larger images to this side before its float work: the digit
# ends up 20x20 anyway, and a 40 MP photo in float64 would take 320 MB per copy.
PREPARE_MAX_SIDE = 1024


class TooManyPixels(DataError):
    """An image with more pixels than allowed (`MAX_PIXELS`), refused before decoding."""


def open_image(
    source: str | os.PathLike[str] | bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    formats: Sequence[str] | None = None,
    name: str | None = None,
) -> Image.Image:
    """Open and decode an image from a file (a regular file only) or from bytes.

    The size is checked from the header before any pixel is decoded: over
    `max_pixels` raises `TooManyPixels`. `formats` limits the decoders Pillow may
    try (the web page accepts PNG only). Anything wrong is a `DataError` naming it.
    """
    name = name or (str(source) if not isinstance(source, bytes) else "the image")
    # Pillow warns about images over 89 MP as it opens them, before we can read their
    # size; we refuse those ourselves, with a clear error, so its warning is only noise.
    # (Set here, not once at import: a caller's `catch_warnings` may have dropped it.)
    warnings.filterwarnings("ignore", message="Image size .* could be decompression bomb")
    # ... and so are its notes on a damaged file ("Corrupt EXIF data"): the file then
    # reads, or fails with a DataError that names it.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
    try:
        f = io.BytesIO(source) if isinstance(source, bytes) else open_regular(source)
        with f, Image.open(f, formats=formats) as img:
            if img.width * img.height > max_pixels:
                raise TooManyPixels(
                    f"{name} is {img.width}x{img.height} pixels, more than the "
                    f"{max_pixels:,} groundup reads: shrink it first"
                )
            img.load()  # decode now, so a damaged file fails here and not later
            return img
    except UnidentifiedImageError:
        raise DataError(f"{name} is not an image file Pillow can read") from None
    except Image.DecompressionBombError:  # Pillow's own limit, met before ours is checked
        raise TooManyPixels(
            f"{name} has more than {max_pixels:,} pixels, the most groundup reads: shrink it first"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        # truncated or corrupt data
        raise DataError(f"cannot read image {name}: {err}") from None


def _open(path: str | os.PathLike[str]) -> Image.Image:
    """Open and decode an image file, or raise a `DataError` that names it."""
    return open_image(Path(path))


def _to_gray(img: Image.Image, name: str = "the image") -> Image.Image:
    """Grayscale ("L"); transparent pixels count as white paper.

    A canvas drawing is often black strokes on a transparent background, whose
    colour channels are all black: composited over white it becomes black on white.
    16-bit, 32-bit integer and float images are scaled by their own range (from 0,
    or from their minimum when it is negative, to their maximum): a cast to 8 bits
    would wrap them around. A mode Pillow cannot make gray (LAB) is a `DataError`.
    """
    try:
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(paper, rgba)
        if img.mode.startswith(("I", "F")):
            arr = np.asarray(img.convert("F") if img.mode.startswith("I;") else img)
            arr = arr.astype(np.float64)
            finite = arr[np.isfinite(arr)]
            low = min(0.0, float(finite.min())) if finite.size else 0.0
            high = float(finite.max()) if finite.size else 0.0
            arr = np.nan_to_num(arr, nan=low, posinf=high, neginf=low)
            scale = 255.0 / (high - low) if high > low else 0.0
            return Image.fromarray(((arr - low) * scale).round().astype(np.uint8))
        return img.convert("L")
    except (ValueError, OSError) as err:  # "conversion from LAB to L not supported"
        raise DataError(
            f"{name}: images in Pillow's mode {img.mode} cannot be read as grayscale ({err}); "
            "save it as an RGB or grayscale PNG or JPEG"
        ) from None


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as uint8 (28, 28) grayscale, resized if it is another size.

    For files in a dataset folder: the values are kept as they are (no inversion).
    """
    img = _to_gray(_open(path), str(path))
    if img.size != (SIZE, SIZE):
        img = img.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def _as_float_gray(img: ImageLike) -> tuple[np.ndarray, str]:
    """Any accepted input as float64 (H, W) in [0, 1], with a name for messages."""
    if isinstance(img, (str, os.PathLike)):
        return _gray_floats(_to_gray(_open(img), str(img))), str(img)
    if isinstance(img, Image.Image):
        if img.width * img.height > MAX_PIXELS:
            raise TooManyPixels(f"the image is {img.width}x{img.height} pixels: too large")
        return _gray_floats(_to_gray(img)), "the image"
    if isinstance(img, np.ndarray):
        arr = img
        if arr.ndim == 3 and arr.shape[0] == 1:  # (1, H, W), as a tensor often is
            arr = arr[0]
        colour = arr.ndim == 3 and arr.shape[-1] in (3, 4)  # (H, W, RGB[A])
        if not (arr.ndim == 2 or colour) or 0 in arr.shape:
            raise DataError(
                f"expected a grayscale (H, W) or colour (H, W, 3) array, not {arr.shape}"
            )
        if arr.size > MAX_PIXELS * (arr.shape[-1] if colour else 1):
            raise TooManyPixels(f"the array is {arr.shape}: too large for an image of a digit")
        kind = arr.dtype.kind
        if kind not in "biuf":  # bool, int, unsigned, float; not complex, object, text
            raise DataError(f"expected an array of numbers, not of {arr.dtype}")
        if colour:  # let Pillow weigh the channels
            as_u8 = arr if arr.dtype == np.uint8 else _float_to_u8(arr, kind in "iu")
            return _gray_floats(_to_gray(Image.fromarray(as_u8))), "the array"
        if kind == "b":
            return arr.astype(np.float64), "the array"
        return _float_to_u8(arr, kind in "iu").astype(np.float64) / 255.0, "the array"
    from groundup.errors import UsageError

    raise UsageError(
        f"expected an image file, a PIL image or a numpy array, not {type(img).__name__}"
    )


def _gray_floats(img: Image.Image) -> np.ndarray:
    """A gray ("L") image as float64 (H, W) in [0, 1], shrunk first if it is very large."""
    side = max(img.size)
    if side > PREPARE_MAX_SIDE:
        img = img.reduce(-(-side // PREPARE_MAX_SIDE))  # box average by a whole factor
    return np.asarray(img, dtype=np.float64) / 255.0


def _float_to_u8(arr: np.ndarray, integers: bool = False) -> np.ndarray:
    """Pixels to uint8: integers are 0..255; floats in [0, 1] are scaled by 255, larger
    ones taken as 0..255. Out of range values are clipped (not wrapped)."""
    arr = np.nan_to_num(np.asarray(arr, dtype=np.float64), posinf=255.0, neginf=0.0)
    if not integers and arr.size and arr.max() <= 1.0:
        arr = arr * 255.0
    return np.clip(arr.round(), 0, 255).astype(np.uint8)


def prepare_digit(img: ImageLike) -> np.ndarray:
    """Prepare a photo or drawing of one digit the way MNIST's were: float32 (28, 28) in [0, 1].

    1. grayscale, in [0, 1];
    2. invert if the ink is dark on a light background, which we tell from the
       border: its median is the background, and MNIST's background is black;
    3. subtract the background and stretch so the darkest ink becomes 1;
    4. crop to the bounding box of the ink (pixels above `INK_THRESHOLD`);
    5. scale to fit 20×20, keeping the aspect ratio;
    6. paste into 28×28 with the centre of mass at (14, 14), as MNIST did.

    Accepts a file path, a PIL image, or a numpy array ((H, W) or (H, W, 3|4);
    integers are 0..255, floats 0..1). Raises `DataError` when the file cannot be
    read or the image holds no ink.
    """
    gray, name = _as_float_gray(img)  # (H, W) in [0, 1]
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    background = float(np.median(border))
    if background > 0.5:  # light paper, dark ink: MNIST is the other way round
        gray = 1.0 - gray
        background = 1.0 - background
    ink = np.clip(gray - background, 0.0, None)
    if ink.size == 0 or ink.max() < MIN_CONTRAST:
        raise DataError(f"no ink found in {name}: it is one flat shade; draw or photograph a digit")
    ink /= ink.max()
    ink[ink < INK_THRESHOLD] = 0.0  # paper texture and JPEG noise are not ink
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # (h, w): the ink's box

    h, w = ink.shape
    scale = BOX / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    patch = Image.fromarray(ink.astype(np.float32))  # mode "F"
    patch = np.clip(np.asarray(patch.resize((new_w, new_h), Image.Resampling.LANCZOS)), 0, 1)
    # (new_h, new_w), both <= 20
    total = patch.sum()
    if total <= 0:  # resizing a tiny speck can blur it to nothing
        raise DataError(f"no ink found in {name}: the marks are too small to make a digit")
    cy = float((patch.sum(axis=1) * np.arange(new_h)).sum() / total)
    cx = float((patch.sum(axis=0) * np.arange(new_w)).sum() / total)
    # The top-left corner that puts the centre of mass on CENTRE, kept inside the field
    # (a lopsided digit is shifted less rather than cut).
    top = int(np.clip(round(CENTRE - cy), 0, SIZE - new_h))
    left = int(np.clip(round(CENTRE - cx), 0, SIZE - new_w))
    out = np.zeros((SIZE, SIZE), dtype=np.float32)  # (28, 28)
    out[top : top + new_h, left : left + new_w] = patch
    return out
