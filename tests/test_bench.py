"""The speed suite's harness (bench/run.py), checked quickly: no real benchmark runs here.

`make bench` runs the suite; these tests only check that the harness times in turn,
computes its ratios and targets, survives a broken benchmark, and that a smoke run of
two benchmarks writes a well-formed results.json.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (bench/run.py, found through the path above)


def test_interleave_alternates_and_passes_setup() -> None:
    calls: list[tuple[str, int]] = []
    counter = iter(range(100))

    def setup() -> int:
        return next(counter)

    fns = {"a": lambda x: calls.append(("a", x)), "b": lambda x: calls.append(("b", x))}
    times = run.interleave(fns, reps=3, setup=setup, warmup=1)
    # one warm-up round, then three timed ones; the order flips every round, so that
    # neither side always runs first; each call is given a fresh setup value
    assert [name for name, _ in calls] == ["a", "b", "b", "a"] * 2
    assert [x for _, x in calls] == list(range(8))
    assert len(times["a"]) == len(times["b"]) == 3
    assert all(t >= 0 for t in times["a"] + times["b"])


def test_pair_ratio_is_the_median_of_per_round_ratios() -> None:
    ratio, spread = run.pair_ratio([2.0, 9.0, 3.0], [1.0, 3.0, 1.0])  # ratios 2, 3, 3
    assert ratio == 3.0
    assert spread == (2.0, 3.0)
    # one disturbed round moves the median of ratios less than the ratio of medians
    ratio, _ = run.pair_ratio([1.1, 1.1, 50.0], [1.0, 1.0, 1.0])
    assert ratio == pytest.approx(1.1)


def test_row_targets() -> None:
    ctx = run.Context(bench="x")
    assert ctx.row("at most", 1.05, target=1.10, goal="max")["met"] is True
    assert ctx.row("at most", 1.20, target=1.10, goal="max")["met"] is False
    assert ctx.row("at least", 5.5, target=5.0, goal="min")["met"] is True
    assert ctx.row("at least", 4.0, target=5.0, goal="min")["met"] is False
    assert ctx.row("no target", 4.0)["met"] is None
    skipped = ctx.skip("missing", "fastai is not installed", target=3.0, goal="min")
    assert skipped["value"] is None and skipped["met"] is None
    assert skipped["bench"] == "x" and "fastai" in skipped["note"]


def test_table_shows_every_row() -> None:
    ctx = run.Context(bench="loop")
    rows = [
        ctx.row("Learner ÷ hand", 1.04, target=1.1, ours_s=0.5, base_s=0.48, spread=(1.0, 1.1)),
        ctx.row("peak", 130.0, unit="GFLOP/s"),
        ctx.skip("fastai", "not installed"),
    ]
    machine = {"cpu": "Test CPU", "cores": 2, "torch": "2.x", "torch_threads": 1, "python": "3"}
    table = run.format_table(rows, machine)
    lines = table.splitlines()
    assert "Test CPU, 2 cores" in lines[0] and "1 threads" in lines[0]
    assert len([line for line in lines if line.startswith("| loop |")]) == 3
    assert "| 1.04× | ≤ 1.1× | yes |" in table
    assert "130.00 GFLOP/s" in table and "n/a" in table


def _write(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


def test_run_bench_forms_and_failures(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "takes_ctx",
        """
        def run(ctx):
            return [ctx.row("ctx form", 2.0, target=1.0, goal="min")]
    """,
    )
    _write(
        tmp_path,
        "takes_smoke",
        """
        def run(smoke=False):
            return [{"name": "smoke form", "value": 1.0 if smoke else 0.0}]
    """,
    )
    _write(
        tmp_path,
        "breaks",
        """
        def run(ctx):
            raise ValueError("this benchmark is broken")
    """,
    )
    _write(
        tmp_path,
        "script_only",
        """
        print("first figure: 12 ms (target 100 ms) ok")
    """,
    )
    ctx = run.Context(smoke=True)
    rows, err = run.run_bench("takes_ctx", ctx, tmp_path)
    assert err is None and rows[0]["met"] is True and rows[0]["bench"] == "takes_ctx"
    rows, err = run.run_bench("takes_smoke", ctx, tmp_path)
    assert err is None and rows[0]["value"] == 1.0
    assert rows[0]["bench"] == "takes_smoke" and rows[0]["met"] is None  # keys filled in
    rows, err = run.run_bench("breaks", ctx, tmp_path)
    assert rows == [] and err is not None and "this benchmark is broken" in err
    rows, err = run.run_bench("script_only", ctx, tmp_path)
    assert err is None and rows[0]["met"] is True and "12 ms" in rows[0]["note"]
    assert run.run_bench("absent", ctx, tmp_path) == ([], None)


def test_every_benchmark_module_has_run() -> None:
    import importlib.util
    import inspect

    for name in (
        "loop",
        "fastai_vs",
        "dataloader",
        "list_loader",
        "coldstart",
        "flops",
        "memory",
        "sklearn_vs",
    ):
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert list(inspect.signature(module.run).parameters) == ["ctx"], name


def test_fastai_rows_say_why_when_fastai_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("fastai_vs", BENCH / "fastai_vs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        module.importlib.util, "find_spec", lambda n, *a: None if n == "fastai" else real(n, *a)
    )
    rows = module.run(run.Context(smoke=False, bench="fastai_vs"))
    assert len(rows) == 3
    for row in rows:
        assert row["value"] is None and row["met"] is None and row["target"] == 3.0
        assert "fastai is not installed" in row["note"] and "--no-deps" in row["note"]


def test_smoke_run_writes_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # the harness sets these for its child processes; put them back afterwards
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    out = tmp_path / "results.json"
    try:
        code = run.main(["--smoke", "--only", "loop", "dataloader", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    report = json.loads(out.read_text())
    assert report["smoke"] is True and report["errors"] == {}
    machine = report["machine"]
    assert machine["torch"] == torch.__version__ and machine["torch_threads"] == 1
    assert machine["cores"] >= 1 and machine["cpu"]
    benches = [r["bench"] for r in report["results"]]
    assert benches.count("loop") == 4 and benches.count("dataloader") == 2
    for r in report["results"]:
        assert r["value"] > 0 and r["reps"] == 1
    # with plain SGD the Learner and the hand loop must end with the same weights
    sgd = [r for r in report["results"] if r["bench"] == "loop" and "SGD" in r["name"]]
    assert sgd and all(r["note"].startswith("same final weights;") for r in sgd)
    printed = capsys.readouterr().out
    assert printed.count("| loop |") == 4 and "written to" in printed


def test_accuracy_rows_say_whether_the_time_to_accuracy_goal_was_met() -> None:
    import accuracy

    row = {"data": "sample", "model": "net", "accuracy": 0.985, "seconds": 1.9}
    assert accuracy.time_to_accuracy(row) == "98.5% in 2 s: met"
    assert accuracy.time_to_accuracy({**row, "seconds": 2.1}).endswith("missed")
    assert accuracy.time_to_accuracy({**row, "accuracy": 0.984}).endswith("missed")
    assert accuracy.time_to_accuracy({**row, "model": "mean"}) == ""  # a baseline: no goal


def test_threads_bench_smoke_row_names_threads_and_load(monkeypatch: pytest.MonkeyPatch) -> None:
    import threads

    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(kwargs["env"]["OMP_NUM_THREADS"])
        return type("P", (), {"returncode": 0, "stdout": '{"final": {"accuracy": 0.9}}'})()

    monkeypatch.setattr(threads.subprocess, "run", fake_run)
    row = threads.one_run("sample", "net", 2, False, Path("unused"), [])
    assert calls == ["2"]
    assert row["threads"] == 2 and row["accuracy"] == 0.9 and "load_average" in row


def test_bench_gpu_without_a_gpu_says_so_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make bench-gpu` on a machine without CUDA (here made so, also on a GPU machine):
    one clear line, exit 0, no row measured."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu", BENCH / "gpu.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert module.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bench-gpu: no CUDA GPU here") and out.count("\n") == 1
    assert "nothing to measure" in out and module.cpu_model() in out


# -- where results go, and the README's tables ------------------------------------------------


def test_fresh_results_go_to_an_ignored_folder_and_the_committed_ones_record_the_cpu() -> None:
    """`make bench` and `make accuracy` must leave `git status` clean: what they write
    by default lies in bench/out/, which git ignores; only `make bench-publish` copies
    it over the committed files."""
    import subprocess

    import accuracy
    import distributed as bench_distributed

    root = BENCH.parent
    for default in (run.RESULTS, accuracy.RESULTS, bench_distributed.RESULTS):
        assert default.parent == run.OUT_DIR == BENCH / "out", default
        ignored = subprocess.run(["git", "check-ignore", "-q", str(default)], cwd=root)
        assert ignored.returncode == 0, f"git does not ignore {default}"
    makefile = (root / "Makefile").read_text()
    assert "cp bench/out/$$f.json bench/$$f.json" in makefile  # make bench-publish only
    assert "PUBLISHED := results accuracy distributed" in makefile
    for name in ("results.json", "reference-amd-epyc.json"):
        assert json.loads((BENCH / name).read_text())["machine"]["cpu"], name
    assert run.cpu_model()  # what every new result file records


def test_readme_tables_match_the_committed_results() -> None:
    """The README's accuracy and speed tables are written by `make readme-tables` from
    bench/*.json; edit those (or publish a run), never the tables by hand."""
    import readme_tables

    readme = (BENCH.parent / "README.md").read_text()
    generated = readme_tables.tables()
    assert readme_tables.render(readme, generated) == readme, (
        "README.md's tables differ from bench/*.json: run `make readme-tables`"
    )
    # one column per CPU family measured, each named
    assert "| figure | Intel Xeon | AMD EPYC | target |" in generated["speed"]
    assert "| 6.87× / 2.47× / 1.89× |" in generated["speed"]  # the reviewers' AMD figures
    assert "AMD EPYC" in generated["accuracy"]


def test_readme_tables_render_between_their_markers() -> None:
    import readme_tables

    text = "intro\n<!-- table:speed -->\nold\n<!-- end table:speed -->\nafter\n"
    assert readme_tables.render(text, {"speed": "| a |"}) == (
        "intro\n<!-- table:speed -->\n| a |\n<!-- end table:speed -->\nafter\n"
    )
    with pytest.raises(SystemExit, match="no <!-- table:accuracy -->"):
        readme_tables.render(text, {"accuracy": "x"})
    assert readme_tables.family("Intel(R) Xeon(R) Processor") == "Intel Xeon"
    assert readme_tables.family("AMD EPYC 7B13") == "AMD EPYC"
