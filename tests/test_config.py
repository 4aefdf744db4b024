"""TrainConfig: the one home of every setting's default, choices, range and help."""

from __future__ import annotations

import argparse
import re

import pytest

from groundup.errors import SettingError, UsageError
from groundup.learn import names
from groundup.runs.config import (
    SETTINGS,
    TASK_DEFAULTS,
    TrainConfig,
    config_schema,
    resolve_defaults,
)


def test_pair_defaults_are_the_articles_loop():
    linear = TrainConfig().resolved()
    assert (linear.model, linear.digits, linear.init) == ("linear", (2, 9), "kaiming")
    assert (linear.lr, linear.epochs, linear.batch_size) == (1.0, 20, 256)
    assert (linear.opt, linear.schedule, linear.augment) == ("sgd", "constant", False)
    assert linear.full_batch is False and linear.seed == 0
    net = TrainConfig(model="net").resolved()
    assert (net.lr, net.epochs, net.hidden) == (0.1, 40, (30,))
    assert net.opt == "sgd"


def test_explicit_values_are_kept():
    c = TrainConfig(model="net", lr=0.5, epochs=3, hidden=[64], opt="momentum").resolved()
    assert (c.lr, c.epochs, c.hidden, c.opt) == (0.5, 3, (64,), "momentum")


def test_resolved_is_a_copy_and_a_config_cannot_be_changed_from_outside():
    c = TrainConfig()
    c.resolved()
    assert c.lr is None and c.epochs is None
    with pytest.raises(AttributeError):
        c.lr = 0.5  # type: ignore[misc]


def test_articles_recipe_is_one_flag_away():
    c = TrainConfig(init="normal", std=1.0).resolved()
    assert (c.init, c.std, c.lr, c.epochs, c.batch_size) == ("normal", 1.0, 1.0, 20, 256)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("lr", 0.0, "lr must be above 0 and at most 3.40282e+38, not 0"),
        ("lr", -1.0, "lr must be above 0"),
        ("lr", float("nan"), "lr must be a finite number"),
        ("lr", "fast", "lr must be a number, not 'fast'"),
        ("lr", 3.5e38, "lr must be above 0 and at most"),  # float32 overflows past it
        ("epochs", 0, "epochs must be at least 1 and at most 100000, not 0"),
        ("epochs", -3, "epochs must be at least 1"),
        ("epochs", 2.5, "epochs must be a whole number"),
        ("batch_size", 0, "batch_size must be at least 1"),
        ("batch_size", "half", "batch_size must be a whole number"),
        ("std", 0.0, "std must be above 0"),
        ("std", float("nan"), "std must be a finite number"),
        ("std", float("inf"), "std must be a finite number"),
        ("hidden", [30, 0], "hidden must be at least 1"),
        ("target_accuracy", 1.5, "target_accuracy must be above 0 and at most 1"),
        ("target_accuracy", 0.0, "target_accuracy"),
        ("patience", 0, "patience must be at least 1"),
        ("seed", -1, "seed must be at least 0 and at most 9223372036854775807, not -1"),
        ("seed", 2**64, "seed"),
        ("model", "resnet", "model must be one of linear, net, cnn, mean, not 'resnet'"),
        ("init", "he", "init must be one of normal, uniform, xavier, kaiming, zeros"),
        ("opt", "lbfgs", "opt must be one of sgd, momentum, adam"),
        ("device", "abacus", "device must be auto, cpu, cuda, cuda:N or mps"),
        ("digits", [2, 2], "digits lists a digit twice"),
        ("augment", "yes", "augment must be true or false"),
    ],
)
def test_bad_values_are_refused_when_the_config_is_made(field, value, match):
    with pytest.raises(SettingError, match=re.escape(match)) as err:
        TrainConfig(**{field: value})
    assert err.value.field == field
    assert isinstance(err.value, UsageError)  # exit code 2 on the command line
    assert err.value.as_flag().startswith("--" + field.replace("_", "-") + " ")


def test_hidden_widths_belong_to_the_net():
    with pytest.raises(SettingError, match="hidden sets the widths of model net"):
        TrainConfig(model="linear", hidden=[30])


def test_from_mapping_reads_what_the_faces_send():
    # the command line sends strings, the page JSON values: both give the same config
    typed = TrainConfig.from_mapping(
        {"lr": "0.5", "hidden": "64,32", "model": "net", "epochs": "3"}
    )
    sent = TrainConfig.from_mapping({"lr": 0.5, "hidden": [64, 32], "model": "net", "epochs": 3})
    assert typed == sent and typed.hidden == (64, 32)
    assert TrainConfig.from_mapping({"lr": None}).lr is None  # None keeps the default
    with pytest.raises(SettingError, match="colour is not a setting"):
        TrainConfig.from_mapping({"colour": "red"})
    assert TrainConfig.from_mapping({"batch_size": "full"}).full_batch


def test_every_choice_list_is_its_registrys():
    from groundup.learn.callbacks import SCHEDULES
    from groundup.learn.init import SCHEMES
    from groundup.learn.models import MODELS
    from groundup.learn.optim import OPTIMIZERS

    assert SETTINGS["model"].choices == names.MODELS == tuple(MODELS)
    assert SETTINGS["opt"].choices == names.OPTIMIZERS == tuple(OPTIMIZERS)
    assert SETTINGS["init"].choices == names.INITS == SCHEMES
    assert SETTINGS["schedule"].choices == names.SCHEDULES == tuple(SCHEDULES)
    assert {model for _, model in TASK_DEFAULTS} == set(names.MODELS)


def test_help_is_made_from_the_defaults_table():
    # the help says what resolved() does: change the table and the help follows
    assert "a pair: linear 1, net 0.1" in SETTINGS["lr"].help
    assert "more digits: linear 0.01, net 0.003" in SETTINGS["lr"].help
    large = [TASK_DEFAULTS[("large", m)].epochs for m in ("linear", "net", "cnn")]
    assert "a large set: linear {}, net {}, cnn {}".format(*large) in SETTINGS["epochs"].help
    assert "(default 256)" in SETTINGS["batch_size"].help


def test_the_pages_schema_and_resolved_defaults():
    schema = config_schema()
    assert set(schema) == set(SETTINGS)
    assert schema["model"]["choices"] == list(names.MODELS)
    assert schema["lr"]["min"] == 0.0 and schema["lr"]["min_open"] is True
    assert schema["batch_size"]["default"] == 256 and schema["digits"]["default"] == [2, 9]
    ten_net = resolve_defaults({"digits": "all", "model": "net"})
    assert (ten_net["lr"], ten_net["epochs"], ten_net["opt"]) == (0.003, 40, "adam")
    assert (ten_net["schedule"], ten_net["augment"], ten_net["hidden"]) == (
        "one-cycle",
        True,
        [256, 128],
    )
    assert resolve_defaults({"digits": "all", "model": "linear"})["lr"] == 0.01


def test_cli_options_are_built_from_the_settings():
    from groundup.cli import options

    p = argparse.ArgumentParser()
    options.add_settings(p, ("lr", "model", "augment", "digits"))
    args = p.parse_args(["--lr", "0.5", "--model", "net", "--no-augment", "--digits", "3", "5"])
    config = options.config_from_args(args, ("lr", "model", "augment", "digits"))
    assert (config.lr, config.model, config.augment, config.digits) == (0.5, "net", False, (3, 5))
    help_text = p.format_help()
    assert SETTINGS["lr"].help.split("(")[0].strip() in help_text
    assert "linear, net, cnn, mean" in help_text


def test_to_dict_and_task_shape():
    c = TrainConfig(digits=(3, 5, 8))
    assert c.n_classes == 3 and not c.binary
    assert TrainConfig().binary
    d = TrainConfig().resolved().to_dict()
    assert d["digits"] == [2, 9] and d["seed"] == 0 and d["lr"] == 1.0
    assert TrainConfig(**{**d, "digits": tuple(d["digits"])}) == TrainConfig().resolved()
