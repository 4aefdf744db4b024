"""Everything the article's code uses, for readers who type it as written.

The article, and fastbook's chapter 4 that it retells, begin with
`from fastai.vision.all import *`. Swap that one line for::

    from groundup.all import *

and the rest runs as written, offline, on groundup, with no fastai installed.

This is a plain module of imports. It patches nothing (not torch, numpy, pandas or
pathlib), and a name a reader defines in their own notebook after the star import
(their own `mnist_loss`, `train_epoch`, ...) takes the place of ours, as with fastai.
The adapters live in `groundup.compat`; docs/coming-from-fastai.md maps every name.
"""

# ruff: noqa: F401  (every import here is an export)
from __future__ import annotations

# -- the libraries the article calls by their usual short names -----------------------------
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from numpy import array
from PIL import Image
from torch import nn

# -- the article's own steps (its names, groundup's implementations) ------------------------
from groundup.compat.learner import SGD, Learner
from groundup.compat.loaders import DataLoader, DataLoaders
from groundup.compat.paths import L, Path, first
from groundup.compat.show import plot_function, show_image
from groundup.compat.tensors import tensor
from groundup.compat.untar import URLs, untar_data
from groundup.errors import DataError, GroundupError, UsageError
from groundup.learn.losses import batch_accuracy, mnist_loss, sigmoid
from groundup.learn.models import simple_net
from groundup.learn.optim import BasicOptim
from groundup.learn.steps import (
    calc_grad,
    init_params,
    linear1,
    train_epoch,
    train_model,
    validate_epoch,
)

__all__ = [
    # libraries
    "torch", "nn", "F", "np", "array", "Image", "pd", "matplotlib", "plt",
    # fastai's vocabulary
    "tensor", "Path", "L", "first", "untar_data", "URLs", "DataLoader", "DataLoaders",
    "SGD", "Learner", "show_image", "plot_function",
    # the article's steps
    "init_params", "linear1", "sigmoid", "mnist_loss", "batch_accuracy", "calc_grad",
    "train_epoch", "validate_epoch", "train_model", "BasicOptim", "simple_net",
    # groundup's errors, to catch them by name
    "GroundupError", "DataError", "UsageError",
]  # fmt: skip
