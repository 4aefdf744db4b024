"""What the page's form may set, checked by `TrainConfig.from_mapping`.

The form holds no setting of its own: its fields are TrainConfig's (`PAGE_SETTINGS`),
with TrainConfig's defaults, choices, ranges and help (`settings_schema`, served by
`GET /api/settings`), checked once, by `from_mapping`. The page adds one setting,
the delay between batches, which only the live view reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from groundup.data.digits import ALL_DIGITS
from groundup.errors import UsageError
from groundup.runs.config import TrainConfig, config_schema
from groundup.web.live import DRAWN_MODELS

# The TrainConfig fields the page may set. The data is the server's (`serve --data`),
# never a page's, and the device is the CPU, where the live view reads the weights.
PAGE_SETTINGS = (
    "digits", "model", "hidden", "init", "opt", "lr", "schedule", "augment",
    "batch_size", "epochs", "seed",
)  # fmt: skip
# The page's one setting of its own: seconds to wait after each batch, so the eye can follow.
# Described as config_schema() describes TrainConfig's settings.
DELAY = {
    "kind": "float",
    "default": 0.05,
    "choices": [],
    "min": 0.0,
    "max": 1.0,
    "min_open": False,
    "help": "seconds to wait after each batch; from 0.4 on, each step is shown",
}


def settings_schema() -> dict[str, dict[str, Any]]:
    """What the page's form may choose: TrainConfig's schema for `PAGE_SETTINGS`, with
    the models the page can draw, the digits to offer, and the delay."""
    schema = {k: dict(v) for k, v in config_schema().items() if k in PAGE_SETTINGS}
    schema["model"]["choices"] = [m for m in schema["model"]["choices"] if m in DRAWN_MODELS]
    schema["digits"]["choices"] = list(ALL_DIGITS)  # a pair is chosen from these, or all
    return {**schema, "delay": DELAY}


def read_settings(params: Mapping[str, Any]) -> tuple[dict[str, Any], TrainConfig, float | None]:
    """The page's settings, checked once, by `TrainConfig.from_mapping`: (the choices
    as given, normalised; the TrainConfig they make, not yet resolved; the delay or None).

    A bad value is a UsageError naming the field (HTTP 400).
    """
    unknown = sorted(set(params) - {*PAGE_SETTINGS, "delay"})
    if unknown:
        raise UsageError(f"unknown setting {unknown[0]!r}")
    given = {k: v for k, v in params.items() if k in PAGE_SETTINGS and v is not None}
    config = TrainConfig.from_mapping(given)
    if config.model not in DRAWN_MODELS:
        raise UsageError(
            f"model must be one of {', '.join(DRAWN_MODELS)} on this page, not {config.model!r}"
        )
    choices = {k: getattr(config, k) for k in given}
    if "digits" in choices:
        choices["digits"] = list(choices["digits"])
    # the data is the server's; the device the CPU, where the live view reads the weights
    return choices, replace(config, device="cpu"), check_delay(params.get("delay"))


def check_delay(value: Any) -> float | None:
    """`value` as seconds in DELAY's range; None if missing."""
    if value is None:
        return None
    low, high = DELAY["min"], DELAY["max"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"delay must be a number of seconds, not {value!r}")
    if not low <= value <= high:
        raise UsageError(f"delay must be between {low:g} and {high:g} seconds, not {value:g}")
    return float(value)
