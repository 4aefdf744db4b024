"""A stand-in for the settings API that `groundup.runs.config` is gaining.

TEMPORARY. The web page is written against `TrainConfig.from_mapping`,
`TrainConfig.resolved`, `config_schema()` and `resolve_defaults()`, which are being
added to runs/config.py. Until they land, this module gives the same four names on
top of today's TrainConfig, so the page never holds a default, range or choice
list of its own. Delete it, and import from `groundup.runs.config`, once they do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from groundup.errors import UsageError
from groundup.runs.config import MODEL_NAMES, TrainConfig

_SCHEDULES = ("constant", "one-cycle")
_OPTIMIZERS = ("sgd", "momentum", "adam")  # the keys of learn.optim.OPTIMIZERS
_SCHEMES = ("normal", "uniform", "xavier", "kaiming", "zeros")  # learn.init.SCHEMES

# name: (type, choices, min, max, help); the defaults are TrainConfig's
_SPEC: dict[str, tuple[str, tuple[Any, ...] | None, float | None, float | None, str]] = {
    "data": ("str", None, None, None, "a source: sample, mnist, fashion-mnist, or a folder"),
    "digits": ("digits", tuple(range(10)), None, None, "a pair, first is label 1; or all"),
    "model": ("str", MODEL_NAMES, None, None, "the model to train"),
    "hidden": ("ints", None, 1, 4096, "hidden widths of net"),
    "init": ("str", _SCHEMES, None, None, "how the starting weights are drawn"),
    "std": ("float", None, 0.0, None, "standard deviation for init normal"),
    "epochs": ("int", None, 1, 1000, "passes over the training images"),
    "lr": ("float", None, 0.0, 1000.0, "the learning rate"),
    "batch_size": ("int", None, 1, 100_000, "images per step"),
    "full_batch": ("bool", None, None, None, "one step per epoch on the whole set"),
    "opt": ("str", _OPTIMIZERS, None, None, "the optimizer"),
    "schedule": ("str", _SCHEDULES, None, None, "how the learning rate moves in a run"),
    "augment": ("bool", None, None, None, "random shifts and turns of training images"),
    "seed": ("int", None, 0, 2**63 - 1, "seeds the initial weights and the shuffles"),
    "device": ("str", ("auto", "cpu", "cuda", "mps"), None, None, "where to train"),
    "target_accuracy": ("float", None, 0.0, 1.0, "stop once validation accuracy reaches it"),
    "patience": ("int", None, 1, None, "stop after this many epochs without progress"),
}


def _error(name: str, message: str) -> UsageError:
    err = UsageError(message)
    err.field = name  # type: ignore[attr-defined]
    return err


def _check(name: str, value: Any) -> Any:
    kind, choices, low, high, _ = _SPEC[name]
    if value is None:
        return None
    if kind == "digits":
        from groundup.data.digits import parse_digits

        if isinstance(value, list) and all(type(d) is int for d in value):
            value = [str(d) for d in value]
        if not isinstance(value, (str, list)):
            raise _error(name, "digits must be like '2 9' or 'all'")
        return parse_digits(value)
    if kind == "ints":
        value = [value] if type(value) is int else value
        if not (isinstance(value, list) and value and all(type(v) is int for v in value)):
            raise _error(name, f"{name} must be whole numbers, not {value!r}")
        for v in value:
            _range(name, v, low, high)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _error(name, f"{name} must be true or false, not {value!r}")
        return value
    if kind == "int" and type(value) is not int:
        raise _error(name, f"{name} must be a whole number, not {value!r}")
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _error(name, f"{name} must be a number, not {value!r}")
        if not math.isfinite(value):
            raise _error(name, f"{name} must be a finite number, not {value!r}")
        value = float(value)
    if choices is not None and value not in choices:
        raise _error(name, f"{name} must be one of {', '.join(choices)}, not {value!r}")
    _range(name, value, low, high)
    return value


def _range(name: str, value: float, low: float | None, high: float | None) -> None:
    if low is not None:
        if _SPEC[name][0] == "float" and value <= low:  # lr, std: above 0, not 0
            raise _error(name, f"{name} must be above {low:g}, not {value:g}")
        if value < low:
            raise _error(name, f"{name} must be at least {low:g}, not {value:g}")
    if high is not None and value > high:
        raise _error(name, f"{name} must be at most {high:g}, not {value:g}")


def from_mapping(mapping: Mapping[str, Any]) -> TrainConfig:
    """A TrainConfig from names and JSON values; a UsageError whose .field names the bad one."""
    unknown = sorted(set(mapping) - set(_SPEC))
    if unknown:
        raise _error(unknown[0], f"unknown setting {unknown[0]!r}")
    values = {k: _check(k, v) for k, v in mapping.items() if v is not None}
    return TrainConfig(**values)


def config_schema() -> dict[str, dict[str, Any]]:
    """Per field: type, default, choices, min, max, help (JSON-able)."""
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.name in _SPEC}
    schema = {}
    for name, (kind, choices, low, high, text) in _SPEC.items():
        default = defaults[name]
        schema[name] = {
            "type": kind,
            "default": list(default) if isinstance(default, tuple) else default,
            "choices": list(choices) if choices is not None else None,
            "min": low,
            "max": high,
            "help": text,
        }
    return schema


def resolve_defaults(mapping: Mapping[str, Any], n_train: int | None = None) -> dict[str, Any]:
    """Every setting of `mapping` resolved for its task (`TrainConfig.resolved`)."""
    return from_mapping(mapping).resolved(n_train).to_dict()
