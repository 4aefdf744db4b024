"""Issue 12: bad input gets one clear line: never a traceback, a hang or a huge allocation."""

from __future__ import annotations

import gzip
import os
import signal
import struct
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from groundup.data import idx
from groundup.data.images import TooManyPixels, open_image, prepare_digit, read_image
from groundup.data.sources import load_folder
from groundup.errors import DataError, GroundupError
from groundup.learn.models import ModelSpec, build_model
from helpers_bad import digit_array, lab_tiff, png_bomb, tiff_of
from helpers_cli import run_cli as cli
from helpers_runs import save_model


@contextmanager
def no_hang(seconds: int = 10, fifo: Path | None = None):
    """Fail, rather than hang the suite, if the block takes longer than `seconds`.

    A reader stuck opening `fifo` (in any thread) is let go by opening its other end."""

    def fail(*_):
        if fifo is not None:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        raise AssertionError(f"still waiting after {seconds} s: it hangs")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model(tmp_path / "run", build_model(ModelSpec()))


# -- IDX --------------------------------------------------------------------------------------


def test_idx_dimensions_past_2_to_the_63_are_a_data_error(tmp_path: Path) -> None:
    """dims 2**31 x 2**31 x 4: numpy's product wrapped to 0 and the reshape crashed."""
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 2**31, 2**31, 4))
    with pytest.raises(DataError, match="is truncated: expected 18,446,744,073,709,551,632 bytes"):
        idx.read_idx(path)


def test_a_small_gz_claiming_2_to_the_31_images_is_refused_before_inflating(tmp_path: Path):
    """It was inflated whole first: 1 MB became 2.1 GB and 15.6 s before the error."""
    header = bytes([0, 0, 8, 1]) + struct.pack(">I", 2**31)
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(header + bytes(2_000_000)))  # 2 MB of labels: 2 KB of gz
    inflated: list[int] = []
    real = idx._Inflater.read

    def read(self, n):
        out = real(self, n)
        inflated.append(len(out))
        return out

    with pytest.MonkeyPatch.context() as m:
        m.setattr(idx._Inflater, "read", read)
        with pytest.raises(DataError, match="more than .* compressed bytes can hold"):
            idx.read_labels(path)
    assert sum(inflated) == len(header)  # the header, and not a byte more


def test_a_gz_longer_than_its_header_is_read_no_further(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3]) + bytes(5_000_000)))
    with pytest.raises(DataError, match="longer than its header says"):
        idx.read_labels(path)


# -- images -----------------------------------------------------------------------------------


def test_a_lab_image_is_one_line_and_the_other_files_are_still_predicted(
    capsys, run_dir: Path, tmp_path: Path
) -> None:
    lab = tmp_path / "lab.tif"
    lab.write_bytes(lab_tiff())
    good = tmp_path / "good.png"
    Image.fromarray(digit_array(0, 255, "uint8")).save(good)
    code, out, err = cli(capsys, "predict", str(run_dir), str(lab), str(good))
    assert code == 1 and "mode LAB cannot be read as grayscale" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert out.startswith(f"{good}: ")


def test_a_lab_image_in_an_image_folder_is_a_data_error(tmp_path: Path) -> None:
    for split in ("train", "valid"):
        for digit in ("2", "9"):
            (tmp_path / split / digit).mkdir(parents=True)
            Image.fromarray(digit_array(0, 255, "uint8")).save(tmp_path / split / digit / "a.png")
    (tmp_path / "train" / "2" / "lab.tif").write_bytes(lab_tiff())
    with pytest.raises(DataError, match="mode LAB"):
        load_folder(tmp_path)


@pytest.mark.parametrize(
    ("low", "high", "dtype"),
    [
        (0, 70_000, "int32"),
        (-5, 2**30, "int32"),
        (-1e6, 1e6, "float32"),
        (0, 1e9, "float32"),
        # Pillow holds 32-bit pixels as signed: 4e9 arrives as -294967296, below the
        # background. Scaled from its minimum the bar is still ink (dark on light).
        (0, 4_000_000_000, "uint32"),
    ],
)
def test_32_bit_tiffs_are_scaled_by_their_own_range(tmp_path: Path, low, high, dtype) -> None:
    """They wrapped when cast to uint8, and were read as "no ink"."""
    path = tmp_path / "digit.tif"
    path.write_bytes(tiff_of(digit_array(low, high, dtype)))
    assert Image.open(path).mode in ("I", "F")
    out = prepare_digit(path)  # a bar of ink, not "no ink"
    assert out.max() == pytest.approx(1.0) and out.sum() > 10
    gray = read_image(path)  # the dataset reader keeps values as they are, scaled
    assert abs(int(gray[14, 14]) - int(gray[0, 0])) > 200


@pytest.mark.parametrize("size", [(13000, 13000), (30000, 30000), (7000, 7000)])
def test_an_image_bomb_is_refused_before_decoding(tmp_path: Path, size) -> None:
    """A 24 KB 13000x13000 PNG cost 4.1 GB; Pillow's warning leaked to stderr."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb(*size))
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        with pytest.raises(TooManyPixels, match="pixels"):
            prepare_digit(path)
    assert time.perf_counter() - start < 5  # refused from the header, never decoded
    assert not [w for w in seen if "decompression bomb" in str(w.message)]


def test_an_image_bomb_on_the_command_line_is_one_line(capsys, run_dir, tmp_path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb(13000, 13000))
    code, _, err = cli(capsys, "predict", str(run_dir), str(path))
    assert code == 1 and "13000x13000 pixels, more than" in err and err.count("\n") == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes: POSIX")
def test_a_named_pipe_is_refused_not_waited_on(capsys, run_dir, tmp_path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with no_hang(fifo=fifo):
        code, _, err = cli(capsys, "predict", str(run_dir), str(fifo))
    assert code == 1 and "not a regular file" in err
    with no_hang(fifo=fifo), pytest.raises(DataError, match="not a regular file"):
        idx.read_idx(fifo)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes: POSIX")
def test_a_named_pipe_in_an_image_folder_is_refused(tmp_path: Path) -> None:
    for split in ("train", "valid"):
        for digit in ("2", "9"):
            (tmp_path / split / digit).mkdir(parents=True)
            Image.fromarray(digit_array(0, 255, "uint8")).save(tmp_path / split / digit / "a.png")
    os.mkfifo(tmp_path / "valid" / "9" / "b.png")
    with no_hang(fifo=tmp_path / "valid" / "9" / "b.png"):
        with pytest.raises(DataError, match="b.png is not a regular file"):
            load_folder(tmp_path)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((0, 5)),
        np.zeros((5, 0)),
        np.zeros((0, 0, 3)),
        np.zeros((2, 3, 4, 5)),
        np.array([["a", "b"], ["c", "d"]]),
        np.zeros((4, 4), dtype=complex),
        np.zeros((4, 4), dtype=object),
    ],
)
def test_prepare_digit_raises_groundups_errors(array: np.ndarray) -> None:
    """`prepare_digit(np.zeros((0, 5)))` raised IndexError."""
    with pytest.raises(DataError):
        prepare_digit(array)


def test_prepare_digit_of_a_wrong_type_is_a_groundup_error() -> None:
    with pytest.raises(GroundupError, match="expected an image file"):
        prepare_digit(42)  # type: ignore[arg-type]


def test_open_image_accepts_only_the_formats_asked_for() -> None:
    with pytest.raises(DataError, match="not an image file"):
        open_image(lab_tiff(), formats=("PNG",))


if sys.platform.startswith("linux"):  # keep the alarm helper honest where it runs

    def test_no_hang_fails_a_block_that_hangs() -> None:
        with pytest.raises(AssertionError, match="hangs"), no_hang(1):
            time.sleep(3)
