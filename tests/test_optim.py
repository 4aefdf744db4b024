"""The optimizers against a step worked by hand and against `torch.optim` over 20 steps."""

from __future__ import annotations

import pytest
import torch

from groundup.errors import UsageError
from groundup.learn.optim import OPTIMIZERS, SGD, Adam, BasicOptim, Momentum


def _problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """A small least-squares problem (a linear layer on 16 samples) and its parameters."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 5, generator=g, dtype=torch.float64)  # (16, 5)
    y = torch.randn(16, 3, generator=g, dtype=torch.float64)  # (16, 3)
    w = torch.randn(5, 3, generator=g, dtype=torch.float64)  # (5, 3)
    b = torch.randn(3, generator=g, dtype=torch.float64)  # (3,)
    return x, y, [w, b]


def _loss(x: torch.Tensor, y: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    w, b = params
    return ((x @ w + b - y) ** 2).mean()


def _run(make_opt, params: list[torch.Tensor], x, y, steps: int = 20, batches: int = 4):
    """`steps` steps on rotating mini-batches; returns the parameters after each step."""
    params = [p.clone().requires_grad_() for p in params]
    opt = make_opt(params)
    trace = []
    for i in range(steps):
        k = i % batches
        xb, yb = x[k * 4 : (k + 1) * 4], y[k * 4 : (k + 1) * 4]
        _loss(xb, yb, params).backward()
        opt.step()
        opt.zero_grad()
        trace.append([p.detach().clone() for p in params])
    return trace


CASES = [
    # (ours, torch's), with the same settings
    ("sgd", lambda ps: SGD(ps, 0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    (
        "momentum",
        lambda ps: Momentum(ps, 0.05, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
    ),
    (
        "momentum-0.5",
        lambda ps: Momentum(ps, 0.1, momentum=0.5),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.5),
    ),
    ("adam", lambda ps: Adam(ps, 0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
    (
        "adam-betas",
        lambda ps: Adam(ps, 0.003, betas=(0.8, 0.99), eps=1e-6),
        lambda ps: torch.optim.Adam(ps, lr=0.003, betas=(0.8, 0.99), eps=1e-6),
    ),
]


@pytest.mark.parametrize("name, ours, theirs", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_optim_over_20_steps(name, ours, theirs):
    x, y, params = _problem()
    mine = _run(ours, params, x, y)
    ref = _run(theirs, params, x, y)
    for step, (a, b) in enumerate(zip(mine, ref, strict=True)):
        for p, q in zip(a, b, strict=True):
            assert torch.allclose(p, q, atol=1e-6, rtol=0), f"{name}: step {step + 1} differs"
    # and the parameters did move: the comparison is not between two unchanged copies
    assert not torch.allclose(mine[-1][0], params[0])


def test_matches_torch_in_float32_within_1e_6():
    """The same agreement at the precision training uses."""
    x, y, params = _problem(1)
    x, y, params = x.float(), y.float(), [p.float() for p in params]
    for ours, theirs in [
        (lambda ps: Momentum(ps, 0.05), lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
        (lambda ps: Adam(ps, 0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
    ]:
        mine, ref = _run(ours, params, x, y), _run(theirs, params, x, y)
        for p, q in zip(mine[-1], ref[-1], strict=True):
            assert (p - q).abs().max() <= 1e-6


def test_sgd_step_by_hand():
    """w <- w - lr * g, with the gradient worked out: d/dw (w x - t)^2 = 2 x (w x - t)."""
    w = torch.tensor([2.0], requires_grad=True)
    opt = BasicOptim([w], lr=0.1)
    ((w * 3.0 - 1.0) ** 2).sum().backward()  # g = 2 * 3 * (6 - 1) = 30
    opt.step()
    assert w.item() == pytest.approx(2.0 - 0.1 * 30)


def test_momentum_two_steps_by_hand():
    """v1 = g1; v2 = mu v1 + g2; w2 = w0 - lr v1 - lr v2, for a loss with a constant gradient."""
    w = torch.tensor([0.0], requires_grad=True)
    opt = Momentum([w], lr=0.1, momentum=0.9)
    for _ in range(2):
        (4.0 * w).sum().backward()  # g = 4 each time
        opt.step()
        opt.zero_grad()
    assert w.item() == pytest.approx(-0.1 * 4 - 0.1 * (0.9 * 4 + 4))


def test_adam_first_step_is_lr_times_sign():
    """After bias correction m_hat = g and v_hat = g^2: the first step is lr g / (|g| + eps)."""
    w = torch.tensor([1.0, -1.0], requires_grad=True)
    opt = Adam([w], lr=0.01)
    (torch.tensor([5.0, -0.2]) * w).sum().backward()
    opt.step()
    assert torch.allclose(w.detach(), torch.tensor([1.0 - 0.01, -1.0 + 0.01]), atol=1e-7)


def test_zero_grad_forgets_and_lr_can_change_between_steps():
    w = torch.tensor([1.0], requires_grad=True)
    opt = BasicOptim([w], lr=0.5)
    (2 * w).sum().backward()
    opt.step()
    opt.zero_grad()
    assert w.grad is None
    opt.lr = 0.25  # a schedule, or a slider on the web page
    (2 * w).sum().backward()
    opt.step()
    assert w.item() == pytest.approx(1.0 - 0.5 * 2 - 0.25 * 2)


def test_optimizers_by_name_and_bad_settings():
    assert set(OPTIMIZERS) == {"sgd", "momentum", "adam"}
    w = torch.zeros(1, requires_grad=True)
    with pytest.raises(UsageError, match="above 0"):
        BasicOptim([w], lr=0)
    with pytest.raises(UsageError, match="no parameters"):
        Adam([], lr=0.1)
