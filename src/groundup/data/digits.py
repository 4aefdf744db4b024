"""Choosing digits: `--digits 2 9`, a list, or `all`; and checking the data has them.

Kept apart from `groundup.data.tensors`, and free of torch, so that commands which only
look at the data (`groundup data info`) start quickly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from groundup.errors import DataError, SettingError

if TYPE_CHECKING:
    from groundup.data.sources import RawData

ALL_DIGITS: tuple[int, ...] = tuple(range(10))

__all__ = ["ALL_DIGITS", "parse_digits", "require_digits"]


def parse_digits(tokens: Sequence[str] | str | None) -> tuple[int, ...]:
    """Read `--digits`: `2 9` (the default), any list such as `3 5 8`, or `all`.

    The order matters for a pair: the first digit is label 1, the second label 0.
    """
    if tokens is None:
        return (2, 9)
    if isinstance(tokens, str):
        tokens = tokens.replace(",", " ").split()
    tokens = [t for tok in tokens for t in str(tok).replace(",", " ").split()]
    if len(tokens) == 1 and tokens[0].lower() == "all":
        return ALL_DIGITS
    digits: list[int] = []
    for tok in tokens:
        # not str.isdigit, which also accepts "²" and "٣" (and int("²") then fails)
        if not (len(tok) == 1 and tok in "0123456789"):
            raise SettingError("digits", f"takes single digits 0-9 or 'all', not {tok!r}")
        digits.append(int(tok))
    if len(set(digits)) != len(digits):
        raise SettingError("digits", f"lists a digit twice: {' '.join(tokens)}")
    if len(digits) < 2:
        raise SettingError("digits", "needs at least two classes, for example '2 9'")
    return tuple(digits)


def require_digits(raw: RawData, digits: Sequence[int]) -> None:
    """Raise `DataError` if a chosen digit has no image in a split of `raw`."""
    for split, labels in (("train", raw.train_labels), ("valid", raw.valid_labels)):
        present = set(np.unique(labels).tolist())
        for d in digits:
            if d not in present:
                have = " ".join(str(p) for p in sorted(present)) or "none"
                raise DataError(
                    f"the {split} split of {raw.name!r} has no digit {d} (it has: {have})"
                )
