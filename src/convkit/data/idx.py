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

Files are read whole and checked against that length; gzip is recognised
by its content (bytes 1f 8b), whatever the name. Writing goes to a
temporary file in the same directory, then ``os.replace``: a reader never
sees half a file.
"""

from __future__ import annotations

import gzip
import os
import zlib
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


def _read_bytes(path: Path) -> tuple[bytes, bool]:
    """The file's content, decompressed if it starts with the gzip magic; and whether it did."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(_GZIP_MAGIC):
        return data, False
    try:
        return gzip.decompress(data), True
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"read_idx: {path} is not a valid gzip file ({exc})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a native-endian ndarray.

    Args:
        path: the file. Compression is detected from the content (gzip
            magic ``1f 8b``), not from the name.

    Returns:
        An array of the dtype given by the file's dtype code (uint8, int8,
        int16, int32, float32 or float64) and of shape ``sizes``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad magic (first two bytes not zero), unknown dtype code,
            zero dimensions, or a length other than
            ``4 + 4*ndim + prod(sizes)*itemsize`` bytes (truncated file or
            trailing bytes); the message names the file and both counts.

    >>> import tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.idx.gz"
    >>> write_idx(p, np.arange(6, dtype=np.int16).reshape(2, 3))
    >>> read_idx(p)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=int16)
    """
    path = Path(path)
    data, compressed = _read_bytes(path)
    what = f"{path} ({'decompressed ' if compressed else ''}{len(data)} bytes)"
    if len(data) < 4:
        raise ValueError(f"read_idx: {what} is too short for the 4-byte IDX header")
    if data[0:2] != b"\x00\x00":
        raise ValueError(
            f"read_idx: {what} has bad magic bytes {data[0:2].hex(' ')}; an IDX file starts with 00 00"
        )
    code, ndim = data[2], data[3]
    if code not in _CODE_TO_DTYPE:
        raise ValueError(
            f"read_idx: {what} has unknown dtype code 0x{code:02X}; expected one of "
            + ", ".join(f"0x{c:02X}" for c in _CODE_TO_DTYPE)
        )
    if ndim == 0:
        raise ValueError(f"read_idx: {what} declares 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"read_idx: {path} is truncated: its header for {ndim} dimensions needs {header} bytes, "
            f"the {'decompressed ' if compressed else ''}file has {len(data)}"
        )
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _CODE_TO_DTYPE[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "followed by trailing bytes"
        raise ValueError(
            f"read_idx: {path} is {problem}: shape {shape} of {dtype.name} needs {expected} bytes "
            f"({header} header + data), the {'decompressed ' if compressed else ''}file has {len(data)}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


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
