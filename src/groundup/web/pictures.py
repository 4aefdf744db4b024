"""Small pictures for the web page: digits, weights and gradients as PNG data URIs.

A PNG of a 28×28 image is a few hundred bytes, so the server sends pictures ready
to show, instead of hundreds of numbers per update.

Weights and gradients have a sign, so they use a diverging scale: white is 0,
blue is positive, red is negative, and the colour is full at the largest |value|
shown. For the article's pair, a positive weight on a pixel means "ink here
says the first digit" (label 1), a negative one "ink here says the second".
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

SIDE = 28  # MNIST images are 28×28
# The two ends of the diverging scale (RGB); the middle is white.
POSITIVE = np.array([33, 102, 172], dtype=np.float64)  # blue
NEGATIVE = np.array([178, 24, 43], dtype=np.float64)  # red
WHITE = np.array([255, 255, 255], dtype=np.float64)


def png_data_uri(pixels: np.ndarray) -> str:
    """A uint8 (H, W) gray or (H, W, 3) RGB array as a `data:image/png;base64,...` URI."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def gray_png(pixels: np.ndarray) -> str:
    """An image as a PNG: floats in [0, 1] (or uint8 0..255), drawn as MNIST stores it,
    white ink (255) on black (0)."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return png_data_uri(arr.reshape(SIDE, SIDE))


def diverging_rgb(values: np.ndarray, scale: float) -> np.ndarray:
    """(H, W) numbers -> (H, W, 3) uint8: white at 0, blue up to +scale, red down to -scale."""
    t = np.clip(np.asarray(values, dtype=np.float64) / max(scale, 1e-12), -1.0, 1.0)  # (H, W)
    pos = t[..., None].clip(0, 1)  # (H, W, 1): how far towards blue
    neg = (-t[..., None]).clip(0, 1)  # (H, W, 1): how far towards red
    rgb = WHITE + pos * (POSITIVE - WHITE) + neg * (NEGATIVE - WHITE)  # (H, W, 3)
    return rgb.round().astype(np.uint8)


LEVELS = 255  # shades of the diverging scale in a tile picture; index 255 is the gaps
GAP = LEVELS


def _palette() -> list[int]:
    """The PNG palette: LEVELS colours from -1 (red) through 0 (white) to +1 (blue),
    then white for the gaps between tiles."""
    shades = diverging_rgb(np.linspace(-1.0, 1.0, LEVELS)[None, :], 1.0)[0]  # (LEVELS, 3)
    return shades.ravel().tolist() + [255, 255, 255]


PALETTE = _palette()


def tiles_png(columns: np.ndarray, max_tiles: int = 32, per_row: int = 8) -> tuple[str, int, float]:
    """Each column of a (784, k) matrix as a 28×28 tile, side by side in one PNG.

    Used for the weights of each output (or hidden unit) and for their gradients.
    All tiles share one scale, the largest |value| shown, so they compare fairly.
    The picture is a palette PNG, one byte a pixel, about a third the size of RGB:
    it is sent up to ten times a second. Returns (data URI, tiles shown, the scale).
    """
    cols = np.asarray(columns, dtype=np.float64)  # (784, k)
    k = min(cols.shape[1], max_tiles)
    cols = cols[:, :k]
    scale = float(np.abs(cols).max()) if cols.size else 1.0
    t = np.clip(cols / max(scale, 1e-12), -1.0, 1.0)  # (784, k) in [-1, 1]
    shade = np.round((t + 1.0) / 2.0 * (LEVELS - 1)).astype(np.uint8)  # palette indices
    n_rows = -(-k // per_row)  # ceil
    n_cols = min(k, per_row)
    gap = 2  # pixels between tiles
    canvas = np.full((n_rows * (SIDE + gap) - gap, n_cols * (SIDE + gap) - gap), GAP, np.uint8)
    for i in range(k):
        r, c = divmod(i, per_row)
        top, left = r * (SIDE + gap), c * (SIDE + gap)
        canvas[top : top + SIDE, left : left + SIDE] = shade[:, i].reshape(SIDE, SIDE)
    img = Image.frombytes("P", (canvas.shape[1], canvas.shape[0]), canvas.tobytes())
    img.putpalette(PALETTE)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return uri, k, scale


def histogram(now: np.ndarray, start: np.ndarray, bins: int = 40) -> dict[str, list[float]]:
    """Counts of the weights now and at the start, over the same bins.

    The range is symmetric around 0 and covers both, so the two shapes compare
    directly: training usually spreads the weights out from where init put them.
    """
    now = np.asarray(now, dtype=np.float64).ravel()
    start = np.asarray(start, dtype=np.float64).ravel()
    top = float(max(np.abs(now).max(initial=0.0), np.abs(start).max(initial=0.0), 1e-6))
    edges = np.linspace(-top, top, bins + 1)
    return {
        "edges": [round(float(e), 5) for e in edges],
        "now": np.histogram(now, edges)[0].tolist(),
        "start": np.histogram(start, edges)[0].tolist(),
    }
