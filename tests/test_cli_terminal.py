"""`groundup train` in a real terminal: tmux runs it, and its screen is read back as
training goes (send-keys, capture-pane), at 80 and at 120 columns.

The progress bar and the epoch table share one terminal. Drawn by two consoles, the
bar was left behind between the rows and ate their first characters; now each row
is printed above the one live bar. Every screen read while training runs must
show whole rows in order, with the bar, if any, alone on the last line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

# Each batch is slowed down, so that a fit takes a few seconds and the bar appears
# (it waits 1 s) while there are still epochs to print.
SLOW_TRAIN = """
import sys, time
from groundup.learn import learner
from groundup.cli import main

one_batch = learner.Learner._one_batch

def slow(self, xb, yb):
    time.sleep(0.1)
    return one_batch(self, xb, yb)

learner.Learner._one_batch = slow
sys.exit(main())
"""
EPOCHS = 6
ROW = re.compile(r"^ +\d+( +-?\d+\.\d{4}){4}$")  # epoch, train_loss, valid_loss, accuracy, s
BAR = "training "


@pytest.fixture
def tmux() -> str:
    found = shutil.which("tmux")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is missing: CI installs it (.ci/run), make test too (system-deps)")
        pytest.skip("needs tmux (apt-get install tmux; make test installs it when root)")
    return found


def _screen(tmux: str, socket: str) -> list[str]:
    out = subprocess.run(
        [tmux, "-L", socket, "capture-pane", "-p", "-t", "g"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.rstrip() for line in out.splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.parametrize("columns", [80, 120])
def test_rows_print_above_one_live_bar(tmux: str, tmp_path: Path, columns: int) -> None:
    script = tmp_path / "slow_train.py"
    script.write_text(textwrap.dedent(SLOW_TRAIN))
    socket = f"groundup-test-{uuid.uuid4().hex[:8]}"  # a server of our own, not the user's
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "COLUMNS", "LINES")}
    start = [
        tmux,
        "-L",
        socket,
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "g",
        "-x",
        str(columns),
        "-y",
        "40",
        "bash --norc --noprofile",
    ]
    subprocess.run(start, env=env, check=True, timeout=30)
    try:
        command = (
            f"clear; {sys.executable} {script} train --epochs {EPOCHS} "
            f"--out {tmp_path / 'run'}; echo END-OF-RUN"
        )
        subprocess.run(
            [tmux, "-L", socket, "send-keys", "-t", "g", command, "Enter"], check=True, timeout=30
        )
        screens: list[list[str]] = []
        end = time.monotonic() + 120
        while time.monotonic() < end:
            screen = _screen(tmux, socket)
            screens.append(screen)
            if any(line == "END-OF-RUN" for line in screen):
                break
            time.sleep(0.05)
        else:
            pytest.fail("training did not end within 120 s:\n" + "\n".join(screens[-1]))
    finally:
        subprocess.run([tmux, "-L", socket, "kill-server"], capture_output=True, timeout=30)

    # judge only screens read twice alike in a row: a read can fall between two writes
    # of one redraw, which no one sees for longer than that instant
    settled = [b for a, b in zip(screens, screens[1:]) if a == b]
    seen_bar = False
    for screen in settled:
        # drop the command line as the shell echoed it (it folds at the width)
        if not any(line.lstrip().startswith("epoch") for line in screen):
            continue
        body = screen[next(i for i, line in enumerate(screen) if "epoch  train_loss" in line) :]
        text = "\n".join(screen)
        bars = [i for i, line in enumerate(body) if line.startswith(BAR)]
        assert len(bars) <= 1, text
        if bars:
            seen_bar = True
            assert bars[0] == len(body) - 1, f"the bar is not on the last line:\n{text}"
            assert len(body[-1]) <= columns, text
        for k, line in enumerate(line for line in body[1:] if line.startswith(" ")):
            assert ROW.match(line), f"a broken epoch row: {line!r}\n{text}"
            assert int(line.split()[0]) == k + 1, text
    assert seen_bar, "the bar never showed: the test did not see training in progress"
    final = screens[-1]
    table = [line for line in final if ROW.match(line)]
    assert [int(line.split()[0]) for line in table] == list(range(1, EPOCHS + 1)), final
    assert not any(line.startswith(BAR) for line in final), final
    assert sum("epoch  train_loss" in line for line in final) == 1, final
    assert any(line.startswith("done: ") for line in final), final
