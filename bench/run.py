"""The speed suite: each figure measured side by side with what it is compared to.

    make bench                            # every benchmark: a table, and bench/out/results.json
    make bench-publish                    # copy bench/out/*.json over the committed ones
    python bench/run.py --only loop       # one or more benchmarks, by module name
    python bench/run.py --smoke           # tiny sizes: checks the harness, not the speed
    python bench/run.py --accuracy        # also bench/accuracy.py (slow; `make accuracy`)

Why ratios: this machine is shared, so a time on its own says as much about the
neighbours as about us. Two programs timed in turn (A B A B ...) share the same
noise, and the median of the per-pair ratios A/B cancels most of it. Every row
therefore reports a ratio, its target, and the spread of the pair ratios.

A benchmark is a module in bench/ with `run(ctx: Context) -> list[dict]`, each
dict made by `ctx.row(...)` or `ctx.skip(...)`. A module whose `run` takes
`smoke` instead of `ctx` is called as `run(smoke=...)`; one without `run` is run
as a script and reported by its exit code.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from groundup.learn.widths import cpu_model  # one home: it also keys the width-trap cache

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
# A run writes its results to OUT_DIR, which git ignores, so that a user's `make bench`
# leaves the tree clean. The committed reference results beside this file, which the
# README's tables quote, change only by `make bench-publish`.
OUT_DIR = BENCH_DIR / "out"
RESULTS = OUT_DIR / "results.json"

# The suite in the order it runs. data_speed and distributed belong to other parts of
# the project and run when present; accuracy only with --accuracy (`make accuracy`).
BENCHES = (
    "loop",
    "fastai_vs",
    "dataloader",
    "list_loader",
    "coldstart",
    "flops",
    "memory",
    "sklearn_vs",
    "data_speed",
    "distributed",
)
OPTIONAL = ("accuracy",)

Row = dict[str, Any]


class Context:
    """What a benchmark gets: the mode, timing helpers, shared data, and row makers."""

    def __init__(self, smoke: bool = False, bench: str = "") -> None:
        self.smoke = smoke  # tiny sizes and one repetition: exercises the code, not the speed
        self.bench = bench  # the module running now, stamped on its rows
        self._data: dict[tuple[str, Any], Any] = {}

    def reps(self, n: int) -> int:
        """`n` repetitions for real, one in a smoke run."""
        return 1 if self.smoke else n

    def data(self, source: str, digits: Any) -> tuple[Any, Any]:
        """The (train, valid) `Dataset`s of a source, loaded once per suite run.

        Benchmarks build their own loaders on these tensors, so that one benchmark's
        shuffles do not move another's.
        """
        key = (source, tuple(digits) if not isinstance(digits, str) else digits)
        if key not in self._data:
            from groundup.data.tensors import load_data

            dls = load_data(source, digits)
            self._data[key] = (dls.train.dataset, dls.valid.dataset)
        return self._data[key]

    def row(
        self,
        name: str,
        value: float,
        *,
        target: float | None = None,
        goal: str = "max",
        unit: str = "x",
        ours_s: float | None = None,
        base_s: float | None = None,
        spread: tuple[float, float] | None = None,
        reps: int | None = None,
        note: str = "",
    ) -> Row:
        """One figure. `goal` "max": the value must be at most `target`; "min": at least."""
        met = None
        if target is not None:
            met = bool(value <= target) if goal == "max" else bool(value >= target)
        return {
            "bench": self.bench,
            "name": name,
            "value": value,
            "unit": unit,
            "target": target,
            "goal": goal,
            "met": met,
            "ours_s": ours_s,
            "base_s": base_s,
            "spread": list(spread) if spread else None,
            "reps": reps,
            "note": note,
        }

    def skip(self, name: str, why: str, target: float | None = None, goal: str = "max") -> Row:
        """A figure that could not be measured here, and why."""
        row = self.row(name, float("nan"), target=target, goal=goal, note=why)
        row["value"], row["met"] = None, None
        return row


# -- timing ---------------------------------------------------------------------------------


def interleave(
    fns: dict[str, Callable[[Any], Any]],
    reps: int,
    setup: Callable[[], Any] | None = None,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Time each function in turn, `reps` rounds of A B C, C B A, A B C, ...; seconds
    per call. The order flips every round, so that neither side always runs first
    (with caches, clocks and the allocator as the other side left them).

    `setup()` runs untimed before every call and its result is passed to the function
    (a fresh model, say), so that only the work being compared is on the clock.
    One untimed warm-up round first pays for lazy initialisation (MKL, allocator).
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns.items())
    for rnd in range(warmup + reps):
        for name, fn in order if rnd % 2 == 0 else order[::-1]:
            arg = setup() if setup is not None else None
            start = time.perf_counter()
            fn(arg)
            elapsed = time.perf_counter() - start
            if rnd >= warmup:
                times[name].append(elapsed)
    return times


def pair_ratio(num: Sequence[float], den: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """Median of the per-round ratios num[i]/den[i], and their (min, max) as the spread."""
    ratios = [a / b for a, b in zip(num, den, strict=True)]
    return statistics.median(ratios), (min(ratios), max(ratios))


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


# -- the machine ----------------------------------------------------------------------------




def machine_info() -> dict[str, Any]:
    """CPU model, cores, library versions and threads: what a reader needs to weigh a ratio."""
    import numpy
    import torch

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "mkl": torch.backends.mkl.is_available(),
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# -- running the suite ----------------------------------------------------------------------


def run_bench(name: str, ctx: Context, bench_dir: Path = BENCH_DIR) -> tuple[list[Row], str | None]:
    """Run one benchmark module; returns its rows, and the error text if it failed."""
    path = bench_dir / f"{name}.py"
    if not path.exists():
        return [], None
    ctx.bench = name
    try:
        module = sys.modules.get(name)
        if module is None or getattr(module, "__file__", None) != str(path):
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # so that benchmarks can import one another
            spec.loader.exec_module(module)
        fn = getattr(module, "run", None)
        if fn is None:
            return _run_script(path, ctx), None
        params = inspect.signature(fn).parameters
        rows = fn(smoke=ctx.smoke) if "smoke" in params else fn(ctx)
        return [_normalise(r, name) for r in rows or []], None
    except Exception:  # a broken benchmark is reported, and the others still run
        return [], traceback.format_exc()


def _run_script(path: Path, ctx: Context) -> list[Row]:
    cmd = [sys.executable, str(path), *(["--smoke"] if ctx.smoke else [])]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    note = "; ".join(lines)[-400:]  # the script's own report, for the table
    row = ctx.row(f"{path.name} (script, exit {proc.returncode})", seconds, unit="s", note=note)
    row["met"] = proc.returncode == 0
    return [row]


def _normalise(row: Row, bench: str) -> Row:
    full = Context(bench=bench).row(str(row.get("name", "?")), row.get("value") or 0.0)
    full.update(row)
    full.setdefault("bench", bench)
    return full


def format_table(rows: list[Row], machine: dict[str, Any]) -> str:
    """A Markdown table: readable in a terminal and pasteable into the README."""
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores; torch {machine['torch']} "
        f"with {machine['torch_threads']} threads; Python {machine['python']}; "
        f"load average at start {machine.get('load_avg_start')}",
        "",
        "| benchmark | figure | measured | target | met | ours (s) | compared (s) | spread "
        "| note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                [
                    r["bench"],
                    r["name"],
                    _fmt_value(r["value"], r["unit"]),
                    _fmt_target(r),
                    {True: "yes", False: "**no**", None: ""}[r["met"]],
                    _fmt_s(r["ours_s"]),
                    _fmt_s(r["base_s"]),
                    _fmt_spread(r["spread"], r["unit"]),
                    str(r["note"]).replace("|", "/"),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def _fmt_value(v: Any, unit: str) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (int, float)):
        return f"{v:.2f}{'×' if unit == 'x' else ' ' + unit}"
    return str(v)


def _fmt_target(r: Row) -> str:
    if r["target"] is None:
        return ""
    sign = "≤" if r["goal"] == "max" else "≥"
    return f"{sign} {r['target']:g}{'×' if r['unit'] == 'x' else ' ' + r['unit']}"


def _fmt_s(s: float | None) -> str:
    if s is None:
        return ""
    return f"{s:.3f}" if s < 10 else f"{s:.1f}"


def _fmt_spread(spread: list[float] | None, unit: str) -> str:
    if not spread:
        return ""
    return f"{spread[0]:.2f}–{spread[1]:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Run the speed suite: each figure as a ratio against its comparison, "
        "measured side by side; prints a table and writes bench/out/results.json.",
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--accuracy", action="store_true", help="also run bench/accuracy.py")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads, here and in child processes (default 1; 0: torch's own choice). "
        "On a machine shared with other work, 2 OpenMP threads wait on each other at every "
        "parallel region and small steps run 10-30x slower; 1 thread keeps the ratios steady",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)

    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    if args.threads:
        # the child processes (cold start, memory, fastai) take the same number
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    names = list(args.only) if args.only else [*BENCHES, *(OPTIONAL if args.accuracy else ())]
    unknown = [n for n in names if not (BENCH_DIR / f"{n}.py").exists() and n not in BENCHES]
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)} in {BENCH_DIR}")

    machine = machine_info()
    ctx = Context(smoke=args.smoke)
    rows: list[Row] = []
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    start = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        got, err = run_bench(name, ctx)
        timings[name] = round(time.perf_counter() - t0, 2)
        rows += got
        if err:
            errors[name] = err
            print(f"[bench] {name} failed:\n{err}", file=sys.stderr)
    machine["load_avg_end"] = _loadavg()
    report = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "seconds": round(time.perf_counter() - start, 1),
        "bench_seconds": timings,
        "machine": machine,
        "results": rows,
        "errors": errors,
    }
    from groundup.runs.saved import atomic_write_bytes

    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, (json.dumps(report, indent=2) + "\n").encode())
    print(format_table(rows, machine))
    missed = [f"{r['bench']}: {r['name']}" for r in rows if r["met"] is False]
    print(f"\n{len(rows)} figures in {report['seconds']} s; written to {args.out}")
    if missed:
        print("targets missed: " + "; ".join(missed))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
