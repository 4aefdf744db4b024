"""Running `groundup` in the test's own process, as a user would run it in a shell."""

from __future__ import annotations

import pytest

from groundup.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `groundup ARGS` in this process (no new interpreter to import torch again):
    (exit code, stdout, stderr). argparse's usage errors and --help exit via SystemExit."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err
