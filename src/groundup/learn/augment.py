"""Augmentation: small random shifts, rotations and scalings of each training batch.

A digit turned by a few degrees, moved by a pixel or written a little larger is
still the same digit, so showing the model such variants is like having more
training images. With only 400 images per digit in the bundled sample, this is
what lifts the ten-digit `net` and `cnn` past the peers (see docs/ten-digits.md).

The whole batch is transformed at once, as tensor operations, not image by image:
one affine matrix per image is drawn, one product turns the (B, 2, 3) matrices into
a sampling grid (what `F.affine_grid` computes), and `F.grid_sample` reads every
image through it.

For an output pixel at (x, y), in coordinates running from -1 to 1 across the
image, the pixel read from the input is

    (x_in, y_in) = R(-angle) (x, y) / scale + (dx, dy)

so the digit appears turned by `angle`, enlarged by `scale` and moved by
-(dx, dy). Pixels read from outside the image are 0, the background.

Validation never goes through here: `before_batch` only runs on training batches.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from groundup.learn.learner import Learner

SIDE = 28  # images are 28x28, stored flattened as 784 values


def random_affine(
    n: int,
    generator: torch.Generator,
    degrees: float = 12.0,
    shift: float = 2.0,
    scale: float = 0.1,
) -> Tensor:
    """(n, 2, 3) affine matrices for `augment_batch`, each drawn independently.

    angle ~ U(-degrees, degrees), dx, dy ~ U(-shift, shift) pixels,
    scale ~ U(1 - scale, 1 + scale). A pixel is 2 / 28 in grid coordinates.
    """
    u = torch.rand(n, 4, generator=generator, device=generator.device) * 2 - 1  # (n, 4) in [-1, 1)
    angle = u[:, 0] * math.radians(degrees)  # (n,)
    dx, dy = (u[:, 1] * shift * 2 / SIDE), (u[:, 2] * shift * 2 / SIDE)  # (n,) each
    zoom = 1 + u[:, 3] * scale  # (n,)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom  # (n,) each
    row1 = torch.stack([cos, sin, dx], dim=1)  # (n, 3)
    row2 = torch.stack([-sin, cos, dy], dim=1)  # (n, 3)
    return torch.stack([row1, row2], dim=1)  # (n, 2, 3)


def augment_batch(x: Tensor, theta: Tensor) -> Tensor:
    """Apply the affine matrices `theta` (B, 2, 3) to the flattened images x (B, 784).

    The sampling grid is every output pixel's (x, y, 1) times theta transposed:
    (784, 3) @ (B, 3, 2) -> (B, 784, 2), where each output pixel reads from. This is
    `F.affine_grid`'s arithmetic as one broadcast product: 3-4x faster on the CPU than
    `F.affine_grid`, which rebuilds the (x, y, 1) grid for every image of every call.
    Bilinear interpolation keeps pixels within [0, 1]. Returns (B, 784).
    """
    b = x.shape[0]
    images = x.reshape(b, 1, SIDE, SIDE)  # (B, 1, 28, 28)
    grid = pixel_grid(x.device, x.dtype) @ theta.to(x).transpose(1, 2)  # (B, 784, 2)
    out = F.grid_sample(
        images, grid.view(b, SIDE, SIDE, 2), mode="bilinear", padding_mode="zeros",
        align_corners=False,
    )  # fmt: skip
    return out.reshape(b, SIDE * SIDE)  # (B, 784)


_GRIDS: dict[tuple[torch.device, torch.dtype], Tensor] = {}


def pixel_grid(device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """(784, 3): each pixel's centre (x, y, 1), row by row, x and y running from -1 to 1
    across the image (pixel i's centre at (2i + 1) / 28 - 1). Made once per device and
    dtype, outside inference mode, so that a grid first made while predicting still
    serves a training batch."""
    key = (torch.device(device), dtype)
    if key not in _GRIDS:
        with torch.inference_mode(False):
            c = (torch.arange(SIDE, dtype=torch.float32, device=device) * 2 + 1) / SIDE - 1
            ys, xs = torch.meshgrid(c, c, indexing="ij")  # (28, 28) each
            ones = torch.ones_like(c).repeat(SIDE)
            _GRIDS[key] = torch.stack([xs.flatten(), ys.flatten(), ones], 1).to(dtype)
    return _GRIDS[key]


class Augment:
    """A callback that replaces each training batch `learn.xb` by a transformed copy.

    Defaults: rotation within ±12 degrees, shift within ±2 pixels, scaling within
    ±10%. `seed` seeds its own generator, so a run repeats exactly.
    """

    def __init__(
        self, seed: int = 0, degrees: float = 12.0, shift: float = 2.0, scale: float = 0.1
    ) -> None:
        self.seed = seed
        self.degrees, self.shift, self.scale = degrees, shift, scale
        self.generator = torch.Generator().manual_seed(seed)

    def before_batch(self, learn: Learner) -> None:
        xb = learn.xb  # (B, 784)
        if xb.ndim != 2 or xb.shape[1] != SIDE * SIDE:
            return  # not 28x28 images: leave the batch alone
        if self.generator.device != xb.device and xb.device.type == "cuda":
            # draw where the batch is: no copy from the host per batch
            self.generator = torch.Generator(xb.device).manual_seed(self.seed)
        theta = random_affine(len(xb), self.generator, self.degrees, self.shift, self.scale)
        learn.xb = augment_batch(xb, theta)

    def __repr__(self) -> str:
        return f"Augment(±{self.degrees:g}°, ±{self.shift:g} px, ±{self.scale:.0%} scale)"
