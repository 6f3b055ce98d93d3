"""The IDX file format (the format of MNIST and Fashion-MNIST), raw or gzip.

Layout, all integers big-endian::

    bytes 0-1   0x00 0x00
    byte  2     dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     ndim
    then        ndim sizes, each a uint32
    then        prod(sizes) elements in C order, big-endian

so a file holds exactly ``4 + 4*ndim + prod(sizes)*itemsize`` bytes. The
first four bytes read as one uint32 are the "magic number": 2051
(0x00000803: uint8, 3 dims) for MNIST images, 2049 (0x00000801: uint8,
1 dim) for labels.

Files are read header first and never beyond the length it implies, so a
hostile file (a gzip bomb, a header claiming terabytes) costs no more
memory than the data its header describes; gzip is recognised by its
content (bytes 1f 8b), whatever the name. Writing goes to a
temporary file in the same directory, then ``os.replace``: a reader never
sees half a file.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .._io import atomic_file

_CODE_TO_DTYPE = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_TO_CODE = {(dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_SUPPORTED = "uint8, int8, int16, int32, float32, float64"
_CHUNK = 1 << 20   # bytes per read: a read of n bytes may allocate n before it knows how many come
_MAX_NDIM = 64   # NumPy 2's NPY_MAXDIMS: IDX allows 255, an ndarray no more than this
# Deflate's largest expansion (zlib's technical notes: 1032:1): no gzip file of n bytes inflates beyond this * n.
_MAX_DEFLATE_RATIO = 1032


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a native-endian ndarray.

    The file is untrusted: the header is read and checked first, the size
    it implies is computed with Python ints (no overflow), and the data are
    read in chunks, never more than that size plus one byte (which reveals
    trailing data). A raw file's size is checked before its data are read;
    a gzip file's implied size must be one its compressed size can inflate
    to (deflate expands at most 1032:1), so a small file whose header claims
    terabytes is refused at once, and a gzip bomb whose header claims little
    is refused after reading that little.

    Args:
        path: the file. Compression is detected from the content (gzip
            magic ``1f 8b``), not from the name.

    Returns:
        An array of the dtype given by the file's dtype code (uint8, int8,
        int16, int32, float32 or float64) and of shape ``sizes``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad magic (first two bytes not zero), unknown dtype code,
            0 dimensions or more than NumPy's 64, a broken gzip stream, or
            a length other than ``4 + 4*ndim + prod(sizes)*itemsize`` bytes
            (truncated file or trailing bytes); the message names the file,
            what its header says and what was found.

    >>> import tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.idx.gz"
    >>> write_idx(p, np.arange(6, dtype=np.int16).reshape(2, 3))
    >>> read_idx(p)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=int16)
    """
    path = Path(path)
    with _idx_stream(path) as (stream, size, compressed):
        dtype, shape, header = _read_header(path, stream, size, compressed)
        return _read_data(path, stream, dtype, shape, header, compressed)


def read_idx_header(path: str | os.PathLike) -> tuple[np.dtype, tuple[int, ...]]:
    """The (native-endian) dtype and the shape an IDX file's header declares, without reading its data.

    The header is checked as by ``read_idx`` (magic, dtype code, number of
    dimensions, and the size it implies against the file's), so a caller
    can refuse a file that does not hold what it expects before its data
    are read. Raises as ``read_idx``.
    """
    path = Path(path)
    with _idx_stream(path) as (stream, size, compressed):
        dtype, shape, _ = _read_header(path, stream, size, compressed)
    return dtype.newbyteorder("="), shape


@contextmanager
def _idx_stream(path: Path):
    """``(stream, size on disk, compressed)`` of the file at ``path``; gzip's errors become ValueErrors."""
    with open(path, "rb") as raw:
        size = os.fstat(raw.fileno()).st_size
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            yield raw, size, False
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            try:
                yield stream, size, True
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                raise ValueError(f"read_idx: {path} is not a valid gzip file ({exc})") from None


def _read_header(path: Path, stream, size: int, compressed: bool) -> tuple[np.dtype, tuple[int, ...], int]:
    """The file dtype, the shape and the header's length in bytes of an IDX stream (``size``: the file's
    size on disk), checked as ``read_idx`` says."""
    content = _content(compressed)
    magic = _read_at_most(stream, 4)
    if len(magic) < 4:
        raise ValueError(f"read_idx: {path} is too short for the 4-byte IDX header: its {content} has "
                         f"{len(magic)} bytes")
    if magic[0:2] != b"\x00\x00":
        raise ValueError(f"read_idx: {path} has bad magic bytes {magic[0:2].hex(' ')} in its {content}; "
                         f"an IDX file starts with 00 00")
    code, ndim = magic[2], magic[3]
    if code not in _CODE_TO_DTYPE:
        raise ValueError(f"read_idx: {path} has unknown dtype code 0x{code:02X} in its {content}; expected one of "
                         + ", ".join(f"0x{c:02X}" for c in _CODE_TO_DTYPE))
    if not 1 <= ndim <= _MAX_NDIM:
        raise ValueError(f"read_idx: {path} declares {ndim} dimensions in its {content}; expected 1 to "
                         f"{_MAX_NDIM} (the most a NumPy array has)")
    header = 4 + 4 * ndim
    sizes = _read_at_most(stream, header - 4)
    if len(sizes) < header - 4:
        raise ValueError(f"read_idx: {path} is truncated: its header for {ndim} dimensions needs {header} bytes, "
                         f"its {content} has {4 + len(sizes)}")
    shape = tuple(int.from_bytes(sizes[i:i + 4], "big") for i in range(0, len(sizes), 4))
    dtype = _CODE_TO_DTYPE[code]
    nbytes, says = _implied(dtype, shape, header)
    if not compressed and header + nbytes != size:
        problem = "truncated" if size < header + nbytes else "followed by trailing bytes"
        raise ValueError(f"read_idx: {path} is {problem}: {says}, its content has {size}")
    if compressed and header + nbytes > _MAX_DEFLATE_RATIO * size:
        raise ValueError(f"read_idx: {path} is truncated or corrupt: {says}, more than its {size} compressed "
                         f"bytes can inflate to (deflate expands at most {_MAX_DEFLATE_RATIO}:1)")
    return dtype, shape, header


def _read_data(path: Path, stream, dtype: np.dtype, shape: tuple[int, ...], header: int,
               compressed: bool) -> np.ndarray:
    """The array that follows a checked header: exactly its bytes, or a ValueError for fewer or more."""
    content = _content(compressed)
    nbytes, says = _implied(dtype, shape, header)
    data = _read_at_most(stream, nbytes + 1)
    if len(data) < nbytes:
        raise ValueError(f"read_idx: {path} is truncated: {says}, its {content} has {header + len(data)}")
    if len(data) > nbytes:
        raise ValueError(f"read_idx: {path} is followed by trailing bytes: {says}, its {content} has "
                         f"{header + len(data)} or more (reading stopped there)")
    array = np.frombuffer(data, dtype=dtype).reshape(shape)   # writable: it shares the bytearray
    return array if dtype.isnative else array.byteswap(inplace=True).view(dtype.newbyteorder("="))


def _implied(dtype: np.dtype, shape: tuple[int, ...], header: int) -> tuple[int, str]:
    """The data bytes a header implies (a Python int: no overflow), and the words that say so in errors."""
    nbytes = math.prod(shape) * dtype.itemsize
    return nbytes, f"shape {shape} of {dtype.name} needs {header + nbytes} bytes ({header} header + data)"


def _content(compressed: bool) -> str:
    return "decompressed content" if compressed else "content"


def _read_at_most(stream, n: int) -> bytearray:
    """Up to ``n`` bytes of ``stream`` (fewer at its end), read in chunks: memory grows only with what is read."""
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(min(_CHUNK, n - len(out)))
        if not chunk:
            break
        out += chunk
    return out


def write_idx(path: str | os.PathLike, array) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The file is written atomically (temporary file in the same directory,
    fsync, ``os.replace``).

    Args:
        path: destination file.
        array: array-like of dtype uint8, int8, int16, int32, float32 or
            float64 with 1 to 255 dimensions, each smaller than 2**32.
            Other dtypes are rejected, not converted (IDX has no int64 or
            bool: convert explicitly, e.g. labels with ``astype(np.uint8)``).

    Raises:
        TypeError: unsupported dtype.
        ValueError: 0 or more than 255 dimensions, or a size of 2**32 or more.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _KIND_TO_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise TypeError(f"write_idx: array has dtype {array.dtype}; IDX supports {_SUPPORTED}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: array has {array.ndim} dimensions; IDX supports 1 to 255")
    if any(s >= 2**32 for s in array.shape):
        raise ValueError(f"write_idx: array shape {array.shape} has a size >= 2**32, which IDX cannot store")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
    with atomic_file(path) as f:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(fileobj=f, mode="wb", filename="", mtime=0) as gz:
                gz.write(header)
                gz.write(body)
        else:
            f.write(header)
            f.write(body)
