"""Step 5, stepping: `BasicOptim` and the optimizers built on it.

One base class owns `step` and `zero_grad`; each optimizer overrides one method,
`update`, which says how a parameter moves given its gradient. Plain SGD is the
base itself: the article's `p.data -= p.grad.data * lr`.

  SGD        w <- w - lr * g
  Momentum   v <- mu * v + g;              w <- w - lr * v
  Adam       m <- b1 m + (1 - b1) g;       v <- b2 v + (1 - b2) g^2
             w <- w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

Each matches `torch.optim.SGD` / `torch.optim.Adam` with the same settings.
With several workers (data-parallel training), `all_reduce_gradients` first
replaces each worker's gradients by those of the whole batch; then each steps.

The learning rate is a plain attribute, so it can be changed between steps
(a schedule, or a user moving a slider while training runs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from groundup.errors import UsageError


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


def all_reduce_gradients(params: Sequence[Tensor], n_rows: int) -> int:
    """Data-parallel step 5, first half: give every worker the gradient of the whole batch.

    Worker r holds g_r, the gradient of the mean loss over its own n_r rows. The
    gradient of the mean over all N = sum_r n_r rows of the batch is

        g = sum_r n_r * g_r / N

    so each worker multiplies its gradients by n_r, `all_reduce` adds them up over
    the workers, and each divides by N. Every worker then takes the same step
    (`opt.step()`), so their copies of the model stay identical. Weighting by n_r
    keeps a short last batch, split unevenly, exact too; a plain average of the g_r
    is exact only when every share has the same size.

    params: the model's parameters, in the same order on every worker. A parameter
    without a gradient counts as a zero gradient. All the gradients travel in one
    flat buffer, with n_r in its last slot: one all_reduce per step, not one per
    tensor. Returns N.
    """
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads] + [grads[0].new_ones(1)])  # (P + 1,)
    flat.mul_(n_rows)  # n_r * g_r, and n_r itself in the last slot
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)  # sum_r n_r g_r, and N
    total = int(round(float(flat[-1])))
    if total > 0:
        flat.div_(total)  # g = sum_r n_r g_r / N
    offset = 0
    for p, g in zip(params, grads, strict=True):
        p.grad = flat[offset : offset + g.numel()].view_as(g)  # a view: no copy
        offset += g.numel()
    return total


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
        denom = (v.sqrt() / v_hat_scale).add_(self.eps)
        p.addcdiv_(m, denom, value=-self.lr / m_hat_scale)


OPTIMIZERS: dict[str, type[BasicOptim]] = {"sgd": BasicOptim, "momentum": Momentum, "adam": Adam}


def check_lr(lr: float) -> float:
    """A learning rate must be a finite number above zero."""
    try:
        value = float(lr)
    except (TypeError, ValueError):
        raise UsageError(f"learning rate must be a number, not {lr!r}") from None
    from groundup.config import FLOAT32_MAX

    if not value > 0 or value == float("inf"):
        raise UsageError(f"learning rate must be above 0, not {lr}")
    if value > FLOAT32_MAX:  # the step would compute with an infinite rate
        raise UsageError(f"learning rate must be at most {FLOAT32_MAX:.4g}, not {lr}")
    return value
