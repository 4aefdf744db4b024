"""The page's training settings: what its form may choose, checked one by one.

Every field is optional in a request; a missing one takes the default below, and
`None` takes the task's default from `TrainConfig.resolved()` (the article's
learning rate and epochs for a pair). A bad value is a `UsageError` naming the
field, which the app answers with HTTP 400.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from groundup.errors import UsageError
from groundup.runs.config import TrainConfig

OPTIMIZER_NAMES = ("sgd", "momentum", "adam")
# The article's two models: the page draws their first layer as 28×28 weight images.
MODEL_NAMES = ("linear", "net")


@dataclass
class Settings:
    """What the page's form chooses; `None` takes the task's default (see TrainConfig)."""

    digits: tuple[int, ...] = (2, 9)  # a pair (the first is label 1) or all ten
    model: str = "linear"  # linear | net (the article's simple_net)
    init: str = "kaiming"  # normal (std 1, the article's) | uniform | xavier | kaiming | zeros
    lr: float | None = None  # default: 1.0 linear, 0.1 net; 0.003 (Adam) for all ten
    batch_size: int = 256
    epochs: int | None = None  # default: 20 linear, 40 net
    seed: int = 0  # seeds the initial weights and the shuffles: the same seed replays a run
    opt: str | None = None  # sgd | momentum | adam; default sgd for a pair
    hidden: int | None = None  # hidden units of `net`; default 30 for a pair
    delay: float = 0.05  # seconds to wait after each batch, so that the eye can follow

    def train_config(self, data: str) -> TrainConfig:
        """The full, resolved TrainConfig. The page keeps the learning rate constant
        (no schedule would undo a change made by hand) and does not augment."""
        return TrainConfig(
            data=data,
            digits=self.digits,
            model=self.model,
            hidden=[self.hidden] if self.hidden else None,
            init=self.init,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            opt=self.opt,
            schedule="constant",
            augment=False,
            seed=self.seed,
            device="cpu",
        ).resolved()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["digits"] = list(self.digits)
        return d


def parse_settings(params: Mapping[str, Any]) -> Settings:
    """Check the page's settings one by one; a `UsageError` names the first bad one."""
    from groundup.data.tensors import parse_digits
    from groundup.learn.init import SCHEMES

    unknown = sorted(set(params) - set(Settings.__dataclass_fields__))
    if unknown:
        raise UsageError(f"unknown setting {unknown[0]!r}")
    s = Settings()
    if params.get("digits") is not None:
        digits = params["digits"]
        if isinstance(digits, list) and all(_is_int(d) for d in digits):
            digits = [str(d) for d in digits]
        if not isinstance(digits, (str, list)):
            raise UsageError("digits must be like '2 9' or 'all'")
        s.digits = parse_digits(digits)
    s.model = _choice(params, "model", MODEL_NAMES, s.model)
    s.init = _choice(params, "init", SCHEMES, s.init)
    s.opt = _choice(params, "opt", OPTIMIZER_NAMES, None)
    s.lr = number_setting(params, "lr", low=0.0, high=1000.0, low_open=True)
    s.batch_size = _integer(params, "batch_size", 1, 100_000, s.batch_size)
    s.epochs = _integer(params, "epochs", 1, 1000, None)
    s.seed = _integer(params, "seed", 0, 2**31 - 1, s.seed)
    s.hidden = _integer(params, "hidden", 1, 4096, None)
    delay = number_setting(params, "delay", low=0.0, high=5.0)
    s.delay = s.delay if delay is None else delay
    return s


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _choice(params: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: Any) -> Any:
    value = params.get(key)
    if value is None or value in ("", "auto"):
        return default
    if value not in allowed:
        raise UsageError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def number_setting(
    params: Mapping[str, Any], key: str, low: float, high: float, low_open: bool = False
) -> float | None:
    """`params[key]` as a float in [low, high] (or (low, high] if `low_open`); None if
    missing. JSON's true and false are not numbers here, although Python's are."""
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{key} must be a number, not {value!r}")
    if value < low or (low_open and value == low) or value > high:
        side = "above" if low_open else "at least"
        raise UsageError(f"{key} must be {side} {low:g} and at most {high:g}, not {value:g}")
    return float(value)


def _integer(params: Mapping[str, Any], key: str, low: int, high: int, default: Any) -> Any:
    value = params.get(key)
    if value is None:
        return default
    if not _is_int(value):
        raise UsageError(f"{key} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise UsageError(f"{key} must be between {low} and {high}, not {value}")
    return value
