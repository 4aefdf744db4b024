"""IDX files: a write -> read round trip, and every way a file can be broken."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from groundup.data import idx
from groundup.errors import DataError

shapes = st.lists(st.integers(0, 6), min_size=1, max_size=4).map(tuple)


@settings(max_examples=40, deadline=None)
@given(array=arrays(np.uint8, shapes), gz=st.booleans())
def test_write_then_read_gives_the_same_array(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    idx.write_idx(path, array)
    back = idx.read_idx(path)
    assert back.dtype == np.uint8
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_header_is_the_mnist_layout(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    path = idx.write_idx(tmp_path / "train-images-idx3-ubyte", images)
    data = path.read_bytes()
    # magic 0x00000803, then 2, 28, 28 as big-endian uint32, then the pixels
    assert data[:16] == bytes.fromhex("00000803000000020000001c0000001c")
    assert len(data) == 16 + images.size
    np.testing.assert_array_equal(idx.read_images(path), images)


def test_arrays_read_are_writable(tmp_path):
    # torch.from_numpy warns on read-only arrays; the loaders hand these on
    path = idx.write_idx(tmp_path / "l.gz", np.array([1, 2, 3], dtype=np.uint8))
    assert idx.read_labels(path).flags.writeable


def test_gzip_output_is_reproducible(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    a = idx.write_idx(tmp_path / "a.gz", array).read_bytes()
    b = idx.write_idx(tmp_path / "b.gz", array).read_bytes()
    assert a == b  # no timestamp in the gzip header, so checksums are stable


def test_a_gzip_of_several_members_is_read_whole(tmp_path):
    body = bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4])
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(body[:6]) + gzip.compress(body[6:]))
    assert idx.read_labels(path).tolist() == [1, 2, 3, 4]


def test_wrong_magic_number_is_named(tmp_path):
    labels = idx.write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DataError) as err:
        idx.read_images(labels)
    message = str(err.value)
    assert "train-labels-idx1-ubyte" in message
    assert "0x00000801" in message and "0x00000803" in message


def test_not_an_idx_file_at_all(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is text")
    with pytest.raises(DataError, match="not that of an IDX file"):
        idx.read_idx(path)


def test_unsupported_value_type(tmp_path):
    path = tmp_path / "floats"
    path.write_bytes(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\0\0\0\0")  # 0x0D: float32
    with pytest.raises(DataError, match="0x0d is not supported"):
        idx.read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_names_file_and_byte_counts(tmp_path, gz):
    images = np.ones((5, 28, 28), dtype=np.uint8)
    full = bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28]) + images.tobytes()
    cut = full[:1000]  # the header promises 16 + 5*28*28 = 3,936 bytes
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(cut) if gz else cut)
    with pytest.raises(DataError) as err:
        idx.read_images(path)
    message = str(err.value)
    assert str(path) in message
    assert "truncated" in message
    assert "3,936" in message and "1,000" in message


def test_gzip_stream_cut_short_reports_bytes_decoded(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    path = idx.write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a download cut in the middle
    expected = r"t10k-images-idx3-ubyte\.gz is truncated: expected 39,216"  # 16 + 50*784
    with pytest.raises(DataError, match=expected):
        idx.read_images(path)


def test_file_shorter_than_its_header(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))  # says 3 dimensions, holds none
    with pytest.raises(DataError, match="header needs 16 bytes, but it has 6"):
        idx.read_images(path)


def test_file_longer_than_its_header(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 7, 7]))  # 2 labels promised, 3 given
    with pytest.raises(DataError, match="longer than its header says"):
        idx.read_labels(path)


def test_images_must_be_28_by_28(tmp_path):
    path = idx.write_idx(tmp_path / "imgs", np.zeros((2, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match="32x32"):
        idx.read_images(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        idx.read_idx(tmp_path / "absent")


def test_corrupt_gzip_is_named(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"this is not gzip data")
    with pytest.raises(DataError, match="not a valid gzip file"):
        idx.read_labels(path)


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "labels"
    idx.write_idx(path, np.zeros(3, dtype=np.uint8))
    with pytest.raises(DataError, match="uint8"):
        idx.write_idx(path, np.zeros(3, dtype=np.float32))
    # the failed write changed nothing and left nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels"]
    assert idx.read_labels(path).tolist() == [0, 0, 0]


def test_a_write_that_fails_midway_leaves_the_old_file(tmp_path, monkeypatch):
    path = idx.write_idx(tmp_path / "labels", np.array([1, 2], dtype=np.uint8))

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(idx.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        idx.write_idx(path, np.array([7, 7, 7], dtype=np.uint8))
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels"]  # no temporary file
    assert idx.read_labels(path).tolist() == [1, 2]
