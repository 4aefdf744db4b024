"""1 thread against 2 for each default ten-class run, quiet and under load.

    python bench/threads.py                      # the four goal runs
    python bench/threads.py --runs sample-net    # one of them
    python bench/threads.py --smoke              # one epoch on the sample: checks the script

Each run is a whole `groundup train --data D --digits all --model M` process with
OMP_NUM_THREADS set, timed from start to exit. "loaded" runs it beside a bounded
busy loop (one pure-Python process spinning until the run ends, at most LOAD_S
seconds): a neighbour that takes one of the two cores, as other users of a shared
machine do. The pairs are interleaved (1, 2, 1, 2 ...) so that drifts in the
machine's load fall on both. The load average is recorded with every figure.

What it decided (groundup.runs.config.default_threads) is written in
docs/benchmarks.md; this script is how to measure it again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from groundup.learn.widths import cpu_model  # one home: it also keys the width-trap cache

RUNS = {
    "sample-net": ("sample", "net"),
    "sample-cnn": ("sample", "cnn"),
    "fashion-net": ("fashion-mnist", "net"),
    "fashion-cnn": ("fashion-mnist", "cnn"),
}
LOAD_S = 600  # the busy loop never outlives this, whatever happens to the run
BUSY = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end: pass\n"




def one_run(
    data: str, model: str, threads: int, loaded: bool, out: Path, extra: list[str]
) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "groundup", "train", "--data", data, "--digits", "all",
           "--model", model, "--json", "--out", str(out), *extra]  # fmt: skip
    busy = subprocess.Popen([sys.executable, "-c", BUSY.format(s=LOAD_S)]) if loaded else None
    try:
        load = os.getloadavg()[0]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    row: dict[str, Any] = {"data": data, "model": model, "threads": threads, "loaded": loaded,
                           "seconds": round(seconds, 2),
                           "load_average": round((load + os.getloadavg()[0]) / 2, 2)}  # fmt: skip
    if proc.returncode:
        row["error"] = proc.stderr.strip().splitlines()[-1:]
    else:
        row["accuracy"] = json.loads(proc.stdout)["final"]["accuracy"]
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default=",".join(RUNS), help="comma list of " + ", ".join(RUNS))
    p.add_argument("--reps", type=int, default=2, help="pairs per condition (default 2)")
    p.add_argument("--quiet-only", action="store_true", help="skip the loaded runs")
    p.add_argument("--smoke", action="store_true", help="one epoch, sample net only")
    p.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = p.parse_args(argv)
    names = ["sample-net"] if args.smoke else args.runs.split(",")
    extra = ["--epochs", "1"] if args.smoke else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="groundup-threads-") as tmp:
        for name in names:
            data, model = RUNS[name]
            for loaded in (False,) if args.quiet_only else (False, True):
                for _ in range(1 if args.smoke else args.reps):
                    for threads in (1, 2):
                        row = one_run(data, model, threads, loaded, Path(tmp) / name, extra)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    doc = {"cpu": cpu_model(), "cpus": os.cpu_count(), "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
