"""Peak memory (RSS) of a Fashion-MNIST training run, against the dataset as float32.

`groundup train` runs in a child process, with fixed settings (MLP 784-128-10, SGD,
one epoch) so that a change of defaults does not move the figure; its peak resident
set size is the kernel's high-water mark of its memory (VmHWM). Two
references: the 70,000 images as float32 (70,000 x 784 x 4 bytes, 219.5 MB), which a
run must hold once, and a process that only imports torch, which every run pays.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from typing import Any

from run import ROOT

MB = 1e6


# Runs a command line of `groundup`, or nothing, then prints the process's VmHWM: the
# peak RSS of its own address space. (The rusage of a child is no good here: Linux
# carries the parent's peak over the fork into the child's ru_maxrss.)
_CHILD = """
import sys
args = sys.argv[1:]
if args:
    from groundup.cli import main
    code = main(args)
    if code:
        sys.exit(code)
else:
    import torch
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) * 1024)
"""


def peak_rss(args: list[str]) -> float:
    """Peak resident set size, in bytes, of `groundup ARGS` (no ARGS: `import torch`)."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"groundup {' '.join(args)} failed: {proc.stderr[-500:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def run(ctx: Any) -> list[dict[str, Any]]:
    source = "sample" if ctx.smoke else "fashion-mnist"
    digits = ["2", "9"] if ctx.smoke else ["all"]
    n_images = 1000 if ctx.smoke else 70_000  # train + valid
    dataset_bytes = n_images * 784 * 4
    with tempfile.TemporaryDirectory() as tmp:
        train = [
            "train", "--data", source, "--digits", *digits,
            "--model", "net", "--layers", "128", "--opt", "sgd", "--lr", "0.1",
            "--schedule", "constant", "--no-augment", "--epochs", "1", "--quiet",
            "--out", f"{tmp}/run",
        ]  # fmt: skip
        peak = peak_rss(train)
    base = peak_rss([])
    return [
        ctx.row(
            f"peak RSS of `groundup train` ÷ dataset as float32: {source}, {n_images:,} images, "
            "MLP 784-128-10, 1 epoch",
            peak / dataset_bytes,
            ours_s=None,
            note=f"peak {peak / MB:.0f} MB; dataset {dataset_bytes / MB:.1f} MB; "
            f"`import torch` alone {base / MB:.0f} MB",
        ),
        ctx.row(
            "the same peak beyond `import torch` ÷ dataset as float32",
            (peak - base) / dataset_bytes,
            note=f"{(peak - base) / MB:.0f} MB beyond importing torch",
        ),
    ]
