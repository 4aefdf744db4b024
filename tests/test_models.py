"""Step 2: our Linear, ReLU, Sequential, simple_net, their parameters, and step 1's init schemes."""

from __future__ import annotations

import math

import pytest
import torch

from groundup.errors import UsageError
from groundup.learn.init import SCHEMES, init_bias, init_weights
from groundup.learn.losses import mnist_loss
from groundup.learn.models import (
    Linear,
    ModelSpec,
    Module,
    ReLU,
    Sequential,
    build_model,
    linear_model,
    mlp,
    simple_net,
)


def _to_float64(model: Sequential) -> None:
    for layer in model.layers:
        if isinstance(layer, Linear):
            layer.weight = layer.weight.detach().double().requires_grad_()
            layer.bias = layer.bias.detach().double().requires_grad_()


def test_linear_is_x_at_w_plus_b():
    torch.manual_seed(0)
    lin = Linear(4, 3, init="normal")
    x = torch.rand(5, 4)  # (5, 4)
    out = lin(x)
    assert out.shape == (5, 3)
    assert lin.weight.shape == (4, 3) and lin.bias.shape == (3,)
    assert torch.allclose(out, x @ lin.weight + lin.bias)
    assert out[2, 1].item() == pytest.approx(
        sum(x[2, i].item() * lin.weight[i, 1].item() for i in range(4)) + lin.bias[1].item(),
        rel=1e-5,
    )


def test_relu_is_the_articles_max_with_zero():
    x = torch.tensor([[-2.0, -0.0, 0.0, 0.5, 3.0]])
    assert ReLU()(x).tolist() == [[0.0, 0.0, 0.0, 0.5, 3.0]]
    x = torch.randn(50, 30)
    assert torch.equal(ReLU()(x), x.max(torch.tensor(0.0)))


def test_relu_gradient_is_one_where_positive_else_zero():
    x = torch.tensor([-2.0, -1e-30, 0.0, 1e-30, 3.0], requires_grad=True)
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    ReLU()(x).backward(g)
    assert x.grad.tolist() == [0.0, 0.0, 0.0, 4.0, 5.0]


class Shift(Module):
    """x - 1: a layer whose order against ReLU changes the answer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - 1


def test_sequential_applies_layers_in_order():
    x = torch.tensor([[0.5, 2.0]])
    assert Sequential(Shift(), ReLU())(x).tolist() == [[0.0, 1.0]]  # relu(x - 1)
    assert Sequential(ReLU(), Shift())(x).tolist() == [[-0.5, 1.0]]  # relu(x) - 1
    seq = Sequential(ReLU(), Shift())
    assert len(seq) == 2 and isinstance(seq[0], ReLU) and seq.parameters() == []


def test_simple_net_is_the_articles_net():
    net = simple_net()
    assert repr(net) == "Sequential(Linear(784, 30), ReLU(), Linear(30, 1))"
    names = [name for name, _ in net.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    # 784*30 + 30 + 30*1 + 1
    assert sum(p.numel() for p in net.parameters()) == 23_581
    assert all(p.requires_grad and p.is_leaf for p in net.parameters())
    assert net(torch.rand(7, 784)).shape == (7, 1)
    wide = simple_net(hidden=64)
    assert wide.layers[0].weight.shape == (784, 64) and wide.layers[2].weight.shape == (64, 1)


def test_mlp_stacks_widths():
    net = mlp((16, 8), n_in=20, n_out=3)
    shapes = [tuple(p.shape) for p in net.parameters()]
    assert shapes == [(20, 16), (16,), (16, 8), (8,), (8, 3), (3,)]


def test_simple_net_gradient_matches_finite_differences():
    """Central differences, (L(w + h) - L(w - h)) / 2h, against autograd, in float64."""
    torch.manual_seed(0)
    net = simple_net(hidden=5, n_in=6, init="normal", std=0.7)
    _to_float64(net)
    x = torch.rand(8, 6, dtype=torch.float64)  # (8, 6)
    t = torch.tensor([[1.0], [0.0]] * 4, dtype=torch.float64)  # (8, 1)
    mnist_loss(net(x), t).backward()
    h = 1e-6
    checked = 0
    for p in net.parameters():
        flat, grad = p.data.view(-1), p.grad.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            with torch.no_grad():
                flat[i] = old + h
                up = mnist_loss(net(x), t).item()
                flat[i] = old - h
                down = mnist_loss(net(x), t).item()
                flat[i] = old
            numeric = (up - down) / (2 * h)
            assert grad[i].item() == pytest.approx(numeric, abs=1e-8), f"parameter entry {i}"
            checked += 1
    assert checked == 6 * 5 + 5 + 5 + 1
    # and the check is not vacuous: some hidden unit is active, so layer 0 gets gradient
    assert net.layers[0].weight.grad.abs().max() > 1e-4


def test_state_dict_round_trip_and_mismatch():
    torch.manual_seed(0)
    a, b = simple_net(), simple_net()
    x = torch.rand(3, 784)
    assert not torch.equal(a(x), b(x))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x))
    assert all(p.is_leaf and p.requires_grad for p in b.parameters())
    with pytest.raises(ValueError, match="missing"):
        linear_model().load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="layers.0.weight: saved shape"):
        simple_net(hidden=20).load_state_dict(a.state_dict())


def test_build_model_from_spec():
    spec = ModelSpec(name="net", hidden=[12])
    net = build_model(spec)
    assert net.layers[0].weight.shape == (784, 12)
    assert ModelSpec.from_dict({**spec.to_dict(), "something_new": 1}) == spec
    assert isinstance(build_model(ModelSpec()), Linear)
    with pytest.raises(UsageError, match="unknown model 'resnet'"):
        build_model(ModelSpec(name="resnet"))


# -- step 1: initialisation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "expected_std"),
    [
        ("normal", 1.0),
        ("xavier", math.sqrt(2 / (784 + 100))),
        ("kaiming", math.sqrt(2 / 784)),
        ("uniform", 1 / math.sqrt(784) / math.sqrt(3)),  # U(-a, a) has std a / sqrt(3)
    ],
)
def test_init_scheme_scales(scheme, expected_std):
    torch.manual_seed(0)
    w = init_weights(784, 100, scheme)
    assert w.shape == (784, 100) and w.requires_grad
    assert w.mean().item() == pytest.approx(0.0, abs=expected_std * 0.02)
    assert w.std().item() == pytest.approx(expected_std, rel=0.02)


def test_init_uniform_bounds_zeros_and_biases():
    w = init_weights(784, 30, "uniform")
    assert w.abs().max().item() <= 1 / math.sqrt(784)
    assert torch.count_nonzero(init_weights(5, 3, "zeros")) == 0
    torch.manual_seed(0)
    assert init_weights(784, 1, "normal", std=3.0).std().item() == pytest.approx(3.0, rel=0.1)
    # the article's recipe draws the bias too; the scaled schemes start it at zero
    assert torch.count_nonzero(init_bias(10, "normal")) == 10
    for scheme in ("uniform", "xavier", "kaiming", "zeros"):
        assert torch.count_nonzero(init_bias(10, scheme)) == 0
    assert set(SCHEMES) == {"normal", "uniform", "xavier", "kaiming", "zeros"}


def test_init_repeats_with_the_seed_and_rejects_unknown_schemes():
    torch.manual_seed(3)
    a = simple_net()
    torch.manual_seed(3)
    b = simple_net()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    with pytest.raises(UsageError, match="unknown init 'he'"):
        init_weights(3, 2, "he")
    with pytest.raises(UsageError, match="unknown init"):
        init_bias(2, "he")
