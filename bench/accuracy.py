"""`make accuracy`: train every ten-class model with its default settings, check the goals.

    python bench/accuracy.py                   # all of it (several minutes on 2 cores)
    python bench/accuracy.py --data sample     # only the bundled sample
    python bench/accuracy.py --models net,cnn  # only some models
    python bench/accuracy.py --smoke           # one epoch each on the sample: checks the script

Each run is `groundup train --data D --digits all --model M --json` in its own
process, exactly what a user types, timed from start to exit: Python and torch
start-up, loading the data, training and saving are all in the time. The goals
(docs/ten-digits.md) are on the validation split:

    sample (4,000 / 1,000):         linear >= 89%    net >= 96.5%   cnn >= 98%
    Fashion-MNIST (60,000 / 10,000): linear >= 84.5%  net >= 89.5% in 30 s or less
                                                      cnn >= 91.5%

`mean`, the pixel-similarity baseline, has no goal: it is the number to beat.
Beside the wall time, each row gives the run's training FLOPs (model.json's `compute`:
3 × forward FLOPs per image × training images × epochs, see groundup.learn.compute)
and the threads it used. Prints a table, writes bench/out/accuracy.json (`make
bench-publish` makes it the committed bench/accuracy.json), and exits 1 if a goal is
missed.

This machine is shared, and a time says as much about the neighbours as about us:
with torch's two threads on two busy cores, the same Fashion-MNIST `net` run took
16 s once and 99 s a minute later (one thread: 22 s both times). So a run with a
time goal that misses it is run again, up to TIME_TRIES times in all, and the best
time counts, as `timeit` does; every time is kept in the JSON, with the load average.
The accuracy does not change between tries: the seed fixes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "out" / "accuracy.json"  # untracked; see OUT_DIR in bench/run.py
FASHION = Path("/usr/share/datasets/fashion-mnist")
TIME_TRIES = 3


@dataclass(frozen=True)
class Goal:
    data: str
    model: str
    accuracy: float | None  # the least validation accuracy; None: a baseline
    seconds: float | None = None  # the most wall time for the whole run


GOALS = (
    Goal("sample", "mean", None),
    Goal("sample", "linear", 0.89),
    Goal("sample", "net", 0.965),
    Goal("sample", "cnn", 0.98),
    Goal("fashion-mnist", "mean", None),
    Goal("fashion-mnist", "linear", 0.845),
    Goal("fashion-mnist", "net", 0.895, seconds=30.0),
    Goal("fashion-mnist", "cnn", 0.915),
)


# The time-to-accuracy goals of a quiet 2-core machine (Intel Xeon and AMD EPYC alike):
# (least accuracy, most seconds for the whole process). Reported beside each row and
# kept in the JSON; a miss does not fail the run, since a shared machine's times say as
# much about its neighbours (docs/benchmarks.md has the figures and the load).
TIME_TO_ACCURACY = {
    ("fashion-mnist", "net"): (0.900, 5.0),
    ("fashion-mnist", "cnn"): (0.925, 60.0),
    ("sample", "cnn"): (0.990, 10.0),
    ("sample", "net"): (0.985, 2.0),
}


def time_to_accuracy(row: dict[str, Any]) -> str:
    """'98.5% in 2 s: met' / '...: missed' for a row with such a goal, else ''."""
    goal = TIME_TO_ACCURACY.get((row["data"], row["model"]))
    if goal is None or "accuracy" not in row:
        return ""
    acc, secs = goal
    met = row["accuracy"] >= acc and row["seconds"] <= secs
    return f"{acc:.1%} in {secs:g} s: {'met' if met else 'missed'}"


def run_one(goal: Goal, out_dir: Path, smoke: bool) -> dict[str, Any]:
    """Train with the defaults in a fresh process; the result and whether it met the goal."""
    run_dir = out_dir / f"{goal.data}-{goal.model}"
    cmd = [
        sys.executable, "-m", "groundup", "train",
        "--data", goal.data, "--digits", "all", "--model", goal.model,
        "--json", "--out", str(run_dir),
    ]  # fmt: skip
    if smoke:
        cmd += ["--epochs", "1"]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    row: dict[str, Any] = {
        "data": goal.data,
        "model": goal.model,
        "goal_accuracy": goal.accuracy,
        "goal_seconds": goal.seconds,
        "seconds": round(seconds, 1),
        "load_average": round((load_before + os.getloadavg()[0]) / 2, 1),
    }
    if proc.returncode != 0:
        row.update(ok=False, error=proc.stderr.strip().splitlines()[-1:] or ["failed"])
        return row
    result = json.loads(proc.stdout)
    meta = json.loads((run_dir / "model.json").read_text())
    config = meta["config"]
    row.update(
        accuracy=result["final"]["accuracy"],
        valid_loss=result["final"]["valid_loss"],
        train_seconds=round(sum(e["seconds"] for e in result["epochs"]), 1),
        epochs=len(result["epochs"]),
        training_flops=meta["compute"]["training_flops"],
        threads=config.get("threads"),
        settings={
            k: config[k] for k in ("hidden", "opt", "lr", "schedule", "batch_size", "augment")
        },  # fmt: skip
    )
    met = goal.accuracy is None or row["accuracy"] >= goal.accuracy
    in_time = goal.seconds is None or seconds <= goal.seconds
    row["ok"] = smoke or (met and in_time)
    return row


def settings_text(row: dict[str, Any]) -> str:
    s = row.get("settings")
    if not s:
        return ""
    if row["model"] == "mean":
        return "one pass"
    parts = [f"{row['epochs']} ep", f"{s['opt']} {s['schedule']} lr {s['lr']:g}"]
    if row["model"] == "net":
        parts.insert(0, "-".join(map(str, [784, *s["hidden"], 10])))
    if s["augment"]:
        parts.append("augment")
    return ", ".join(parts)


def _time_text(row: dict[str, Any]) -> str:
    tries = row.get("tries_seconds", [])
    if len(tries) > 1:
        return f"{row['seconds']:.1f} s (best of {', '.join(f'{t:.0f}' for t in tries)})"
    return f"{row['seconds']:.1f} s"


def print_table(rows: list[dict[str, Any]], smoke: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from groundup.learn.compute import flops_text

    table = Table(title="ten classes, default settings" + (" (smoke: 1 epoch)" if smoke else ""))
    for name, justify in [("data", "left"), ("model", "left"), ("settings", "left"),
                          ("valid acc", "right"), ("goal", "right"), ("run time", "right"),
                          ("training FLOPs", "right"), ("threads", "right"),
                          ("time to accuracy", "left"),
                          ("load", "right"), ("", "left")]:  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        goal = "baseline" if r["goal_accuracy"] is None else f">= {r['goal_accuracy']:.1%}"
        if r["goal_seconds"]:
            goal += f", <= {r['goal_seconds']:.0f} s"
        acc = f"{r['accuracy']:.2%}" if "accuracy" in r else "error: " + " ".join(r["error"])
        table.add_row(
            r["data"], r["model"], settings_text(r), acc, goal, _time_text(r),
            flops_text(r["training_flops"]) if "training_flops" in r else "-",
            str(r.get("threads", "-")), time_to_accuracy(r), f"{r['load_average']:.1f}",
            "ok" if r["ok"] else "MISSED",
        )  # fmt: skip
    Console(highlight=False, width=140).print(table)


def write_results(rows: list[dict[str, Any]], path: Path) -> None:
    sys.path.insert(0, str(BENCH_DIR.parent / "src"))
    sys.path.insert(0, str(BENCH_DIR))
    import torch

    from groundup.atomic import atomic_write_bytes
    from groundup.learn.widths import cpu_model

    doc = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "note": "run time: the whole `groundup train` process, the best of tries_seconds "
        "for a run with a time goal; load: the load average during it (a shared machine)",
        "all_ok": all(r["ok"] for r in rows),
        "runs": rows,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(doc, indent=2) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=("sample", "fashion-mnist"), help="only this data")
    parser.add_argument("--models", help="only these models, e.g. net,cnn")
    parser.add_argument("--smoke", action="store_true", help="one epoch each, on the sample")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--threads", type=int, help="OMP_NUM_THREADS for the runs (default: torch's own choice)"
    )
    args = parser.parse_args(argv)

    goals = [g for g in GOALS if args.data in (None, g.data)]
    if args.models:
        wanted = set(args.models.split(","))
        goals = [g for g in goals if g.model in wanted]
    if args.smoke:
        goals = [g for g in goals if g.data == "sample"]
    if any(g.data == "fashion-mnist" for g in goals) and not FASHION.is_dir():
        print(f"note: Fashion-MNIST is not at {FASHION} (Debian: dataset-fashion-mnist); "
              "those runs are skipped")  # fmt: skip
        goals = [g for g in goals if g.data != "fashion-mnist"]

    if args.threads:  # inherited by the runs, and recorded in the JSON
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="groundup-accuracy-") as tmp:
        for goal in goals:
            row = run_one(goal, Path(tmp), args.smoke)
            tries = [row["seconds"]]
            while goal.seconds and "accuracy" in row and row["seconds"] > goal.seconds:
                if len(tries) == TIME_TRIES:
                    break
                print(f"  {goal.data} {goal.model}: {row['seconds']:.1f} s, "
                      f"load {row['load_average']}; again", flush=True)  # fmt: skip
                again = run_one(goal, Path(tmp), args.smoke)
                tries.append(again["seconds"])
                row = min(row, again, key=lambda r: r["seconds"])
            row["tries_seconds"] = tries
            row["time_to_accuracy"] = time_to_accuracy(row)
            rows.append(row)
            acc = f"{row['accuracy']:.2%}" if "accuracy" in row else "error"
            print(f"  {goal.data} {goal.model}: {acc} in {row['seconds']:.1f} s", flush=True)
    print_table(rows, args.smoke)
    if not args.smoke:
        write_results(rows, args.out)
        print(f"written to {args.out}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
