"""Reading and writing the safetensors format, with NumPy only.

A safetensors file (https://github.com/huggingface/safetensors) is::

    bytes 0-7      N, the length of the header, an unsigned little-endian 64-bit integer
    bytes 8-8+N    the header: a UTF-8 JSON object
                       {name: {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
                        ...,
                        "__metadata__": {str: str}}        (optional)
    then           the data buffer: each tensor's raw little-endian bytes in C order,
                   at [begin, end) counted from the start of the buffer

The tensors tile the buffer exactly: sorted by ``begin``, each starts where
the previous one ends, the first at 0 and the last at the end of the file,
and ``end - begin = prod(shape) * itemsize``. Nothing in the file is
executed on loading: it is a table of arrays, not a pickle.

This module writes tensors in the order of the dict it is given, pads the
header with spaces to a multiple of 8 bytes (so the data are aligned, as the
reference writer does) and reads files from any conforming writer, including
the ``safetensors`` package. It supports the dtypes NumPy has (``BOOL``,
``U8``/``I8`` to ``U64``/``I64``, ``F16``, ``F32``, ``F64``); ``BF16`` and the
8-bit float types are rejected with a clear message.

>>> import tempfile, pathlib, numpy as np
>>> path = pathlib.Path(tempfile.mkdtemp()) / "weights.safetensors"
>>> save_file({"w": np.eye(2, dtype=np.float32)}, path, metadata={"note": "identity"})
>>> load_file(path)["w"]
array([[1., 0.],
       [0., 1.]], dtype=float32)
>>> load_metadata(path)
{'note': 'identity'}
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import numpy as np

from ._io import atomic_file

__all__ = ["save_file", "load_file", "load_metadata"]

_DTYPES = {
    "BOOL": np.dtype("bool"),
    "U8": np.dtype("<u1"), "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"), "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"), "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"), "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
}
_NAMES = {(dt.kind, dt.itemsize): name for name, dt in _DTYPES.items()}
_METADATA = "__metadata__"
# The reference implementation (safetensors' MAX_HEADER_SIZE) refuses headers over 100 MB; so do we,
# before reading them.
_MAX_HEADER = 100_000_000
_MAX_NDIM = 64   # NumPy 2's NPY_MAXDIMS


def save_file(tensors: dict[str, np.ndarray], path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` to ``path`` in the safetensors format, atomically.

    Args:
        tensors (dict[str, ndarray]): name -> array (anything ``np.asarray``
            accepts) of a dtype listed in the module docstring; stored in
            the dict's order, little-endian, C order.
        path: the file to write (temporary file in the same directory,
            fsync, ``os.replace``).
        metadata (dict[str, str] | None): free-form string pairs stored in
            the header's ``__metadata__``. Default: None (no metadata).

    Raises:
        TypeError: a name or metadata entry that is not a string, or an
            array of an unsupported dtype.
        ValueError: the reserved name ``__metadata__``.
    """
    if not isinstance(tensors, dict):
        raise TypeError(f"save_file: tensors must be a dict of name -> array, got {type(tensors).__name__}")
    header: dict = {}
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError(f"save_file: metadata must be a dict of str -> str, got {metadata!r:.200}")
        header[_METADATA] = dict(metadata)
    blobs = []
    offset = 0
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"save_file: tensor names must be strings, got {name!r}")
        if name == _METADATA:
            raise ValueError(f"save_file: {_METADATA!r} is reserved for the metadata and cannot name a tensor")
        array = np.asarray(value)
        dtype_name = _NAMES.get((array.dtype.kind, array.dtype.itemsize))
        if dtype_name is None:
            raise TypeError(
                f"save_file: tensor {name!r} has dtype {array.dtype}; supported: "
                + ", ".join(str(dt) for dt in dict.fromkeys(_DTYPES.values()))
            )
        blob = np.ascontiguousarray(array, dtype=_DTYPES[dtype_name]).tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    with atomic_file(path) as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def load_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every tensor of a safetensors file.

    The file is untrusted: its header is validated whole (``load_metadata``)
    before any tensor is allocated, and each tensor is then read straight
    into its own array, so loading takes no more memory than the file's size.

    Args:
        path: the file.

    Returns:
        name -> ndarray (native byte order, writable, owning its memory), in
        the order of the tensors in the data buffer.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a corrupt file: header length beyond the file or over
            100 MB, header not a JSON object (or with a name twice), an entry
            without a valid dtype, shape or offsets, offsets that overlap,
            leave gaps or disagree with the shape, or a file longer or
            shorter than its tensors. The message names the file, the tensor
            and what is wrong.
    """
    path = Path(path)
    out = {}
    with open(path, "rb") as f:
        _, entries, start = _read_header(path, f)
        f.seek(start)
        for name, entry in entries:
            dtype = _DTYPES[entry["dtype"]]
            array = np.empty(entry["shape"], dtype=dtype.newbyteorder("="))
            if array.size and f.readinto(memoryview(array).cast("B")) != array.nbytes:
                raise ValueError(f"load_file: {path} is truncated: it ended inside tensor {name!r} (was it "
                                 "being written?)")
            if not dtype.isnative:
                array.byteswap(inplace=True)
            out[name] = array
    return out


def load_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` string pairs of a safetensors file ({} if it has none).

    The header is validated as by ``load_file`` (same ValueErrors): JSON
    types, dtype names, shapes, and offsets that tile the data buffer
    exactly, as the reference implementation requires; the tensors are not
    read.
    """
    path = Path(path)
    with open(path, "rb") as f:
        header = _read_header(path, f)[0]
    return dict(header.get(_METADATA, {}))


def _read_header(path: Path, f) -> tuple[dict, list[tuple[str, dict]], int]:
    """The validated header of the open file ``f``, its tensor entries sorted by offset, and where its
    data buffer starts."""
    header, start = _read_json(path, f)
    return header, _tensors(path, header, os.fstat(f.fileno()).st_size - start), start


def _read_json(path: Path, f) -> tuple[dict, int]:
    """The header of the open file ``f`` as a JSON object with no name twice, and the offset after it."""
    size = os.fstat(f.fileno()).st_size
    prefix = f.read(8)
    if len(prefix) < 8:
        raise ValueError(f"load_file: {path} is not a safetensors file: it has {len(prefix)} bytes, "
                         "fewer than the 8-byte header length")
    (length,) = struct.unpack("<Q", prefix)
    if length > _MAX_HEADER:
        raise ValueError(f"load_file: {path} is not a safetensors file or is corrupt: its header length field "
                         f"says {length} bytes, more than the {_MAX_HEADER} a safetensors header may have")
    if length > size - 8:
        raise ValueError(f"load_file: {path} is not a safetensors file or is truncated: its header length "
                         f"field says {length} bytes, the file has {size - 8} after it")
    raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_names)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"load_file: {path} is corrupt: its {length}-byte header is not valid JSON "
                         f"({type(exc).__name__}: {str(exc):.200})") from None
    if not isinstance(header, dict):
        raise ValueError(f"load_file: {path} is corrupt: its header is a JSON {type(header).__name__}, "
                         "expected an object")
    return header, 8 + length


def _unique_names(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object's pairs as a dict; a name given twice is an error (the later one would hide the other)."""
    out: dict = {}
    for name, value in pairs:
        if name in out:
            raise ValueError(f"the name {name!r:.100} appears twice in one object")
        out[name] = value
    return out


def _tensors(path: Path, header: dict, buffer: int) -> list[tuple[str, dict]]:
    """The checked tensor entries of ``header``, sorted by offset, tiling a data buffer of ``buffer`` bytes."""
    entries = []
    for name, entry in header.items():
        if name == _METADATA:
            _check_metadata(path, entry)
        else:
            _check_entry(path, name, entry)
            entries.append((name, entry))
    entries.sort(key=lambda item: tuple(item[1]["data_offsets"]))
    expected = 0
    for name, entry in entries:
        begin, end = entry["data_offsets"]
        if begin != expected:
            problem = "overlaps the previous tensor" if begin < expected else "leaves a gap before it"
            raise ValueError(f"load_file: {path} is corrupt: tensor {name!r} starts at byte {begin} of the "
                             f"data buffer and {problem} (which ends at {expected})")
        expected = end
    if expected != buffer:
        raise ValueError(f"load_file: {path} is corrupt: its tensors cover {expected} bytes of the data buffer, "
                         f"the file holds {buffer} (truncated or trailing bytes)")
    return entries


def _check_metadata(path: Path, metadata) -> None:
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"load_file: {path} is corrupt: {_METADATA} must map strings to strings, "
                         f"got {metadata!r:.200}")


def _check_entry(path: Path, name: str, entry) -> None:
    where = f"load_file: {path} is corrupt: tensor {name!r:.200}"
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise ValueError(f"{where} must be an object with dtype, shape and data_offsets, got {entry!r:.200}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise ValueError(f"{where} has dtype {dtype!r:.100}; this reader supports " + ", ".join(_DTYPES))
    if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
        raise ValueError(f"{where} has shape {shape!r:.200}; expected a list of non-negative integers")
    if len(shape) > _MAX_NDIM:
        raise ValueError(f"{where} has {len(shape)} dimensions; a NumPy array has at most {_MAX_NDIM}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise ValueError(f"{where} has data_offsets {offsets!r:.200}; expected [begin, end] with "
                         "0 <= begin <= end")
    nbytes = math.prod(shape) * _DTYPES[dtype].itemsize   # at most 64 factors: exact and cheap
    if offsets[1] - offsets[0] != nbytes:
        raise ValueError(f"{where} has data_offsets {offsets} ({offsets[1] - offsets[0]} bytes) but shape "
                         f"{shape} of {dtype} needs {nbytes} bytes")


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
