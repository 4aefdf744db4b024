"""The seven steps by hand (groundup.learn.steps), each checked against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from groundup.data.tensors import DataLoader, Dataset
from groundup.learn.losses import batch_accuracy, mnist_loss
from groundup.learn.optim import BasicOptim
from groundup.learn.steps import (
    calc_grad,
    init_params,
    linear1,
    sgd_step,
    train_epoch,
    train_model,
    validate_epoch,
)


def _sig(z: float) -> float:
    return 1 / (1 + math.exp(-z))


# Two images of three pixels, a "2" (t = 1) and a "9" (t = 0), and a starting point
# w = (1, 0, 0), b = 0, chosen so that the two predictions differ.
X = [[0.5, 0.0, 1.0], [0.0, 1.0, 0.5]]
T = [[1.0], [0.0]]
W0 = [[1.0], [0.0], [0.0]]


def _tiny() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.tensor(X, dtype=torch.float64)  # (2, 3)
    t = torch.tensor(T, dtype=torch.float64)  # (2, 1)
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)  # (3, 1)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # (1,)
    return x, t, w, b


def test_one_sgd_step_worked_out_by_hand():
    x, t, w, b = _tiny()
    # predict: p = x @ w + b = (0.5*1 + 0 + 0, 0) = (0.5, 0)
    preds = linear1(x, w, b)
    assert preds[:, 0].tolist() == [0.5, 0.0]
    # loss: s = sigmoid(p) = (0.622459, 0.5); the "2" scores 1 - s1, the "9" scores s2
    #   L = ((1 - 0.622459) + 0.5) / 2 = 0.438770
    loss = calc_grad(x, t, lambda xb: linear1(xb, w, b))
    s1 = _sig(0.5)
    assert loss.item() == pytest.approx(((1 - s1) + 0.5) / 2, abs=1e-12)
    assert loss.item() == pytest.approx(0.438770, abs=1e-6)
    # gradient, by the chain rule: dL/dp_i = (1 - 2 t_i) s_i (1 - s_i) / N
    #   g = (-0.622459 * 0.377541, 0.5 * 0.5) = (-0.235004, 0.25)
    #   dL/dw = x^T g / 2 = ((0.5 * -0.235004) / 2, 0.25 / 2, (-0.235004 + 0.5 * 0.25) / 2)
    #         = (-0.058751, 0.125, -0.055002)
    #   dL/db = (-0.235004 + 0.25) / 2 = 0.007498
    g1, g2 = -s1 * (1 - s1), 0.25
    expected_dw = [0.5 * g1 / 2, g2 / 2, (g1 + 0.5 * g2) / 2]
    assert w.grad[:, 0].tolist() == pytest.approx(expected_dw, abs=1e-12)
    assert w.grad[:, 0].tolist() == pytest.approx([-0.058751, 0.125, -0.055002], abs=1e-6)
    assert b.grad.item() == pytest.approx((g1 + g2) / 2, abs=1e-12)
    assert b.grad.item() == pytest.approx(0.007498, abs=1e-6)
    # step with lr = 1: w = (1.058751, -0.125, 0.055002), b = -0.007498
    sgd_step([w, b], lr=1.0)
    expected_w = [1 - expected_dw[0], -expected_dw[1], -expected_dw[2]]
    assert w[:, 0].tolist() == pytest.approx(expected_w, abs=1e-12)
    assert w[:, 0].tolist() == pytest.approx([1.058751, -0.125, 0.055002], abs=1e-6)
    assert b.item() == pytest.approx(-0.007498, abs=1e-6)
    # the step cleared the gradients, and the loss went down: 0.438770 -> 0.416713
    assert w.grad is None and b.grad is None
    assert mnist_loss(linear1(x, w, b), t).item() == pytest.approx(0.416713, abs=1e-6)


def test_basic_optim_takes_the_same_step_as_sgd_step():
    x, t, w, b = _tiny()
    calc_grad(x, t, lambda xb: linear1(xb, w, b))
    w2, b2 = w.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    w2.grad, b2.grad = w.grad.clone(), b.grad.clone()
    sgd_step([w, b], lr=0.3)
    opt = BasicOptim([w2, b2], lr=0.3)
    opt.step()
    opt.zero_grad()
    assert torch.equal(w, w2) and torch.equal(b, b2)
    assert w2.grad is None


def test_calc_grad_adds_up_until_cleared():
    x, t, w, b = _tiny()
    model = lambda xb: linear1(xb, w, b)  # noqa: E731
    calc_grad(x, t, model)
    once = w.grad.clone()
    calc_grad(x, t, model)
    assert torch.allclose(w.grad, 2 * once)


def test_init_params_is_normal_with_gradients():
    torch.manual_seed(0)
    w = init_params((200, 500), std=2.0)
    assert w.shape == (200, 500) and w.requires_grad and w.is_leaf
    assert w.mean().item() == pytest.approx(0.0, abs=0.05)
    assert w.std().item() == pytest.approx(2.0, rel=0.02)
    b = init_params(1)
    assert b.shape == (1,)
    torch.manual_seed(0)
    assert torch.equal(init_params((200, 500), std=2.0), w)


def test_linear1_on_one_image_and_on_a_batch():
    torch.manual_seed(0)
    x = torch.rand(5, 784)  # (5, 784)
    w, b = init_params((784, 1)), init_params(1)
    batch = linear1(x, w, b)
    assert batch.shape == (5, 1)
    one = linear1(x[3], w, b)
    assert one.shape == (1,)
    assert torch.allclose(one, batch[3])
    one = one.detach()
    by_hand = sum(x[3, i].item() * w[i, 0].item() for i in range(784)) + b.item()
    assert one.item() == pytest.approx(by_hand, rel=1e-4)


def test_validate_epoch_weights_batches_by_size():
    # 5 images in batches of 4: the first batch all right, the last (1 image) wrong.
    # Weighted: 4/5 = 0.8. fastbook's unweighted mean of batch accuracies would say 0.5.
    x = torch.zeros(5, 784)
    y = torch.tensor([[1.0], [1.0], [1.0], [1.0], [0.0]])
    dl = DataLoader(Dataset(x, y, (2, 9)), batch_size=4)
    always_two = lambda xb: torch.ones(len(xb), 1)  # noqa: E731
    assert validate_epoch(always_two, dl) == 0.8
    per_batch = [batch_accuracy(always_two(xb), yb).item() for xb, yb in dl]
    assert per_batch == [1.0, 0.0]


def test_full_batch_epoch_is_one_gradient_descent_step(pair_sets):
    train, _ = pair_sets
    torch.manual_seed(0)
    w, b = init_params((784, 1), std=0.01), init_params(1, std=0.01)
    # the expected step, from the gradient over the whole training set
    loss = mnist_loss(linear1(train.x, w, b), train.y)
    gw, gb = torch.autograd.grad(loss, [w, b])
    expected_w, expected_b = w.detach() - 0.5 * gw, b.detach() - 0.5 * gb
    dl = DataLoader(train, batch_size=len(train), shuffle=True, seed=0)
    train_epoch(lambda xb: linear1(xb, w, b), dl, 0.5, [w, b])
    # shuffling permutes the rows, so the sum is taken in another order: equal to rounding
    assert torch.allclose(w, expected_w, atol=1e-7) and torch.allclose(b, expected_b, atol=1e-7)


def test_train_epoch_steps_once_per_mini_batch(pair_sets):
    train, _ = pair_sets
    w, b = init_params((784, 1), std=0.01), init_params(1, std=0.01)
    steps = []

    def model(xb):
        steps.append(len(xb))
        return linear1(xb, w, b)

    train_epoch(model, DataLoader(train, batch_size=256, shuffle=True), 1.0, [w, b])
    assert steps == [256, 256, 256, 32]


def test_train_model_learns_2_vs_9(make_dls):
    torch.manual_seed(0)
    w, b = init_params((784, 1), std=0.01), init_params(1, std=0.01)
    history = train_model(lambda xb: linear1(xb, w, b), make_dls(), epochs=5, lr=1.0, params=[w, b])
    assert len(history) == 5
    assert all(0.0 <= a <= 1.0 for a in history)
    assert history[-1] >= 0.97
