"""Image files to 28×28 arrays, and the MNIST-style preparation of a user's digit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from groundup.data.images import CENTRE, prepare_digit, read_image
from groundup.errors import DataError

# --- a real MNIST digit to prepare -----------------------------------------------------


@pytest.fixture(scope="module")
def mnist_digits(tmp_path_factory) -> np.ndarray:
    """Some real MNIST digits (the bundled sample), uint8 (N, 28, 28)."""
    from groundup.data.sample import load_sample

    raw = load_sample(cache=tmp_path_factory.mktemp("cache"))
    return raw.valid_images[::50]  # 20 digits, two of each class


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    total = a.sum()
    rows = (a.sum(axis=1) * np.arange(a.shape[0])).sum() / total
    cols = (a.sum(axis=0) * np.arange(a.shape[1])).sum() / total
    return float(rows), float(cols)


def ink_box(a: np.ndarray, threshold: float = 0.05) -> tuple[int, int]:
    rows = np.flatnonzero((a > threshold).any(axis=1))
    cols = np.flatnonzero((a > threshold).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def aligned_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |a - b| at the best shift of up to one pixel.

    Centring by centre of mass rounds to whole pixels, so a digit whose centre lies
    near a half pixel may land one pixel over; that is the recipe, not an error.
    """
    return min(
        float(np.abs(np.roll(a, (dy, dx), axis=(0, 1)) - b).mean())
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def as_photo(digit: np.ndarray) -> np.ndarray:
    """A digit as a phone photo of paper: dark ink on light gray, enlarged, off-centre, noisy."""
    big = np.kron(255 - digit.astype(np.int64), np.ones((5, 5), dtype=np.int64))  # 140×140
    paper = np.full((400, 300), 215, dtype=np.int64)
    paper[30:170, 140:280] = np.minimum(big, 215)  # ink only darkens the paper
    noise = np.random.default_rng(0).integers(-12, 13, paper.shape)
    return np.clip(paper + noise, 0, 255).astype(np.uint8)


# --- read_image ------------------------------------------------------------------------


def test_read_image_keeps_a_28x28_grayscale_png_exactly(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "d.png")
    out = read_image(tmp_path / "d.png")
    assert out.dtype == np.uint8 and out.shape == (28, 28)
    np.testing.assert_array_equal(out, pixels)  # no inversion, no rescaling


def test_read_image_converts_colour_and_resizes(tmp_path):
    rgb = np.zeros((56, 56, 3), dtype=np.uint8)
    rgb[:, 28:] = (255, 255, 255)  # right half white
    Image.fromarray(rgb).save(tmp_path / "d.jpg", quality=95)
    out = read_image(tmp_path / "d.jpg")
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out[:, :12].max() < 30 and out[:, 16:].min() > 225


@pytest.mark.parametrize(
    "content", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 20], ids=["text", "bad-png"]
)
def test_read_image_names_an_unreadable_file(tmp_path, content):
    path = tmp_path / "7.png"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        read_image(path)
    assert str(path) in str(err.value)


def test_read_image_truncated_png(tmp_path):
    big = np.random.default_rng(2).integers(0, 256, (200, 200), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.png"):
        read_image(tmp_path / "cut.png")


def test_read_image_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        read_image(tmp_path / "absent.png")


# --- prepare_digit ---------------------------------------------------------------------


def test_an_mnist_digit_comes_back_almost_unchanged(mnist_digits):
    for digit in mnist_digits:
        out = prepare_digit(digit)
        assert out.dtype == np.float32 and out.shape == (28, 28)
        assert 0.0 <= out.min() and out.max() <= 1.0
        # MNIST digits are already prepared this way: the result is nearly the same image
        assert aligned_difference(out, digit / 255.0) < 0.02


def test_a_photo_of_dark_ink_on_paper_becomes_mnist_like(mnist_digits):
    for digit in mnist_digits:
        out = prepare_digit(as_photo(digit))
        assert out.max() > 0.9  # the darkest ink is full white (Lanczos may soften it)
        assert out[0].max() == 0 and out[:, 0].max() == 0  # background black, paper gone
        assert aligned_difference(out, digit / 255.0) < 0.05


def test_light_ink_on_dark_is_not_inverted():
    img = np.zeros((60, 60), dtype=np.uint8)
    img[10:50, 28:32] = 255  # a white "1" on black
    out = prepare_digit(img)
    assert out[14, 14] > 0.9 and out[0, 0] == 0.0


def test_the_digit_fits_20x20_and_keeps_its_aspect_ratio():
    img = np.full((100, 100), 255, dtype=np.uint8)
    img[20:80, 45:60] = 0  # a dark bar, 60 tall and 15 wide
    out = prepare_digit(img)
    h, w = ink_box(out)
    assert h == 20
    assert w == pytest.approx(5, abs=1)  # 15 * 20 / 60


def test_centre_of_mass_lands_at_the_centre():
    img = np.zeros((80, 80), dtype=np.uint8)
    img[5:30, 5:12] = 255  # a stroke near the top-left corner
    img[25:30, 5:25] = 255  # with a foot: lopsided mass
    cy, cx = centre_of_mass(prepare_digit(img))
    assert cy == pytest.approx(CENTRE, abs=0.6)
    assert cx == pytest.approx(CENTRE, abs=0.6)


@settings(max_examples=30, deadline=None)
@given(
    top=st.integers(0, 60),
    left=st.integers(0, 60),
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    dark_on_light=st.booleans(),
)
def test_any_blob_is_boxed_centred_and_in_range(top, left, height, width, dark_on_light):
    img = np.zeros((100, 100), dtype=np.uint8)
    img[top : top + height, left : left + width] = 255
    if dark_on_light:
        img = 255 - img
    out = prepare_digit(img)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    h, w = ink_box(out, threshold=0.2)
    assert max(h, w) in (20, 21)  # Lanczos may spill a faint pixel
    cy, cx = centre_of_mass(out)
    assert abs(cy - CENTRE) <= 1.0 and abs(cx - CENTRE) <= 1.0


def test_path_pil_and_array_inputs_agree(tmp_path, mnist_digits):
    photo = as_photo(mnist_digits[3])
    Image.fromarray(photo).save(tmp_path / "photo.png")
    from_array = prepare_digit(photo)
    np.testing.assert_allclose(prepare_digit(tmp_path / "photo.png"), from_array, atol=1e-6)
    np.testing.assert_allclose(prepare_digit(Image.fromarray(photo)), from_array, atol=1e-6)
    np.testing.assert_allclose(prepare_digit(photo / 255.0), from_array, atol=1e-6)


def test_black_strokes_on_a_transparent_canvas():
    rgba = np.zeros((64, 64, 4), dtype=np.uint8)  # transparent black: what canvases export
    rgba[10:54, 30:36] = (0, 0, 0, 255)  # an opaque black stroke
    out = prepare_digit(Image.fromarray(rgba, mode="RGBA"))
    assert out.max() > 0.9 and out[0, 0] == 0.0
    assert ink_box(out)[0] == 20


def test_colour_array_is_accepted():
    rgb = np.full((50, 50, 3), 240, dtype=np.uint8)
    rgb[10:40, 20:26] = (20, 30, 200)  # blue ink on white
    out = prepare_digit(rgb)
    assert ink_box(out, 0.2)[0] == 20


@pytest.mark.parametrize("shade", [0, 128, 255])
def test_a_blank_image_has_no_ink(shade):
    with pytest.raises(DataError, match="no ink found"):
        prepare_digit(np.full((40, 40), shade, dtype=np.uint8))


def test_a_non_image_file_is_named(tmp_path):
    path = tmp_path / "digit.png"
    path.write_text("I am a text file")
    with pytest.raises(DataError, match="digit.png"):
        prepare_digit(path)
