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

    Our own layers (linear, net) are counted from their weights' shapes. A `torch.nn`
    model (the cnn) runs one zero image of `n_in` pixels with a hook on each
    convolution and linear layer, which reads the output's h×w there. Counted by hand
    rather than by `torch.utils.flop_counter`: its dispatch mode imports torch's
    compiler, a second or two of start-up that every `groundup train` would pay."""
    from groundup.learn.models import MeanClassifier, Module

    if isinstance(model, MeanClassifier):
        return 0  # distances, not learned products: see training_flops
    if isinstance(model, Module):  # each Linear's (n_in, n_out) `weight`: 2 · n_in · n_out
        named = model.named_parameters()
        return sum(2 * p.numel() for name, p in named if name.rsplit(".", 1)[-1] == "weight")
    return _torch_module_flops(model, n_in)


def _torch_module_flops(model: Any, n_in: int) -> int:
    """2 · n_in · n_out per linear layer and 2 · c_in/groups · k_h · k_w · c_out · h · w
    per convolution, with each convolution's output h×w read by a forward hook."""
    from torch import nn

    total = 0

    def count(layer: Any, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Linear):
            total += 2 * layer.in_features * layer.out_features
        else:  # (1, c_out, h, w): the weight holds c_out · c_in/groups · k_h · k_w
            total += 2 * layer.weight.numel() * output.shape[-2] * output.shape[-1]

    hooks = [
        layer.register_forward_hook(count)
        for layer in model.modules()
        if isinstance(layer, (nn.Linear, nn.Conv2d))
    ]
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters(), None)  # the image goes where the weights are
        where = {"device": p.device, "dtype": p.dtype} if p is not None else {}
        with torch.no_grad():
            model(torch.zeros(1, n_in, **where))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return total


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
