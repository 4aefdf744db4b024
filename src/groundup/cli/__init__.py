"""The `groundup` command line: argparse → a typed config → the library.

Each group of subcommands lives in its own module with a `register(subparsers)`
function. Heavy imports (torch, matplotlib, the web stack) happen inside the
handlers, so that `groundup --help` and the commands that draw nothing stay quick.

Errors a user can fix (`GroundupError`) become one line on stderr and an exit
code: 2 for usage, 1 for bad data. `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from groundup.errors import GroundupError, SettingError

# The modules that add subcommands, in the order `--help` lists them.
COMMAND_MODULES = ("data", "fetch", "train", "experiments", "report", "serve")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (plus a pointer to --help), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        ns, rest = super().parse_known_args(args, namespace)
        # remember the deepest command that parsed ("groundup data info"), so that a
        # usage error found later, by the handler, reads like argparse's own
        if len(self.prog) > len(getattr(ns, "prog_", "")):
            ns.prog_ = self.prog
        return ns, rest


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(
        prog="groundup",
        description=(
            "Train, inspect and reuse the digit classifiers of 'How do Neural Networks "
            "really work?': the seven steps of learning on real MNIST digits."
        ),
        epilog="Run 'groundup COMMAND --help' for a command's options.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    from groundup import __version__

    parser.add_argument("--version", action="version", version=f"groundup {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"groundup.cli.{name}").register(subparsers)
    return parser


def add_debug(parser: argparse.ArgumentParser) -> None:
    """Let `--debug` also follow the subcommand (`groundup train --debug`)."""
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks"
    )


# Wider than any line groundup prints. rich cuts tables and trees to the console's
# width, and takes 80 columns when the output is not a terminal; at this width it
# renders everything at its natural width instead.
NATURAL_WIDTH = 100_000


def rich_console(natural: bool = False) -> Any:
    """A rich Console on stdout: at the terminal's width in a terminal; at the natural
    width of what is printed when piped or redirected (`groundup data ls > ls.txt`),
    or when `natural`, so that no row or column is ever cut off."""
    from rich.console import Console

    if natural or not sys.stdout.isatty():
        return Console(highlight=False, width=NATURAL_WIDTH)
    return Console(highlight=False)


def _pad_output_from_env() -> None:
    """GROUNDUP_PAD_OUTPUT=1 or 0 answers the width trap without timing it (for tests and
    benchmarks that need one answer on every machine); the library reads no variable."""
    value = os.environ.get("GROUNDUP_PAD_OUTPUT", "").strip()
    if value in ("0", "1"):
        from groundup.learn import names  # no torch: --help stays quick

        names.PAD_OUTPUT = value == "1"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)  # no command given: a usage error, so on stderr
        return 2
    _pad_output_from_env()
    try:
        return int(args.handler(args) or 0)
    except GroundupError as err:
        if args.debug:
            raise
        if err.exit_code == 2:  # a usage error: as argparse words its own
            prog = getattr(args, "prog_", "groundup")
            text = err.as_flag() if isinstance(err, SettingError) else str(err)
            sys.stderr.write(f"{prog}: error: {text} (see '{prog} --help')\n")
        else:
            sys.stderr.write(f"groundup: error: {err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("groundup: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
