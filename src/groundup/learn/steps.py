"""The seven steps of learning, by hand, as the article takes them.

    1. initialise the weights           init_params
    2. predict                          linear1
    3. measure the loss                 mnist_loss (in groundup.learn.losses)
    4. compute the gradient             calc_grad
    5. step the weights                 sgd_step (BasicOptim does the same)
    6. repeat                           train_epoch, validate_epoch
    7. stop                             train_model, after a number of epochs

The article uses globals (`weights`, `bias`, `dl`); here they are parameters, so
each function can be read and tested alone. `groundup.Learner` runs the same
loop with callbacks around it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from groundup.data.tensors import DataLoader, DataLoaders
from groundup.learn.losses import batch_accuracy, mnist_loss

Model = Callable[[Tensor], Tensor]
LossFunc = Callable[[Tensor, Tensor], Tensor]


def init_params(size: int | tuple[int, ...], std: float = 1.0) -> Tensor:
    """Step 1: random weights w ~ N(0, std^2) of shape `size`, with gradients required.

    The article: `weights = init_params((28*28, 1))`, `bias = init_params(1)`.
    """
    return (torch.randn(size) * std).requires_grad_()


def linear1(xb: Tensor, weights: Tensor, bias: Tensor) -> Tensor:
    """Step 2: predict, p = xb @ w + b.

    xb: (B, 784) or one image (784,); weights: (784, 1); bias: (1,).
    Returns (B, 1), or (1,) for one image: a score, > 0 leaning to "2".
    """
    return xb @ weights + bias


def calc_grad(xb: Tensor, yb: Tensor, model: Model, loss_func: LossFunc = mnist_loss) -> Tensor:
    """Step 4: predict, measure the loss, and let autograd fill each parameter's `.grad`.

    Gradients *add up* in `.grad` across calls; step 5 clears them. Returns the loss.
    """
    preds = model(xb)  # (B, 1)
    loss = loss_func(preds, yb)
    loss.backward()
    return loss


def sgd_step(params: Sequence[Tensor], lr: float) -> None:
    """Step 5: w <- w - lr * dL/dw for every parameter, then clear the gradient."""
    with torch.no_grad():
        for p in params:
            # p -= lr * p.grad, fused as BasicOptim and torch.optim.SGD do it: the
            # unfused form rounds lr * g first and can differ in the last bit, and the
            # hand-written loop must give the Learner's numbers exactly
            p.sub_(p.grad, alpha=lr)
            p.grad = None


def train_epoch(
    model: Model,
    dl: DataLoader,
    lr: float,
    params: Sequence[Tensor],
    loss_func: LossFunc = mnist_loss,
) -> None:
    """Step 6: one pass over the training data, a gradient step per mini-batch.

    The article's SGD loop. Gradient descent (GD) is the same loop with one batch
    holding the whole training set.
    """
    for xb, yb in dl:  # (B, 784), (B, 1)
        calc_grad(xb, yb, model, loss_func)
        sgd_step(params, lr)


def validate_epoch(model: Model, dl: DataLoader, metric: LossFunc = batch_accuracy) -> float:
    """The metric over the whole validation set, each batch weighted by its size.

    fastbook averages the per-batch accuracies unweighted, which over-weights a
    small last batch; weighting by size gives the true share of correct answers.
    """
    total, n = 0.0, 0
    with torch.no_grad():
        for xb, yb in dl:
            total += float(metric(model(xb), yb)) * len(xb)
            n += len(xb)
    return round(total / n, 4)


def train_model(
    model: Model,
    dls: DataLoaders,
    epochs: int,
    lr: float,
    params: Sequence[Tensor],
    loss_func: LossFunc = mnist_loss,
) -> list[float]:
    """Step 7: repeat `train_epoch` for a set number of epochs, then stop.

    Returns the validation accuracy after each epoch.
    """
    history = []
    for _ in range(epochs):
        train_epoch(model, dls.train, lr, params, loss_func)
        history.append(validate_epoch(model, dls.valid))
    return history
