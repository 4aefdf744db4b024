"""Step 5, stepping: `BasicOptim` and the optimizers built on it.

One base class owns `step` and `zero_grad`; each optimizer overrides one method,
`update`, which says how a parameter moves given its gradient. Plain SGD is the
base itself: the article's `p.data -= p.grad.data * lr`.

  SGD        w <- w - lr * g
  Momentum   v <- mu * v + g;              w <- w - lr * v
  Adam       m <- b1 m + (1 - b1) g;       v <- b2 v + (1 - b2) g^2
             w <- w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

Each matches `torch.optim.SGD` / `torch.optim.Adam` with the same settings.
With several workers (data-parallel training), `groundup.distributed`'s callback
first replaces each worker's gradients by those of the whole batch; then each steps.

The learning rate is a plain attribute, so it can be changed between steps
(a schedule, or a user moving a slider while training runs).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from groundup.errors import UsageError
from groundup.learn.names import LR_MAX


class BasicOptim:
    """The article's optimizer: w <- w - lr * dL/dw for every parameter."""

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise UsageError("the optimizer was given no parameters")
        self.lr = check_lr(lr)
        self.t = 0  # steps taken so far

    def step(self) -> None:
        """Move every parameter that has a gradient."""
        self.t += 1
        with torch.no_grad():
            for i, p in enumerate(self.params):
                if p.grad is not None:
                    self.update(i, p, p.grad)

    def update(self, i: int, p: Tensor, g: Tensor) -> None:
        """How parameter number `i` moves, given its gradient `g` (in place)."""
        p.sub_(g, alpha=self.lr)

    def zero_grad(self) -> None:
        """Forget the gradients: backward() adds to `.grad`, it does not overwrite."""
        for p in self.params:
            p.grad = None


SGD = BasicOptim


class Momentum(BasicOptim):
    """SGD with momentum: each step continues part of the last one (torch's form)."""

    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0.9) -> None:
        super().__init__(params, lr)
        self.momentum = momentum
        self.velocity: list[Tensor | None] = [None] * len(self.params)

    def update(self, i: int, p: Tensor, g: Tensor) -> None:
        v = self.velocity[i]
        if v is None:
            v = self.velocity[i] = g.clone()  # torch starts the buffer at the first gradient
        else:
            v.mul_(self.momentum).add_(g)
        p.sub_(v, alpha=self.lr)


class Adam(BasicOptim):
    """Adam: a step scaled per parameter by running means of g and g^2."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, lr)
        self.b1, self.b2 = betas
        self.eps = eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def update(self, i: int, p: Tensor, g: Tensor) -> None:
        m, v = self.m[i], self.v[i]
        m.lerp_(g, 1 - self.b1)  # m = b1 m + (1 - b1) g
        v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)  # v = b2 v + (1 - b2) g^2
        m_hat_scale = 1 - self.b1**self.t
        v_hat_scale = (1 - self.b2**self.t) ** 0.5
        denom = v.sqrt().div_(v_hat_scale).add_(self.eps)  # one new tensor, not two
        p.addcdiv_(m, denom, value=-self.lr / m_hat_scale)


# optimizer name (groundup.learn.names.OPTIMIZERS, checked by a test) -> its class
OPTIMIZERS: dict[str, type[BasicOptim]] = {"sgd": BasicOptim, "momentum": Momentum, "adam": Adam}


def check_lr(lr: float) -> float:
    """A learning rate must be a finite number above zero."""
    try:
        value = float(lr)
    except (TypeError, ValueError):
        raise UsageError(f"learning rate must be a number, not {lr!r}") from None
    if not value > 0 or value == float("inf"):
        raise UsageError(f"learning rate must be above 0, not {lr}")
    if value > LR_MAX:  # the step would compute with an infinite rate
        raise UsageError(f"learning rate must be at most {LR_MAX:.4g}, not {lr}")
    return value
