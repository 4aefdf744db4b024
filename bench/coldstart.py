"""Cold start: what `groundup train` costs beyond importing torch, and what the light
commands import.

1. The total wall time of `groundup train` (the bundled sample, the linear model, the
   default settings) against `python -c "import torch"`, each a fresh process, timed in
   turn. Target: 1.5 s of overhead or less beyond importing torch.
2. One extra `python -X importtime` run says where the overhead goes: imports beyond
   torch, training (the epochs' own seconds), and the rest (start-up, data, saving).
3. `groundup --help`, `groundup train --help`, `groundup data --help` and
   `groundup data info` are run in a fresh interpreter that then lists which heavy
   modules are loaded. None of them needs matplotlib, pandas, the web stack, or
   (bar `data info`'s numpy) torch; each one loaded counts against the target of 0.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from run import ROOT, interleave, median, pair_ratio

TARGET_OVERHEAD_S = 1.5

# module -> why a light command should not load it
HEAVY = ("torch", "matplotlib", "pandas", "scipy", "sklearn", "starlette", "uvicorn", "PIL")

# command line -> heavy modules it may load
LIGHT_COMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("--help",): (),
    ("train", "--help"): (),
    ("data", "--help"): (),
    ("data", "info"): (),  # reads the cached sample with numpy; no tensors needed
}

_CHECK = """
import contextlib, io, json, sys
from groundup.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(json.loads(sys.argv[1]))
    except SystemExit as exit:
        code = exit.code
loaded = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
print(json.dumps({"code": code, "loaded": loaded}))
"""


def groundup_cmd() -> list[str]:
    """The `groundup` script next to this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "groundup"
    return [str(script)] if script.exists() else [sys.executable, "-m", "groundup"]


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def where_time_goes(out: Path) -> dict[str, float]:
    """One `-X importtime` run of `groundup train --json`: seconds per phase."""
    cmd = [sys.executable, "-X", "importtime", "-m", "groundup", "train", "--json", "--out"]
    proc = subprocess.run([*cmd, str(out)], capture_output=True, text=True, cwd=ROOT, check=True)
    imports = torch = 0.0
    for line in proc.stderr.splitlines():
        # "import time: <self us> | <cumulative us> | <one space + two per level><name>"
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( +)(\S+)$", line)
        if not m:
            continue
        if len(m.group(2)) == 1:  # top level: its cumulative time covers what it imported
            imports += int(m.group(1)) / 1e6
        if m.group(3) == "torch":  # listed once, wherever it was first imported
            torch = int(m.group(1)) / 1e6
    epochs = json.loads(proc.stdout.strip().splitlines()[-1])["epochs"]
    return {
        "torch": torch,
        "beyond_torch": imports - torch,
        "training": sum(e["seconds"] for e in epochs),
    }


def light_command_rows(ctx: Any) -> list[dict[str, Any]]:
    rows = []
    for args, allowed in LIGHT_COMMANDS.items():
        proc = subprocess.run(
            [sys.executable, "-c", _CHECK, json.dumps(list(args)), json.dumps(HEAVY)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode != 0 or not proc.stdout.strip():
            rows.append(ctx.skip(f"`groundup {' '.join(args)}` imports", proc.stderr[-200:]))
            continue
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        extra = [m for m in got["loaded"] if m not in allowed]
        rows.append(
            ctx.row(
                f"heavy modules `groundup {' '.join(args)}` loads without need",
                float(len(extra)),
                target=0,
                goal="max",
                unit="modules",
                note=", ".join(extra) or "none",
            )
        )
    return rows


def run(ctx: Any) -> list[dict[str, Any]]:
    rows = light_command_rows(ctx)
    gu = groundup_cmd()
    with tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(10**6))
        if ctx.smoke:  # two cheap processes: exercises the timing, not the figure
            base_cmd, ours_cmd = [sys.executable, "-c", "pass"], [*gu, "--help"]
        else:
            base_cmd = [sys.executable, "-c", "import torch"]
            ours_cmd = [*gu, "train", "--out"]
        fns = {
            "torch": lambda _: _run(base_cmd),
            "train": lambda _: _run(
                ours_cmd if ctx.smoke else [*ours_cmd, f"{tmp}/run-{next(runs)}"]
            ),
        }
        reps = ctx.reps(5)
        times = interleave(fns, reps, warmup=0 if ctx.smoke else 1)
        overheads = [a - b for a, b in zip(times["train"], times["torch"], strict=True)]
        ratio, _ = pair_ratio(times["train"], times["torch"])
        note = f"{ratio:.2f}× the time of importing torch"
        if not ctx.smoke:
            phases = where_time_goes(Path(tmp) / "importtime")
            rest = median(times["train"]) - phases["torch"] - phases["beyond_torch"]
            rest -= phases["training"]
            note += (
                f"; one traced run: torch import {phases['torch']:.2f} s, other imports "
                f"{phases['beyond_torch']:.2f} s, training {phases['training']:.2f} s, "
                f"the rest (start-up, data, saving) about {rest:.2f} s"
            )
        what = "`groundup --help` vs `python -c pass`" if ctx.smoke else (
            "`groundup train` (sample, linear, defaults) minus `python -c 'import torch'`"
        )
        rows.append(
            ctx.row(
                f"cold start: {what}",
                median(overheads),
                target=TARGET_OVERHEAD_S,
                goal="max",
                unit="s",
                ours_s=median(times["train"]),
                base_s=median(times["torch"]),
                spread=(min(overheads), max(overheads)),
                reps=reps,
                note=note,
            )
        )
    return rows
