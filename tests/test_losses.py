"""Step 3: sigmoid, mnist_loss, the hand-written gradient, cross-entropy and metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from groundup.learn.losses import (
    accuracy_gradient,
    batch_accuracy,
    cross_entropy,
    mnist_loss,
    mnist_loss_grad_linear,
    sigmoid,
)
from groundup.learn.steps import calc_grad, init_params, linear1

finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)  # any float32 value


def test_sigmoid_matches_its_formula_and_derivative():
    xs = [-6.0, -1.0, 0.0, 0.5, 3.0]
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    s = sigmoid(x)
    assert s.tolist() == pytest.approx([1 / (1 + math.exp(-v)) for v in xs], abs=1e-12)
    s.sum().backward()
    # d sigma / dx = sigma (1 - sigma)
    assert x.grad.tolist() == pytest.approx((s * (1 - s)).tolist(), abs=1e-12)


def test_sigmoid_is_stable_far_from_zero():
    s = sigmoid(torch.tensor([-1000.0, 1000.0]))
    assert s.tolist() == [0.0, 1.0]


@given(st.lists(finite32, min_size=1, max_size=50))
@settings(max_examples=100, deadline=None)
def test_sigmoid_stays_in_0_1(values):
    s = sigmoid(torch.tensor(values, dtype=torch.float32))
    assert bool(torch.isfinite(s).all())
    assert bool(((s >= 0) & (s <= 1)).all())


@given(
    st.lists(st.tuples(finite32, st.booleans()), min_size=1, max_size=50),
)
@settings(max_examples=100, deadline=None)
def test_mnist_loss_stays_in_0_1(pairs):
    preds = torch.tensor([[p] for p, _ in pairs])  # (B, 1)
    targets = torch.tensor([[1.0 if t else 0.0] for _, t in pairs])  # (B, 1)
    loss = mnist_loss(preds, targets).item()
    assert 0.0 <= loss <= 1.0


def test_mnist_loss_by_hand():
    # p = 0 gives sigma = 0.5 whatever the target: the loss is 0.5
    assert mnist_loss(torch.zeros(2, 1), torch.tensor([[1.0], [0.0]])).item() == 0.5
    # a confident right answer costs almost nothing, a confident wrong one almost 1
    right = mnist_loss(torch.tensor([[10.0], [-10.0]]), torch.tensor([[1.0], [0.0]])).item()
    wrong = mnist_loss(torch.tensor([[-10.0], [10.0]]), torch.tensor([[1.0], [0.0]])).item()
    # (1 - sigma(10) loses digits in float32: compare absolutely)
    assert right == pytest.approx(1 - 1 / (1 + math.exp(-10)), abs=1e-6)
    assert wrong == pytest.approx(1 / (1 + math.exp(-10)), abs=1e-6)
    # the article's worked example: targets (1, 0, 1), predictions (0.9, 0.4, 0.2)
    # after the sigmoid; the loss is the mean distance from the target
    p = torch.logit(torch.tensor([[0.9], [0.4], [0.2]]))
    t = torch.tensor([[1.0], [0.0], [1.0]])
    assert mnist_loss(p, t).item() == pytest.approx((0.1 + 0.4 + 0.8) / 3, abs=1e-6)


def test_hand_written_gradient_equals_autograd(pair_sets):
    train, _ = pair_sets
    torch.manual_seed(0)
    xb, yb = train.x[::7], train.y[::7]  # (115, 784), (115, 1): both digits
    w, b = init_params((784, 1), std=0.05), init_params(1, std=0.05)
    calc_grad(xb, yb, lambda x: linear1(x, w, b))
    dw, db = mnist_loss_grad_linear(xb, yb, w, b)
    assert dw.shape == (784, 1) and db.shape == (1,)
    assert w.grad.abs().max() > 1e-3  # a gradient worth comparing
    assert torch.allclose(dw, w.grad, rtol=0, atol=1e-6)
    assert torch.allclose(db, b.grad, rtol=0, atol=1e-6)


def test_hand_written_gradient_in_float64_is_exact():
    torch.manual_seed(1)
    xb = torch.rand(9, 6, dtype=torch.float64)
    yb = (torch.rand(9, 1) > 0.5).double()
    w = torch.randn(6, 1, dtype=torch.float64, requires_grad=True)
    b = torch.randn(1, dtype=torch.float64, requires_grad=True)
    mnist_loss(linear1(xb, w, b), yb).backward()
    dw, db = mnist_loss_grad_linear(xb, yb, w, b)
    assert torch.allclose(dw, w.grad, rtol=0, atol=1e-14)
    assert torch.allclose(db, b.grad, rtol=0, atol=1e-14)


def test_accuracy_has_no_gradient_but_mnist_loss_has():
    torch.manual_seed(0)
    preds = torch.randn(16, 1)  # (16, 1)
    targets = (torch.rand(16, 1) > 0.5).float()
    g_acc = accuracy_gradient(preds, targets)
    assert g_acc.shape == preds.shape
    assert torch.count_nonzero(g_acc) == 0
    p = preds.clone().requires_grad_()
    mnist_loss(p, targets).backward()
    assert torch.count_nonzero(p.grad) == 16


def test_batch_accuracy_for_a_pair():
    preds = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])  # says 2, 9, 2, 9
    targets = torch.tensor([[1.0], [1.0], [1.0], [0.0]])  # is 2, 2, 2, 9
    assert batch_accuracy(preds, targets).item() == 0.75


def test_batch_accuracy_for_ten_classes():
    preds = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.0, 0.2, 0.3]])
    assert batch_accuracy(preds, torch.tensor([1, 2, 2])).item() == pytest.approx(2 / 3)


def test_cross_entropy_matches_torch_and_stays_finite():
    torch.manual_seed(0)
    logits = torch.randn(32, 10, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 10, (32,))
    ours = cross_entropy(logits, targets)
    ref = F.cross_entropy(logits, targets)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-12)
    (g_ours,) = torch.autograd.grad(ours, logits)
    (g_ref,) = torch.autograd.grad(F.cross_entropy(logits, targets), logits)
    assert torch.allclose(g_ours, g_ref, atol=1e-12)
    # huge logits: the max is subtracted before exp, so nothing overflows
    big = torch.tensor([[1000.0, 0.0, -1000.0]])
    assert cross_entropy(big, torch.tensor([0])).item() == pytest.approx(0.0, abs=1e-6)
    assert cross_entropy(big, torch.tensor([1])).item() == pytest.approx(1000.0, rel=1e-6)
