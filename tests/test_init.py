"""Initialisation schemes: their spreads against the formulas, the symmetry problem of
zeros in a hidden layer, the cnn's layers, and the command line's warning."""

from __future__ import annotations

import json
import math

import pytest
import torch

from groundup.errors import UsageError
from groundup.learn.init import SCHEMES, init_bias, init_weights
from groundup.learn.models import cnn, mlp

FAN_IN, FAN_OUT = 784, 256  # 200k weights: the sample std is within ~0.5% of the true one


@pytest.mark.parametrize(
    "scheme, std",
    [
        ("normal", 0.5),  # the given --std
        ("xavier", math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("kaiming", math.sqrt(2 / FAN_IN)),
        ("uniform", 1 / math.sqrt(FAN_IN) / math.sqrt(3)),  # U(-a, a) has std a / sqrt(3)
    ],
)
def test_spread_matches_formula(scheme, std):
    torch.manual_seed(0)
    w = init_weights(FAN_IN, FAN_OUT, scheme, std=0.5)
    assert w.shape == (FAN_IN, FAN_OUT) and w.requires_grad
    assert w.std().item() == pytest.approx(std, rel=0.02)
    assert abs(w.mean().item()) < 0.02 * std * 10


def test_uniform_stays_within_its_bound():
    torch.manual_seed(0)
    w = init_weights(100, 50, "uniform")
    assert w.abs().max().item() <= 1 / math.sqrt(100)


def test_zeros_and_biases():
    assert torch.count_nonzero(init_weights(10, 4, "zeros")) == 0
    torch.manual_seed(0)
    assert torch.count_nonzero(init_bias(4, "kaiming")) == 0  # scaled schemes: zero bias
    assert torch.count_nonzero(init_bias(4, "normal", std=1.0)) == 4  # the article's recipe


def test_seed_repeats_an_initialisation():
    torch.manual_seed(7)
    a = init_weights(20, 5, "kaiming")
    torch.manual_seed(7)
    b = init_weights(20, 5, "kaiming")
    assert torch.equal(a, b)


def test_unknown_scheme_is_a_usage_error():
    with pytest.raises(UsageError, match="choose one of"):
        init_weights(3, 3, "he")
    with pytest.raises(UsageError, match="choose one of"):
        cnn(init="he")


def _train_a_few_steps(net, steps: int = 30) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 784, generator=g)  # (64, 784)
    y = torch.randint(0, 3, (64,), generator=g)  # (64,)
    from groundup.learn.losses import cross_entropy
    from groundup.learn.optim import BasicOptim

    opt = BasicOptim(net.parameters(), lr=0.5)
    for _ in range(steps):
        cross_entropy(net(x), y).backward()
        opt.step()
        opt.zero_grad()


def test_zeros_keeps_hidden_units_identical():
    """The symmetry problem: every hidden unit starts equal, gets the same gradient and
    stays equal to the others, so the layer is worth one unit."""
    net = mlp([8], n_out=3, init="zeros")
    # give the output layer some non-zero weights, equal for every hidden unit, so that
    # gradients do flow: the hidden units are then updated, but all alike
    with torch.no_grad():
        net[2].weight.copy_(torch.tensor([[0.3, -0.2, 0.1]]).expand(8, 3))
        net[0].bias.fill_(0.1)
    _train_a_few_steps(net)
    w1 = net[0].weight.detach()  # (784, 8): one column per hidden unit
    assert w1.abs().sum() > 0, "the hidden layer should have moved"
    assert torch.allclose(w1, w1[:, :1].expand_as(w1)), "hidden units should stay identical"
    w2 = net[2].weight.detach()  # (8, 3): one row per hidden unit
    assert torch.allclose(w2, w2[:1].expand_as(w2))


def test_zeros_everywhere_cannot_even_move_the_hidden_layer():
    """With every weight zero the hidden units output relu(0) = 0, so no gradient reaches
    the first layer at all: only the output biases learn."""
    net = mlp([8], n_out=3, init="zeros")
    _train_a_few_steps(net)
    assert torch.count_nonzero(net[0].weight) == 0
    assert torch.count_nonzero(net[2].bias) > 0


def test_random_init_breaks_the_symmetry():
    torch.manual_seed(0)
    net = mlp([8], n_out=3, init="kaiming")
    _train_a_few_steps(net)
    w1 = net[0].weight.detach()
    assert not torch.allclose(w1[:, 0], w1[:, 1])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_cnn_layers_follow_the_scheme(scheme):
    torch.manual_seed(0)
    net = cnn(n_out=10, channels=(32, 64), init=scheme, std=0.5)
    conv2 = net[4]  # (64, 32, 3, 3): fan_in 32 * 9 = 288, fan_out 64 * 9 = 576
    std = conv2.weight.std().item()
    expected = {
        "normal": 0.5,
        "uniform": 1 / math.sqrt(288) / math.sqrt(3),
        "xavier": math.sqrt(2 / (288 + 576)),
        "kaiming": math.sqrt(2 / 288),
        "zeros": 0.0,
    }[scheme]
    assert std == pytest.approx(expected, rel=0.05, abs=1e-9)
    bias_zero = torch.count_nonzero(conv2.bias).item() == 0
    assert bias_zero == (scheme != "normal")


def test_cli_warns_about_zeros_in_a_hidden_layer(cli, tmp_path):
    def train_zeros(model: str, out: str):
        return cli(
            "train", "--model", model, "--init", "zeros", "--epochs", "1", "--quiet",
            "--device", "cpu", "--out", str(tmp_path / out),
        )  # fmt: skip

    net = train_zeros("net", "run")
    assert net.returncode == 0
    message = net.stderr
    assert message.count("\n") == 1  # one line
    # it says what happens: nothing is learnt, the run stays at chance ...
    assert "learns nothing" in message and "0.5 for a pair" in message
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["history"][-1]["accuracy"] == 0.5  # ... as the run shows

    linear = train_zeros("linear", "run2")
    assert linear.stderr == ""  # one layer has no hidden units to be symmetric
