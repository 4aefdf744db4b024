"""Hostile inputs for the trust tests (issue 12): image bombs, odd image modes, IDX lies."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height gray pixels, with a few bytes of
    data: what a decompression bomb looks like before it is decoded (under 100 bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    idat = zlib.compress(b"\0" * 1024)  # the first rows only; a decoder would go on
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def lab_tiff() -> bytes:
    """A TIFF in Pillow's LAB mode, which it cannot convert to RGB or gray."""
    buf = io.BytesIO()
    Image.new("LAB", (28, 28), (50, 0, 0)).save(buf, format="TIFF")
    return buf.getvalue()


def digit_array(low: float, high: float, dtype: str) -> np.ndarray:
    """A 28x28 'digit' (a bar) of value `high` on a background of `low`."""
    a = np.full((28, 28), low, dtype=dtype)
    a[6:22, 12:16] = high
    return a


def tiff_of(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="TIFF")
    return buf.getvalue()
