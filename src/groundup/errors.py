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


class SettingError(UsageError):
    """A setting of a run has a value no run can use (exit code 2).

    `field` names the setting and `problem` says what is wrong, so that each face
    words it its own way: the library and the page say "lr must be above 0, not 0",
    the command line "--lr must be above 0, not 0" (`as_flag`)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem

    def as_flag(self) -> str:
        return f"--{self.field.replace('_', '-')} {self.problem}"


class RunError(GroundupError):
    """A run directory or model file is missing, corrupt or mismatched (exit code 1)."""

    exit_code = 1


class DivergenceError(GroundupError):
    """The loss became NaN or infinite during training (exit code 1).

    `what` says where (epoch, batch, learning rate), without the advice."""

    exit_code = 1
    what = ""
