"""`show_image` and `plot_function`: the article's two ways of drawing.

Both draw with matplotlib's pyplot (a notebook shows the figure under the cell) and
return the Axes, so a reader can add a title or draw more on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np


def show_image(
    im: Any,
    ax: Any = None,
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
    cmap: str = "Greys",
    **kwargs: Any,
) -> Any:
    """Draw one image: a tensor of (784,), (28, 28), (1, 28, 28) or (H, W, 3), a PIL
    image or an array. Returns the matplotlib Axes.

    A flat row of N pixels is drawn as a square, sqrt(N) on a side. A one-channel
    image is drawn in shades of grey, fastai's default: more ink is darker.
    """
    import matplotlib.pyplot as plt

    arr = _as_array(im)
    if ax is None:
        _, ax = plt.subplots(figsize=figsize or (3, 3))
    ax.imshow(arr, cmap=cmap if arr.ndim == 2 else None, **kwargs)
    if title is not None:
        ax.set_title(title)
    ax.axis("off")
    return ax


def _as_array(im: Any) -> np.ndarray:
    """The image as a numpy array of (H, W) or (H, W, C)."""
    if hasattr(im, "detach"):  # a torch tensor, perhaps with a gradient or on a GPU
        im = im.detach().cpu().numpy()
    arr = np.asarray(im)
    if arr.ndim == 1:
        side = math.isqrt(arr.size)
        if side * side != arr.size:
            raise ValueError(f"show_image: {arr.size} pixels do not make a square image")
        return arr.reshape(side, side)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)  # channels first (torch's C, H, W) -> H, W, C
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise ValueError(f"show_image: cannot draw an array of shape {arr.shape} as an image")
    return arr


def plot_function(
    f: Callable[[Any], Any],
    title: str | None = None,
    min: float = -2.1,
    max: float = 2.1,
    *,
    tx: str | None = None,
    ty: str | None = None,
    figsize: tuple[float, float] = (6, 4),
) -> Any:
    """Draw y = f(x) for x from `min` to `max`; returns the Axes.

    `f` gets a tensor of 100 points, so `torch.sigmoid`, `F.relu` and Python
    functions of x all work. fastbook's form `plot_function(f, 'x', 'x**2')`, two
    strings after `f`, labels the x and y axes.
    """
    import matplotlib.pyplot as plt
    import torch

    if isinstance(min, str):  # fastbook: plot_function(f, 'x label', 'y label')
        tx, ty, title, min = title, min, None, -2.1
    x = torch.linspace(min, max, 100)
    y = f(x)
    if hasattr(y, "detach"):
        y = y.detach()
    _, ax = plt.subplots(figsize=figsize)
    ax.plot(x.numpy(), np.asarray(y))
    if tx is not None:
        ax.set_xlabel(tx)
    if ty is not None:
        ax.set_ylabel(ty)
    if title is not None:
        ax.set_title(title)
    return ax
