"""Step 1, initialising: the schemes that choose a layer's starting weights.

The article draws every weight from a standard normal (std 1.0) and asks whether
there is a better way. There is: with 784 inputs, std 1.0 makes the first
predictions of size ~sqrt(784 * 0.1) ~ 9, deep in the flat tails of the sigmoid,
where the gradient all but vanishes. The schemes below scale the weights to the
number of inputs (fan_in) and outputs (fan_out) so that activations start near 1:

  normal   w ~ N(0, std^2)                               (the article, std = 1.0)
  uniform  w ~ U(-a, a),  a = 1 / sqrt(fan_in)           (PyTorch's nn.Linear)
  xavier   w ~ N(0, 2 / (fan_in + fan_out))              (Glorot & Bengio, 2010)
  kaiming  w ~ N(0, 2 / fan_in)                          (He et al., 2015: for ReLU)
  zeros    w = 0   -- fine for one layer; with hidden layers, see ZEROS_WARNING

Random numbers come from torch's global generator, so `torch.manual_seed` makes
an initialisation repeat.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from groundup.errors import UsageError
from groundup.learn.names import INITS

SCHEMES = INITS  # each is drawn by init_weights below

# What `--init zeros` does to a model with hidden layers (net, cnn), in one line. Every
# hidden unit outputs relu(0) = 0, and each layer's gradient is multiplied by the zero
# weights after it, so no weight ever moves: only the output bias learns, and with
# balanced classes it stays near 0, so the model stays at chance (0.5 for a pair).
# (Were the later weights not zero, every hidden unit would still get the same
# gradient and stay identical to the others: the symmetry problem.)
ZEROS_WARNING = (
    "--init zeros starts every weight at 0: the hidden units all output 0, so no weight "
    "gets a gradient and the model learns nothing (it stays at chance, 0.5 for a pair)"
)


def init_weights(fan_in: int, fan_out: int, scheme: str = "kaiming", std: float = 1.0) -> Tensor:
    """A (fan_in, fan_out) weight matrix drawn by `scheme`, with gradients required."""
    shape = (fan_in, fan_out)
    if scheme == "normal":
        w = torch.randn(shape) * std
    elif scheme == "uniform":
        a = 1.0 / math.sqrt(fan_in)
        w = torch.empty(shape).uniform_(-a, a)
    elif scheme == "xavier":
        w = torch.randn(shape) * math.sqrt(2.0 / (fan_in + fan_out))
    elif scheme == "kaiming":
        w = torch.randn(shape) * math.sqrt(2.0 / fan_in)
    elif scheme == "zeros":
        w = torch.zeros(shape)
    else:
        raise UsageError(f"unknown init {scheme!r}: choose one of {', '.join(SCHEMES)}")
    return w.requires_grad_()


def init_bias(fan_out: int, scheme: str = "kaiming", std: float = 1.0) -> Tensor:
    """A (fan_out,) bias: random like the weights for the article's `normal` recipe
    (its `bias = init_params(1)`), zero for the scaled schemes."""
    if scheme == "normal":
        return (torch.randn(fan_out) * std).requires_grad_()
    if scheme not in SCHEMES:
        raise UsageError(f"unknown init {scheme!r}: choose one of {', '.join(SCHEMES)}")
    return torch.zeros(fan_out, requires_grad=True)
