"""The exceptions groundup raises for things a user can fix.

Each carries a message written for a learner, and an exit code the command line
uses: 2 for a usage error (a bad option or value), 1 for bad data or a bad file.
Anything else that escapes is a bug, and the CLI shows its traceback.
"""

from __future__ import annotations


class GroundupError(Exception):
    """Base class: a problem the user can fix, reported as one line."""

    exit_code = 1


class DataError(GroundupError):
    """The data is missing, malformed or inconsistent (exit code 1)."""

    exit_code = 1


class UsageError(GroundupError, ValueError):
    """An option or argument has a value we cannot use (exit code 2)."""

    exit_code = 2


class RunError(GroundupError):
    """A run directory or model file is missing, corrupt or mismatched (exit code 1)."""

    exit_code = 1


class DivergenceError(GroundupError):
    """The loss became NaN or infinite during training (exit code 1).

    `what` says where (epoch, batch, learning rate), without the advice."""

    exit_code = 1
    what = ""
