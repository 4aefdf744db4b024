"""One setting of a run: its help, the kind of value it takes, its choices and range.

`TrainConfig` (runs/config.py) gives each field a `Setting`; `Setting.check` turns what
a face collected (the command line's strings, the page's JSON) into the field's value,
or raises a `SettingError` that names the field. Nothing here imports torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from groundup.data import FULL
from groundup.errors import SettingError


@dataclass(frozen=True)
class Setting:
    """How one setting is chosen: its help and the values it may take."""

    help: str
    kind: str = "str"  # str | int | float | bool | digits | widths | batch
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # `low` itself is not allowed
    metavar: str | None = None

    def check(self, name: str, value: Any) -> Any:
        """`value`, made the field's type, or a `SettingError` naming `name`.

        Strings are read as the command line types them ("0.1", "256,128", "2 9")."""
        if value is None:
            return None
        value = self._convert(name, value)
        if self.choices and value not in self.choices:
            raise SettingError(name, f"must be one of {', '.join(self.choices)}, not {value!r}")
        numbers = value if self.kind == "widths" else (value,)
        for v in numbers:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self._check_range(name, v)
        return value

    def _convert(self, name: str, value: Any) -> Any:
        kind = self.kind
        if kind == "digits":
            from groundup.data.digits import parse_digits

            if isinstance(value, (list, tuple)):
                value = [str(v) for v in value]
            if not isinstance(value, (str, list)):
                raise SettingError(name, f"must be like '2 9' or 'all', not {value!r}")
            return parse_digits(value)
        if kind == "widths":
            if isinstance(value, str):
                value = [w for w in value.replace(" ", "").split(",") if w] or [value]
            elif isinstance(value, int):
                value = [value]
            if not isinstance(value, (list, tuple)) or not value:
                raise SettingError(name, f"must be widths like 256,128, not {value!r}")
            return tuple(_whole(name, w) for w in value)
        if kind == "batch" and (value == FULL):
            return FULL
        if kind in ("int", "batch"):
            return _whole(name, value)
        if kind == "float":
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise SettingError(name, f"must be a number, not {value!r}") from None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SettingError(name, f"must be a number, not {value!r}")
            if not math.isfinite(value):
                raise SettingError(name, f"must be a finite number, not {value}")
            return float(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise SettingError(name, f"must be true or false, not {value!r}")
            return value
        if not isinstance(value, str):
            raise SettingError(name, f"must be a string, not {value!r}")
        return value

    def _check_range(self, name: str, v: float) -> None:
        low, high = self.low, self.high
        too_low = low is not None and (v < low or (self.low_open and v == low))
        too_high = high is not None and v > high
        if too_low or too_high:
            whole = self.kind in ("int", "batch", "widths")
            fmt = (lambda n: str(int(n))) if whole else format_number
            parts = []
            if low is not None:
                parts.append(f"{'above' if self.low_open else 'at least'} {fmt(low)}")
            if high is not None:
                parts.append(f"at most {fmt(high)}")
            raise SettingError(name, f"must be {' and '.join(parts)}, not {fmt(v)}")

    def describe(self) -> dict[str, Any]:
        """JSON for the web page's form: what it may offer, and its words."""
        return {
            "kind": self.kind,
            "help": self.help,
            "choices": list(self.choices),
            "min": self.low,
            "max": self.high,
            "min_open": self.low_open,
        }


def _whole(name: str, value: Any) -> int:
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingError(name, f"must be a whole number, not {value!r}")
    return value


def format_number(v: float) -> str:
    return f"{v:g}"
