"""TrainConfig: the pair task's defaults, and the values no run can use."""

from __future__ import annotations

import pytest

from groundup.errors import UsageError
from groundup.runs.config import TrainConfig


def test_pair_defaults_are_the_articles_loop():
    linear = TrainConfig().resolved()
    assert (linear.model, linear.digits, linear.init) == ("linear", (2, 9), "kaiming")
    assert (linear.lr, linear.epochs, linear.batch_size) == (1.0, 20, 256)
    assert (linear.opt, linear.schedule, linear.augment) == ("sgd", "constant", False)
    assert linear.full_batch is False and linear.seed == 0
    net = TrainConfig(model="net").resolved()
    assert (net.lr, net.epochs, net.hidden) == (0.1, 40, [30])
    assert net.opt == "sgd"


def test_explicit_values_are_kept():
    c = TrainConfig(model="net", lr=0.5, epochs=3, hidden=[64], opt="momentum").resolved()
    assert (c.lr, c.epochs, c.hidden, c.opt) == (0.5, 3, [64], "momentum")


def test_resolved_is_a_copy():
    c = TrainConfig()
    c.resolved()
    assert c.lr is None and c.epochs is None


def test_articles_recipe_is_one_flag_away():
    c = TrainConfig(init="normal", std=1.0).resolved()
    assert (c.init, c.std, c.lr, c.epochs, c.batch_size) == ("normal", 1.0, 1.0, 20, 256)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("lr", 0.0, "--lr must be a number above 0, not 0.0"),
        ("lr", -1.0, "--lr"),
        ("lr", float("nan"), "--lr"),
        ("lr", "fast", "--lr"),
        ("epochs", 0, "--epochs must be at least 1, not 0"),
        ("epochs", -3, "--epochs"),
        ("batch_size", 0, "--batch-size must be at least 1, not 0"),
        ("std", 0.0, "--std"),
        ("std", float("nan"), "--std"),
        ("std", float("inf"), "--std"),
        ("hidden", [30, 0], "hidden layer widths"),
        ("target_accuracy", 1.5, "--target-accuracy"),
        ("target_accuracy", 0.0, "--target-accuracy"),
        ("patience", 0, "--patience"),
        ("seed", -1, "--seed must be a whole number from 0"),
        ("seed", 2**64, "--seed"),
    ],
)
def test_bad_values_are_usage_errors(field, value, match):
    config = TrainConfig(**{field: value})
    with pytest.raises(UsageError, match=match):
        config.validate()
    # resolved() checks before filling in defaults: epochs=0 must not become 20
    with pytest.raises(UsageError, match=match):
        config.resolved()


def test_to_dict_and_task_shape():
    c = TrainConfig(digits=(3, 5, 8))
    assert c.n_classes == 3 and not c.binary
    assert TrainConfig().binary
    d = TrainConfig().resolved().to_dict()
    assert d["digits"] == [2, 9] and d["seed"] == 0 and d["lr"] == 1.0
