"""`make readme-tables`: write the README's accuracy and speed tables from the committed
result files, so that no figure in the README is typed by hand.

    python bench/readme_tables.py           # rewrite the tables in README.md
    python bench/readme_tables.py --check   # exit 1 if README.md differs (a test runs this)

Each table lies between two markers in README.md, `<!-- table:NAME -->` and
`<!-- end table:NAME -->`, and has one column per CPU family measured: this
repository's own machine (bench/accuracy.json, bench/results.json, written by
`make accuracy` / `make bench` and published by `make bench-publish`) and the AMD
EPYC figures the reviewers measured (bench/reference-amd-epyc.json). A figure one
machine lacks is shown as "–".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
README = BENCH_DIR.parent / "README.md"
# the committed results: ours first, then the reviewers' AMD EPYC figures
ACCURACY = BENCH_DIR / "accuracy.json"
SPEED = BENCH_DIR / "results.json"
AMD = BENCH_DIR / "reference-amd-epyc.json"
NONE = "–"

Rows = list[dict[str, Any]]


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def family(cpu: str) -> str:
    """A column's title: the CPU family, "Intel Xeon" or "AMD EPYC", from a model name."""
    if not cpu:
        return "CPU not recorded"
    for name in ("Xeon", "EPYC", "Core", "Ryzen"):
        if name in cpu:
            vendor = "Intel" if name in ("Xeon", "Core") else "AMD"
            return f"{vendor} {name}"
    return cpu


def _when(doc: dict[str, Any]) -> str:
    return str(doc.get("when", ""))[:10]


# -- the accuracy table ---------------------------------------------------------------------

DATA_TITLES = {
    "sample": "sample (4,000 / 1,000)",
    "fashion-mnist": "Fashion-MNIST (60,000 / 10,000)",
}
MODEL_TITLES = {"mean": "`mean` (pixel similarity)"}


def _accuracy_cell(run: dict[str, Any] | None, timed: bool) -> str:
    if run is None or run.get("accuracy") is None:
        return NONE
    text = f"{100 * run['accuracy']:.2f}"
    text = (text[:-1] if text.endswith("0") else text) + "%"  # 99.0%, 98.4%, 90.03%
    if timed and run.get("seconds") is not None:
        text += (
            f", in {run['seconds']:.0f} s"
            if run["seconds"] >= 10
            else (f", in {run['seconds']:.1f} s")
        )
    return text


def _goal(run: dict[str, Any]) -> str:
    if run.get("goal_accuracy") is None:
        return "baseline"
    goal = f"≥ {100 * run['goal_accuracy']:g}%"
    if run.get("goal_seconds"):
        goal += f" in ≤ {run['goal_seconds']:.0f} s"
    return goal


def accuracy_table(ours: dict[str, Any], amd: dict[str, Any]) -> str:
    theirs = {(r["data"], r["model"]): r for r in amd.get("runs", [])}
    cpu = ours["machine"].get("cpu", "")
    lines = [
        f"From `bench/accuracy.json` ({cpu or 'CPU not recorded'}, "
        f"{ours['machine'].get('cpus', '?')} cores, {_when(ours)}) and "
        f"`bench/reference-amd-epyc.json` ({amd['machine']['cpu']}, measured by the reviewers, "
        f"{_when(amd)}); validation split, default settings; a time is the whole "
        "`groundup train` process, shown for the run with a time goal.",
        "",
        f"| data | model | {family(cpu)} | {family(amd['machine']['cpu'])} | goal |",
        "|---|---|---|---|---|",
    ]
    previous = None
    for run in ours["runs"]:
        data = DATA_TITLES.get(run["data"], run["data"]) if run["data"] != previous else ""
        previous = run["data"]
        timed = bool(run.get("goal_seconds"))
        model = MODEL_TITLES.get(run["model"], f"`{run['model']}`")
        lines.append(
            f"| {data} | {model} | "
            f"{_accuracy_cell(run, timed)} | "
            f"{_accuracy_cell(theirs.get((run['data'], run['model'])), timed)} | {_goal(run)} |"
        )
    return "\n".join(lines)


# -- the speed table ------------------------------------------------------------------------


def _find(rows: Rows, bench: str, name: str) -> dict[str, Any] | None:
    """The result row of `bench` whose name starts with `name`."""
    return next((r for r in rows if r["bench"] == bench and r["name"].startswith(name)), None)


def _ratios(*names: tuple[str, str]) -> Callable[[Rows], str]:
    """A cell of ratios, "1.05× / 0.87×", from the rows named."""

    def cell(rows: Rows) -> str:
        found = [_find(rows, bench, name) for bench, name in names]
        if all(r is None or r.get("value") is None for r in found):
            return NONE
        return " / ".join(
            NONE if r is None or r.get("value") is None else f"{r['value']:.2f}×" for r in found
        )

    return cell


def _seconds(bench: str, name: str) -> Callable[[Rows], str]:
    def cell(rows: Rows) -> str:
        r = _find(rows, bench, name)
        return NONE if r is None or r.get("value") is None else f"{r['value']:.2f} s"

    return cell


def _heavy_modules(rows: Rows) -> str:
    found = [r for r in rows if r["bench"] == "coldstart" and r["name"].startswith("heavy")]
    if not found:
        return NONE
    total = sum(r["value"] or 0 for r in found)
    return "none" if total == 0 else f"{total:g}"


def _products(rows: Rows) -> str:
    peak = _find(rows, "flops", "matrix-product peak")
    epoch = _find(rows, "flops", "matrix products over the whole epoch")
    alone = _find(rows, "flops", "matrix products alone")
    if not (peak and epoch and alone):
        return NONE
    return (
        f"{epoch['value']:.2f} of the epoch, {alone['value']:.2f} inside the products "
        f"(peak {peak['value']:.0f} GFLOP/s)"
    )


def _memory(rows: Rows) -> str:
    r = _find(rows, "memory", "peak RSS")
    if r is None:
        return NONE
    peak = re.search(r"peak (\d+) MB", r.get("note", ""))
    return f"{r['value']:.1f}×" + (f" ({peak.group(1)} MB)" if peak else "")


def _data_speed(rows: Rows) -> str:
    r = _find(rows, "data_speed", "data_speed.py")
    note = (r or {}).get("note", "")
    second = re.search(r"second load:\s*([\d.]+) ms", note)
    idx = re.search(r"70k images:\s*([\d.]+) ms", note)
    if not (second and idx):
        return NONE
    return f"{float(second.group(1)):.1f} ms; {float(idx.group(1)) / 1000:.2f} s"


# (what the README calls the figure, how to read it from a results file, its target)
SPEED_ROWS: list[tuple[str, Callable[[Rows], str], str]] = [
    ("`Learner.fit` ÷ a minimal hand-written loop, Fashion-MNIST MLP 784-128-10 (SGD / Adam)",
     _ratios(("loop", "Learner.fit ÷ hand loop: fashion-mnist 10 classes, MLP 784-128-10, SGD"),
             ("loop", "Learner.fit ÷ hand loop: fashion-mnist 10 classes, MLP 784-128-10, Adam")),
     "≤ 1.00×"),
    ("the same on the sample's 2-vs-9, `simple_net` / linear",
     _ratios(("loop", "Learner.fit ÷ hand loop: sample 2-vs-9, simple_net"),
             ("loop", "Learner.fit ÷ hand loop: sample 2-vs-9, linear")),
     "≤ 1.00×"),
    ("fastai 2.8.12 `Learner` ÷ groundup: linear / `simple_net` / Fashion MLP",
     _ratios(("fastai_vs", "fastai Learner ÷ groundup Learner: sample 2-vs-9, linear"),
             ("fastai_vs", "fastai Learner ÷ groundup Learner: sample 2-vs-9, simple_net"),
             ("fastai_vs", "fastai Learner ÷ groundup Learner: fashion-mnist")),
     "≥ 3×"),
    ("`torch.utils.data.DataLoader(TensorDataset, shuffle=True)` ÷ our `DataLoader`, 60k images",
     _ratios(("dataloader", "torch DataLoader(TensorDataset, shuffle=True)")), "≥ 5×"),
    ("`groundup train` (sample, linear) beyond `python -c \"import torch\"`",
     _seconds("coldstart", "cold start"), "≤ 1.5 s"),
    ("heavy modules (matplotlib, the web stack, ...) loaded by `--help` or `data info`",
     _heavy_modules, "none"),
    ("matrix products in a Fashion `net` epoch, share of the 2048² peak",
     _products, "≥ 0.70 of the epoch"),
    ("time of (256×784)@(784×10) ÷ (256×784)@(784×16): the output width of 10",
     _ratios(("flops", "time of (256×784)@(784×10)")), ""),
    ("softmax-regression epoch, last layer 10 wide ÷ padded to 16 (above 1: padding pays)",
     _ratios(("flops", "softmax-regression epoch")), ""),
    ("peak memory of Fashion-MNIST training ÷ the data as float32 (219.5 MB)", _memory, ""),
    ("scikit-learn `MLPClassifier` ÷ groundup, time to 85% test accuracy on Fashion-MNIST",
     _ratios(("sklearn_vs", "scikit-learn MLPClassifier")), ""),
    ("second load of `sample`; Fashion-MNIST IDX, 70k images", _data_speed,
     "≤ 100 ms; ≤ 1.5 s"),
]  # fmt: skip


def speed_table(ours: dict[str, Any], amd: dict[str, Any]) -> str:
    m = ours["machine"]
    lines = [
        f"From `bench/results.json` ({m['cpu']}, {m['cores']} cores, no GPU, torch {m['torch']}, "
        f"{m['torch_threads']} thread{'s' if m['torch_threads'] != 1 else ''}, {_when(ours)}) "
        f"and `bench/reference-amd-epyc.json` ({amd['machine']['cpu']}, measured by the "
        f"reviewers, {_when(amd)}).",
        "",
        f"| figure | {family(m['cpu'])} | {family(amd['machine']['cpu'])} | target |",
        "|---|---|---|---|",
    ]
    for title, cell, target in SPEED_ROWS:
        lines.append(f"| {title} | {cell(ours['results'])} | {cell(amd['results'])} | {target} |")
    return "\n".join(lines)


# -- the README -----------------------------------------------------------------------------


def tables() -> dict[str, str]:
    amd = _load(AMD)
    return {
        "accuracy": accuracy_table(_load(ACCURACY), amd),
        "speed": speed_table(_load(SPEED), amd),
    }


def render(readme: str, generated: dict[str, str]) -> str:
    """`readme` with the text between each table's markers replaced by its table."""
    for name, table in generated.items():
        start, end = f"<!-- table:{name} -->", f"<!-- end table:{name} -->"
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
        if not pattern.search(readme):
            raise SystemExit(f"README.md has no {start} ... {end} markers")
        block = f"{start}\n{table}\n{end}"
        readme = pattern.sub(lambda _, block=block: block, readme)  # no \-escapes read
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether README.md is due")
    args = parser.parse_args(argv)
    before = README.read_text()
    after = render(before, tables())
    if args.check:
        if after != before:
            print("README.md's tables differ from the result files: run `make readme-tables`")
            return 1
        return 0
    if after != before:
        README.write_text(after)
        print("README.md: tables rewritten from the result files")
    else:
        print("README.md: tables already match the result files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
