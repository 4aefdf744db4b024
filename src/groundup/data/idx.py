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
import math
import os
import zlib
from pathlib import Path

import numpy as np

from groundup.atomic import atomic_write_bytes
from groundup.data.files import open_regular
from groundup.errors import DataError

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions: (N, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension: (N,)
_UBYTE = 0x08  # the only IDX type MNIST-like data uses
_WHAT = {IMAGES_MAGIC: "an IDX image file", LABELS_MAGIC: "an IDX label file"}


# Deflate cannot compress better than about 1032 to 1 (a 258-byte match per 2-bit code),
# so a .gz of n bytes holds at most this many times n: a header promising more is a lie
# we can tell before inflating anything.
MAX_DEFLATE_RATIO = 1032


def _read_file(path: Path) -> bytearray:
    """The file's bytes, read whole (a regular file only: a FIFO would hang us).

    A `bytearray`, so that the arrays made over it are writable (torch warns about
    read-only numpy arrays).
    """
    with open_regular(path) as f:
        try:
            data = bytearray(os.fstat(f.fileno()).st_size)
            del data[f.readinto(data) :]  # in place: the file may have shrunk meanwhile
        except OSError as err:
            raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    return data


class _Inflater:
    """Inflates a .gz a piece at a time, so that we stop where the IDX header says.

    We use `zlib` rather than `gzip.open` because it is faster on one big buffer,
    and because on a truncated `.gz` it gives the bytes it could decode, so the
    error can say how many bytes the header promised and how many there were.
    A .gz may hold several members, one after another; garbage after a complete
    member is ignored, as gzip does.
    """

    def __init__(self, data: bytearray, path: Path) -> None:
        self.rest: bytes | bytearray = data
        self.path = path
        self.inflater = zlib.decompressobj(wbits=31)  # 31: expect a gzip header
        self.members = 0
        self.done = not data

    def read(self, n: int) -> bytearray:
        """Up to `n` more bytes (fewer only at the end of the data)."""
        out = bytearray()
        while len(out) < n and not self.done:
            try:
                chunk = self.inflater.decompress(self.rest, n - len(out))
            except zlib.error as err:
                if self.members:  # trailing garbage after a complete member
                    self.done = True
                    break
                raise DataError(f"{self.path} is not a valid gzip file ({err})") from None
            out += chunk
            if self.inflater.eof:
                self.members += 1
                self.rest = self.inflater.unused_data
                self.inflater = zlib.decompressobj(wbits=31)
                self.done = not self.rest
            else:
                tail = self.inflater.unconsumed_tail
                if not chunk and len(tail) == len(self.rest):
                    self.done = True  # cut short: nothing more can be decoded
                self.rest = tail
        return out


def _read_bytes(path: Path) -> bytearray:
    """The file's bytes, inflated if `.gz`, but never far past what its header declares.

    For a .gz we inflate the header first, then at most the size it declares plus one
    byte (to tell a file longer than its header): a small file whose header claims
    2**31 images is refused before it is inflated.
    """
    data = _read_file(path)
    if path.suffix != ".gz":
        return data
    inflater = _Inflater(data, path)
    head = inflater.read(4)
    if len(head) < 4:
        return head
    head += inflater.read(4 * head[3])
    expected = _declared_size(head)
    if expected is None:
        return head + inflater.read(1)  # too short or not IDX: read_idx says what is wrong
    if expected > MAX_DEFLATE_RATIO * len(data) + len(head):
        raise DataError(
            f"{path} is truncated: its header declares {expected:,} bytes, more than "
            f"{len(data):,} compressed bytes can hold"
        )
    return head + inflater.read(expected - len(head) + 1)


def _declared_size(head: bytes | bytearray) -> int | None:
    """Header plus values, in bytes, by the header in `head`; None if it is incomplete."""
    ndim = head[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(head) < header:
        return None
    # Python integers: the dimensions' product may pass 2**63 (numpy's int64 would wrap)
    return header + math.prod(int.from_bytes(head[i : i + 4], "big") for i in range(4, header, 4))


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
    shape = tuple(int.from_bytes(data[i : i + 4], "big") for i in range(4, header, 4))
    expected = header + math.prod(shape)  # Python integers: no wrap past 2**63
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
