"""`tensor`: fastai's one-word way to make a tensor from whatever is at hand."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor


def tensor(x: Any, *more: Any, **kwargs: Any) -> Tensor:
    """A tensor from a PIL image, an array, a number, or a (nested) list of them.

    - a tensor is returned as it is;
    - `tensor(1, 2, 3)` is `tensor([1, 2, 3])`;
    - a list or tuple of tensors is stacked (each must have the same shape);
    - a PIL image becomes its pixel array, (H, W) or (H, W, C), in its own dtype:
      an MNIST PNG gives uint8 (28, 28), values 0 to 255, as fastai's does;
    - anything else goes through `torch.tensor` (numbers, nested lists) or numpy.

    `kwargs` (dtype=..., device=...) are passed on to torch.
    """
    if more:
        x = (x, *more)
    if isinstance(x, Tensor):
        return x.to(**kwargs) if kwargs else x
    if isinstance(x, list | tuple):
        if x and all(isinstance(o, Tensor) for o in x):
            return torch.stack(list(x)).to(**kwargs)
        return torch.tensor(x, **kwargs)
    if isinstance(x, numbers.Number):
        return torch.tensor(x, **kwargs)
    # PIL images, numpy arrays and anything else numpy understands; np.array copies,
    # so the tensor is writable and owns its memory (a PIL buffer is read-only)
    arr = np.array(x)
    if arr.dtype == object:
        raise TypeError(f"tensor: cannot make a tensor from {type(x).__name__}")
    return torch.from_numpy(arr).to(**kwargs) if kwargs else torch.from_numpy(arr)
