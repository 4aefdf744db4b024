"""How fast the data sources load, against the issue's targets.

    python bench/data_speed.py

- a second (cached) load of `sample`: target 100 ms or less;
- loading Fashion-MNIST from its IDX files (70,000 images): target 1.5 s or less.

Each timing is the best of a few repeats (the least disturbed by other work on
the machine). The sample's cache goes to a temporary folder, so the user's cache
is left alone and the first load is truly cold.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from groundup.data.sources import SYSTEM_LOCATIONS, load_source

TARGETS = {"sample, second load": 0.100, "Fashion-MNIST IDX, 70k images": 1.5}


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    results: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        start = time.perf_counter()
        load_source("sample", cache_dir=cache)
        cold = time.perf_counter() - start
        print(f"sample, first load (parse the CSV): {cold * 1000:7.1f} ms")
        results["sample, second load"] = best_of(5, lambda: load_source("sample", cache_dir=cache))

    fashion = next(
        (
            p
            for p in SYSTEM_LOCATIONS["fashion-mnist"]
            if (p / "t10k-images-idx3-ubyte.gz").exists()
        ),
        None,
    )
    if fashion is None:
        print("Fashion-MNIST IDX files not found (apt-get install dataset-fashion-mnist)")
        results["Fashion-MNIST IDX, 70k images"] = None
    else:
        results["Fashion-MNIST IDX, 70k images"] = best_of(3, lambda: load_source(str(fashion)))

    failed = False
    for name, seconds in results.items():
        target = TARGETS[name]
        if seconds is None:
            print(f"{name}: skipped")
            continue
        ok = seconds <= target
        failed |= not ok
        verdict = "ok" if ok else "SLOWER THAN TARGET"
        print(f"{name}: {seconds * 1000:7.1f} ms   (target {target * 1000:.0f} ms) {verdict}")
    print(f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
