"""IDX files, the format of MNIST, Fashion-MNIST and KMNIST: read and write, checked.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then
the values in C order (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS")::

    magic = 0x00 0x00 <type> <ndim>     type 0x08 = unsigned byte
    images: 0x00000803, then N, 28, 28, then N*28*28 bytes
    labels: 0x00000801, then N, then N bytes

Files may be gzipped (`.gz`). Reading makes one numpy array over the whole
buffer (`np.frombuffer`), with no Python object per image, and every way a file
can be wrong becomes a `DataError` that names the file.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from groundup.atomic import atomic_write_bytes
from groundup.errors import DataError

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions: (N, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension: (N,)
_UBYTE = 0x08  # the only IDX type MNIST-like data uses
_WHAT = {IMAGES_MAGIC: "an IDX image file", LABELS_MAGIC: "an IDX label file"}


def _read_bytes(path: Path) -> bytearray:
    """The file's (decompressed) bytes; a cut gzip stream gives what it holds.

    A `bytearray`, so that the arrays made over it are writable (torch warns about
    read-only numpy arrays).

    We decompress with `zlib` rather than `gzip.open` because it is faster on one
    big buffer, and because on a truncated `.gz` it returns the bytes it could
    decode, so the error can say how many bytes the header promised and how many
    there were, as for an uncompressed file.
    """
    try:
        with path.open("rb") as f:
            data = bytearray(os.fstat(f.fileno()).st_size)
            del data[f.readinto(data) :]  # in place: the file may have shrunk meanwhile
    except FileNotFoundError:
        raise DataError(f"no such file or directory: {path}") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    if path.suffix != ".gz":
        return data
    chunks: list[bytes] = []
    rest: bytes | bytearray = data
    while rest:  # a .gz may hold several members, one after another
        inflater = zlib.decompressobj(wbits=31)  # 31: expect a gzip header
        try:
            chunks.append(inflater.decompress(rest))
        except zlib.error as err:
            if chunks:  # trailing garbage after a complete member, as gzip tolerates
                break
            raise DataError(f"{path} is not a valid gzip file ({err})") from None
        if not inflater.eof:
            break  # cut short: keep what was decoded, the size check below reports it
        rest = inflater.unused_data
    return bytearray().join(chunks)


def read_idx(path: str | os.PathLike[str], *, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally `.gz`) into a uint8 array of the shape its header gives.

    `magic`, when given, is the magic number the file must have (`IMAGES_MAGIC`,
    `LABELS_MAGIC`), so that swapping an image file for a label file is caught.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(
            f"{path} is truncated: an IDX file starts with a 4-byte magic number, "
            f"but it has {len(data)} bytes"
        )
    found = int.from_bytes(data[:4], "big")
    if magic is not None and found != magic:
        raise DataError(
            f"{path}: wrong magic number 0x{found:08x}, expected 0x{magic:08x} "
            f"({_WHAT.get(magic, 'an IDX file')})"
        )
    zeros, kind, ndim = found >> 16, data[2], data[3]
    if zeros != 0 or ndim == 0:
        raise DataError(f"{path}: magic number 0x{found:08x} is not that of an IDX file")
    if kind != _UBYTE:
        raise DataError(
            f"{path}: IDX value type 0x{kind:02x} is not supported (only 0x08, unsigned bytes)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path} is truncated: its header needs {header} bytes, but it has {len(data)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        problem = "is truncated" if len(data) < expected else "is longer than its header says"
        raise DataError(
            f"{path} {problem}: expected {expected:,} bytes (header {header} + "
            f"{' x '.join(map(str, shape))} values), got {len(data):,} bytes"
        )
    # A read-only view over the bytes: no copy, no object per image.
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_images(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX image file: uint8 (N, 28, 28)."""
    images = read_idx(path, magic=IMAGES_MAGIC)
    if images.shape[1:] != (28, 28):
        rows, cols = images.shape[1:]
        raise DataError(f"{path}: images are {rows}x{cols} pixels; groundup needs 28x28")
    return images


def read_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX label file: uint8 (N,), as stored (the caller checks the range)."""
    return read_idx(path, magic=LABELS_MAGIC)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write a uint8 array of 1 to 255 dimensions as an IDX file (gzipped if `path` ends in .gz).

    The file appears whole or not at all: we write a temporary file in the same
    folder, then rename it over `path` (a rename within one file system is atomic).
    """
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise DataError(f"IDX files here hold uint8 values, not {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise DataError(f"an IDX array needs 1 to 255 dimensions, not {array.ndim}")
    header = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = header + np.ascontiguousarray(array).tobytes()
    if path.suffix == ".gz":
        # mtime=0: the same array always gives the same bytes (and checksum)
        body = gzip.compress(body, compresslevel=6, mtime=0)
    atomic_write_bytes(path, body)
    return path


