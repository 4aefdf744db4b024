"""The compute view: how many floating-point operations a model costs to train.

A learner asks "what does each extra point of accuracy cost?". Wall time depends on
the machine and its neighbours; the number of operations does not. It is counted
from the model's shapes, for the matrix products and convolutions only (they are
nearly all the work; additions of a bias, ReLUs and the loss are left out):

  - a linear layer, (B, n_in) @ (n_in, n_out): 2 · n_in · n_out per sample
    (a multiply and an add per weight);
  - a convolution with c_in -> c_out channels, a k×k kernel and an h×w output:
    2 · c_in · k · k · c_out · h · w per sample.

Training costs about three forward passes per sample: the forward, then the backward,
which computes a product as large as the forward for the weights' gradient and one more
for the gradient of the layer's input::

    training FLOPs ≈ 3 × forward FLOPs per sample × training samples × epochs

(the first layer needs no input gradient, so 3× slightly overcounts; validation
passes are not counted: they are measuring, not training). Pixel similarity (`mean`)
trains by one pass of sums: one addition per pixel per training image.
"""

from __future__ import annotations

from typing import Any

import torch

TRAINING_PASSES = 3  # forward + backward ≈ 3 forward passes (see above)


def forward_flops(model: Any, n_in: int = 784) -> int:
    """Matrix-product and convolution FLOPs of one sample's forward pass.

    Counted by `torch.utils.flop_counter` on a single zero image of `n_in` pixels,
    which applies the formulas above to the shapes it meets (bias additions excluded)."""
    from torch.utils.flop_counter import FlopCounterMode

    from groundup.learn.models import MeanClassifier
    from groundup.learn.widths import unpadded

    if isinstance(model, MeanClassifier):
        return 0  # distances, not learned products: see training_flops
    was_training = getattr(model, "training", True)
    if hasattr(model, "eval"):
        model.eval()
    try:  # the real shapes, not the wider product of a padded output layer (widths.py)
        with torch.no_grad(), unpadded(model), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, n_in))
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    return int(counter.get_total_flops())


def training_flops(model: Any, n_train: int, epochs: int, n_in: int = 784) -> int:
    """3 × forward FLOPs per sample × `n_train` × `epochs`: the cost of training `model`."""
    from groundup.learn.models import MeanClassifier

    if isinstance(model, MeanClassifier):
        return n_train * n_in  # one addition per pixel, one pass
    return TRAINING_PASSES * forward_flops(model, n_in) * n_train * epochs


def flops_text(flops: float) -> str:
    """12_300_000 -> '12.3 MFLOP': the scale a reader can compare at a glance."""
    units = (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3))
    for unit, scale in units:
        if flops >= scale:
            return f"{flops / scale:.3g} {unit}"
    return f"{flops:.3g} FLOP"
