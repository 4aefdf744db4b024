"""The command line's options for a run's settings, built from `TrainConfig`.

Each option is one `TrainConfig` field: its flag (`--batch-size` for `batch_size`),
its help and its choices are read from the field's `Setting`, and the value is
passed on as typed. `TrainConfig` checks it, once, and a bad value comes back as a
`SettingError` that `main` words with the flag. No default, range or choice list is
written here.
"""

from __future__ import annotations

import argparse
from typing import Any

from groundup.runs.config import FULL, SETTINGS, TrainConfig

# the settings every command that trains reads the same way, in --help's order
DATA = ("data", "digits")
MODEL = ("model", "hidden", "init", "std")
TRAINING = ("epochs", "lr", "batch_size", "opt", "schedule", "augment", "seed", "device", "threads")
STOPPING = ("target_accuracy", "patience")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_setting(
    group: argparse._ActionsContainer, name: str, *, as_list: bool = False, help: str = ""
) -> None:
    """Add the option of setting `name`. `as_list`: a comma list of values (compare)."""
    s = SETTINGS[name]
    words = help or s.help
    if s.choices:
        words += f"; one of: {', '.join(s.choices)}"
    if as_list:
        words += " (a comma list compares them)"
    kwargs: dict[str, Any] = {"help": words, "default": None, "dest": name}
    if s.kind == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    elif s.kind == "digits":
        kwargs.update(nargs="+", metavar=s.metavar or "D")
    else:
        kwargs["metavar"] = "LIST" if as_list else (s.metavar or name.upper())
    names = [flag(name)]
    if name == "hidden" and not as_list:
        names.append("--layers")  # the name the ten-digit docs use for several widths
    group.add_argument(*names, **kwargs)


def add_settings(p: argparse.ArgumentParser, names: tuple[str, ...], title: str = "") -> None:
    group = p.add_argument_group(title) if title else p
    for name in names:
        add_setting(group, name)


def add_full_batch(group: argparse._ActionsContainer) -> None:
    """`--full-batch`, the words of the article's GD, for `--batch-size full`."""
    group.add_argument(
        "--full-batch",
        dest="batch_size",
        action="store_const",
        const=FULL,
        help=f"gradient descent: the same as --batch-size {FULL}",
    )


def settings_from_args(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    """The settings the user gave (None for the ones left to their defaults)."""
    return {name: getattr(args, name, None) for name in names}


def config_from_args(args: argparse.Namespace, names: tuple[str, ...], **fixed: Any) -> TrainConfig:
    """The checked `TrainConfig` of a command's options (plus `fixed` values)."""
    return TrainConfig.from_mapping({**settings_from_args(args, names), **fixed})


def split_list(name: str, text: str | None) -> list[Any]:
    """`--init normal,xavier` -> ['normal', 'xavier'], each value checked as the setting."""
    from groundup.errors import SettingError

    if text is None:
        return [None]
    items = [t for t in text.replace(" ", "").split(",") if t]
    if not items:
        raise SettingError(name, "needs at least one value")
    values = [SETTINGS[name].check(name, t) for t in items]
    if len(set(map(str, values))) != len(values):
        raise SettingError(name, f"lists a value twice: {text!r}")
    return values
