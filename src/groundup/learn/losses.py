"""Step 3, measuring: the sigmoid, the article's `mnist_loss`, cross-entropy, metrics.

A loss must change smoothly when a weight changes a little, so that its gradient
says which way to move. Accuracy does not: it only moves when a prediction
crosses the threshold, so its gradient is zero almost everywhere
(`accuracy_gradient` shows it). That is why the article trains on `mnist_loss`
and only *reports* accuracy.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sigmoid(x: Tensor) -> Tensor:
    """sigma(x) = 1 / (1 + e^(-x)), squashing any number into (0, 1).

    d sigma / dx = sigma(x) * (1 - sigma(x)).
    Computed by `torch.sigmoid`, which is stable for large |x| (the naive formula
    overflows e^(-x) for x << 0).
    """
    return torch.sigmoid(x)


def mnist_loss(predictions: Tensor, targets: Tensor) -> Tensor:
    """The article's loss: how far each sigmoid output is from its target, averaged.

        loss = mean( where(t == 1, 1 - sigma(p), sigma(p)) )

    predictions: (B, 1) raw scores; targets: (B, 1) with 1.0 for the first digit
    and 0.0 for the second. Returns a scalar in (0, 1).
    """
    p = sigmoid(predictions)  # (B, 1)
    return torch.where(targets == 1, 1 - p, p).mean()


def mnist_loss_grad_linear(
    xb: Tensor, yb: Tensor, weights: Tensor, bias: Tensor
) -> tuple[Tensor, Tensor]:
    """The gradient of `mnist_loss(xb @ w + b, yb)`, worked out by hand (the chain rule).

    With p = x.w + b and s = sigma(p), each sample's loss is 1 - s if t = 1 and
    s if t = 0, so d loss_i / d p_i = -s(1-s) if t = 1 else s(1-s). Averaging
    over the B samples:

        dL/dw = x^T g / B,   dL/db = sum(g) / B,   with g_i = (1 - 2 t_i) s_i (1 - s_i)

    xb: (B, 784), yb: (B, 1), weights: (784, 1), bias: (1,).
    Returns (dL/dw (784, 1), dL/db (1,)), equal to autograd's.
    """
    with torch.no_grad():
        s = sigmoid(xb @ weights + bias)  # (B, 1)
        g = (1 - 2 * yb) * s * (1 - s)  # (B, 1)
        n = xb.shape[0]
        return xb.T @ g / n, g.sum(0) / n  # (784, 1), (1,)


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Softmax then negative log-likelihood, for three or more classes.

        log_softmax(z)_k = z_k - logsumexp(z),  logsumexp(z) = m + log(sum_j e^(z_j - m)),
        m = max_j z_j (subtracting the max keeps e^z from overflowing)
        loss = -mean_i log_softmax(z_i)[t_i]

    logits: (B, C) raw scores; targets: (B,) int64 class indices. Returns a scalar.
    """
    m = logits.max(dim=1, keepdim=True).values.detach()  # (B, 1)
    log_probs = logits - m - (logits - m).exp().sum(dim=1, keepdim=True).log()  # (B, C)
    return -log_probs.gather(1, targets.unsqueeze(1)).mean()


def batch_accuracy(predictions: Tensor, targets: Tensor) -> Tensor:
    """The share of correct predictions in a batch.

    Pairs: predictions (B, 1) raw scores, correct when (sigma(p) > 0.5) == (t == 1).
    Many classes: predictions (B, C), correct when argmax_k p_k == t.
    """
    if predictions.ndim == 2 and predictions.shape[1] > 1:
        return (predictions.argmax(dim=1) == targets).float().mean()
    return ((sigmoid(predictions) > 0.5) == (targets == 1)).float().mean()


def accuracy_gradient(predictions: Tensor, targets: Tensor) -> Tensor:
    """Why accuracy cannot be the loss: its gradient with respect to the predictions.

    Accuracy depends on the predictions only through a threshold, a step function
    whose derivative is zero wherever it is defined. We build it with a
    straight comparison and return d accuracy / d predictions: all zeros, or None
    from autograd, turned into zeros here. A step of gradient descent on it moves
    nothing.
    """
    p = predictions.detach().clone().requires_grad_(True)
    acc = ((sigmoid(p) > 0.5).float() == targets).float().mean()
    # The comparison cuts the graph: acc does not require grad at all.
    if not acc.requires_grad:
        return torch.zeros_like(p)
    (grad,) = torch.autograd.grad(acc, p, allow_unused=True)
    return torch.zeros_like(p) if grad is None else grad
