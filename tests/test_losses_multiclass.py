"""Cross-entropy and argmax accuracy for three or more classes: by hand, against
PyTorch, by finite differences, and at extreme logits."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from groundup.learn.losses import batch_accuracy, cross_entropy


def test_cross_entropy_by_hand():
    # sample 1: logits (0, ln 2, ln 3) -> softmax (1, 2, 3)/6; target 2 -> -ln(3/6) = ln 2
    # sample 2: logits (0, 0, 0) -> softmax 1/3 each; target 0 -> ln 3
    logits = torch.tensor([[0.0, math.log(2), math.log(3)], [0.0, 0.0, 0.0]])
    targets = torch.tensor([2, 0])
    expected = (math.log(2) + math.log(3)) / 2
    assert cross_entropy(logits, targets).item() == pytest.approx(expected, abs=1e-6)


def test_cross_entropy_matches_torch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=g, dtype=torch.float64) * 3  # (64, 10)
    targets = torch.randint(0, 10, (64,), generator=g)
    ours = cross_entropy(logits, targets)
    ref = F.cross_entropy(logits, targets)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-12)


def test_cross_entropy_gradient_matches_torch_and_formula():
    """dL/dz = (softmax(z) - onehot(t)) / B, the formula that makes softmax + NLL neat."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(8, 5, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 5, (8,), generator=g)
    cross_entropy(z, t).backward()
    expected = (torch.softmax(z.detach(), dim=1) - F.one_hot(t, 5)) / 8
    assert torch.allclose(z.grad, expected, atol=1e-12)


def test_cross_entropy_finite_differences():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 2, 1, 2])
    assert torch.autograd.gradcheck(lambda z: cross_entropy(z, t), (z,))


def test_cross_entropy_is_stable_for_huge_logits():
    """e^1000 overflows; subtracting the max first keeps every term finite."""
    logits = torch.tensor([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 999.0]])
    targets = torch.tensor([0, 2])
    loss = cross_entropy(logits, targets)
    assert math.isfinite(loss.item())
    # sample 1 is certain and right (loss 0); sample 2: -log(e^999 / (e^1000 + e^999))
    expected = (0.0 + math.log1p(math.e)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 16),
    st.integers(3, 10),
    st.floats(0.1, 50.0),
    st.integers(0, 2**31 - 1),
)
def test_cross_entropy_agrees_with_torch_property(b, c, scale, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, c, generator=g) * scale
    targets = torch.randint(0, c, (b,), generator=g)
    ours, ref = cross_entropy(logits, targets), F.cross_entropy(logits, targets)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-5)
    assert ours.item() >= 0


def test_accuracy_is_argmax():
    preds = torch.tensor([[0.1, 0.7, 0.2], [2.0, 1.0, 0.0], [0.0, 0.0, 5.0], [3.0, 4.0, 1.0]])
    targets = torch.tensor([1, 0, 0, 0])  # right, right, wrong, wrong
    assert batch_accuracy(preds, targets).item() == pytest.approx(0.5)
