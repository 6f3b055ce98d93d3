"""convkit.safetensors: round trips, the byte layout, files of the reference writer, corrupt files."""

import importlib.util
import json
import os
import struct
import tracemalloc

import numpy as np
import pytest

from convkit.safetensors import load_file, load_metadata, save_file

# Written by the reference implementation (the `safetensors` package 0.8.0, safetensors.numpy.save)
# for {"steps": int64 [7, -1], "weight": float32 [[1.5, -2], [0.25, 3]], "half": float16 [0.5],
# "mask": uint8 [1, 0, 255]} with metadata {"source": "safetensors 0.8.0"}.
REFERENCE_FILE = bytes.fromhex(
    "20010000000000007b225f5f6d657461646174615f5f223a7b22736f75726365223a227361666574656e736f727320302e"
    "382e30227d2c227374657073223a7b226474797065223a22493634222c227368617065223a5b325d2c22646174615f6f66"
    "6673657473223a5b302c31365d7d2c22776569676874223a7b226474797065223a22463332222c227368617065223a5b32"
    "2c325d2c22646174615f6f666673657473223a5b31362c33325d7d2c2268616c66223a7b226474797065223a2246313622"
    "2c227368617065223a5b315d2c22646174615f6f666673657473223a5b33322c33345d7d2c226d61736b223a7b22647479"
    "7065223a225538222c227368617065223a5b335d2c22646174615f6f666673657473223a5b33342c33375d7d7d20202020"
    "20200700000000000000ffffffffffffffff0000c03f000000c00000803e0000404000380100ff"
)
REFERENCE_TENSORS = {
    "steps": np.array([7, -1], np.int64),
    "weight": np.array([[1.5, -2.0], [0.25, 3.0]], np.float32),
    "half": np.array([0.5], np.float16),
    "mask": np.array([1, 0, 255], np.uint8),
}
HAVE_SAFETENSORS = importlib.util.find_spec("safetensors") is not None


def _all_dtypes():
    rng = np.random.default_rng(0)
    out = {f"{dt}": (rng.normal(size=(2, 3)) * 50).astype(dt) for dt in
           ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
            "uint8", "uint16", "uint32", "uint64")}
    out["bool"] = np.array([True, False, True])
    out["scalar"] = np.array(3.25)
    out["empty"] = np.zeros((0, 4), np.float32)
    out["big-endian"] = np.arange(4, dtype=">i4")
    return out


def test_round_trip_every_dtype_and_shape(tmp_path):
    tensors = _all_dtypes()
    save_file(tensors, tmp_path / "a.safetensors", metadata={"k": "v", "json": '{"a": [1, 2]}'})
    loaded = load_file(tmp_path / "a.safetensors")
    assert list(loaded) == list(tensors)                # order of the dict kept
    for name, array in tensors.items():
        assert loaded[name].shape == array.shape
        assert loaded[name].dtype == array.dtype.newbyteorder("=")
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].flags.writeable and loaded[name].flags.owndata
    assert load_metadata(tmp_path / "a.safetensors") == {"k": "v", "json": '{"a": [1, 2]}'}


def test_layout_header_aligned_and_offsets_tiled(tmp_path):
    path = tmp_path / "b.safetensors"
    save_file({"x": np.arange(3, dtype=np.float32), "y": np.ones((2, 2), np.float64)}, path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0
    header = json.loads(raw[8:8 + n])
    assert header == {"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                      "y": {"dtype": "F64", "shape": [2, 2], "data_offsets": [12, 44]}}
    assert len(raw) == 8 + n + 44
    assert raw[8 + n:8 + n + 12] == np.arange(3, dtype="<f4").tobytes()
    assert load_metadata(path) == {}


def test_reads_the_reference_writers_file(tmp_path):
    path = tmp_path / "ref.safetensors"
    path.write_bytes(REFERENCE_FILE)
    loaded = load_file(path)
    assert list(loaded) == list(REFERENCE_TENSORS)
    for name, array in REFERENCE_TENSORS.items():
        assert loaded[name].dtype == array.dtype
        np.testing.assert_array_equal(loaded[name], array)
    assert load_metadata(path) == {"source": "safetensors 0.8.0"}


def test_writes_the_reference_writers_bytes(tmp_path):
    # Given the tensors in the reference writer's order (alignment descending, then name), the bytes agree.
    save_file(REFERENCE_TENSORS, tmp_path / "ours.safetensors", metadata={"source": "safetensors 0.8.0"})
    assert (tmp_path / "ours.safetensors").read_bytes() == REFERENCE_FILE


def test_interoperates_with_the_safetensors_package(tmp_path):
    tensors = {k: v for k, v in _all_dtypes().items() if k != "big-endian"}
    if HAVE_SAFETENSORS:
        import safetensors.numpy as reference

        save_file(tensors, tmp_path / "ours.safetensors", metadata={"by": "convkit"})
        theirs = reference.load_file(str(tmp_path / "ours.safetensors"))
        reference.save_file(tensors, str(tmp_path / "theirs.safetensors"), metadata={"by": "safetensors"})
        ours = load_file(tmp_path / "theirs.safetensors")
        assert load_metadata(tmp_path / "theirs.safetensors") == {"by": "safetensors"}
    else:   # the stored reference file stands in for the package
        (tmp_path / "ref.safetensors").write_bytes(REFERENCE_FILE)
        tensors = REFERENCE_TENSORS
        theirs = ours = load_file(tmp_path / "ref.safetensors")
    for result in (theirs, ours):
        assert set(result) == set(tensors)
        for name, array in tensors.items():
            assert result[name].dtype == array.dtype
            np.testing.assert_array_equal(result[name], array)


def test_save_replaces_atomically_and_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    save_file({"a": np.zeros(2)}, path)
    before = path.read_bytes()

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_file({"a": np.ones(1000)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.safetensors"]    # no temporary file left


@pytest.mark.parametrize("tensors, metadata, error, words", [
    ({1: np.zeros(1)}, None, TypeError, "names must be strings"),
    ({"__metadata__": np.zeros(1)}, None, ValueError, "reserved"),
    ({"c": np.zeros(2, np.complex64)}, None, TypeError, "dtype complex64"),
    ({"o": np.array([None])}, None, TypeError, "dtype object"),
    ({"a": np.zeros(1)}, {"k": 1}, TypeError, "metadata must be a dict of str -> str"),
    ([np.zeros(1)], None, TypeError, "tensors must be a dict"),
])
def test_save_rejects_bad_input(tmp_path, tensors, metadata, error, words):
    with pytest.raises(error, match=words):
        save_file(tensors, tmp_path / "x.safetensors", metadata=metadata)
    assert not (tmp_path / "x.safetensors").exists()


def _file(header: dict | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


GOOD = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize("content, words", [
    (b"\x01\x02", "fewer than the 8-byte header length"),
    (_file(GOOD, bytes(8), length=10_000), "header length field says 10000 bytes"),
    (_file(b"{not json", b""), "not valid JSON"),
    (_file(b"[1, 2]", b""), "header is a JSON list"),
    (_file({"a": {"dtype": "F32", "shape": [2]}}, bytes(8)), "must be an object with dtype, shape"),
    (_file({"a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, bytes(4)), "dtype 'BF16'"),
    (_file({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8)), "shape \\[-2\\]"),
    (_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(8)), "data_offsets"),
    (_file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)), "needs 12 bytes"),
    (_file(GOOD, bytes(4)), "cover 8 bytes of the data buffer, the file holds 4"),
    (_file(GOOD, bytes(12)), "cover 8 bytes of the data buffer, the file holds 12"),
    (_file({"a": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}}, bytes(4)), "leaves a gap"),
    (_file({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
            "b": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}}, bytes(4)), "overlaps"),
    (_file({"__metadata__": {"k": 3}}, b""), "__metadata__ must map strings to strings"),
    (_file({"__metadata__": None}, b""), "__metadata__ must map strings to strings"),
    # hostile headers: sizes, types and nesting that must not reach an allocation or a traceback
    (_file(GOOD, bytes(8), length=100_000_001), "says 100000001 bytes, more than the 100000000 a safetensors"),
    (_file(GOOD, bytes(8), length=2**64 - 1), f"says {2**64 - 1} bytes, more than the 100000000"),
    (_file({"a": {"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]}}, bytes(8)), r"dtype \['F32'\]"),
    (_file({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, bytes(4)), "shape \\[True\\]"),
    (_file({"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, bytes(8)), "shape \\[2.0\\]"),
    (_file({"a": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}}, bytes(8)), "shape 2; expected a list"),
    (_file({"a": {"dtype": "U8", "shape": [1] * 65, "data_offsets": [0, 1]}}, bytes(1)), "65 dimensions"),
    (_file({"a": {"dtype": "F64", "shape": [2**40] * 4, "data_offsets": [0, 8]}}, bytes(8)),
     f"needs {8 * 2**160} bytes"),
    (_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 16]}}, bytes(8)), "data_offsets \\[0, 8, 16\\]"),
    (_file({"a": {"dtype": "U8", "shape": [2**70], "data_offsets": [0, 2**70]}}, bytes(8)),
     f"cover {2**70} bytes of the data buffer, the file holds 8"),
    (_file(b'{"a": 1, "a": 2}', b""), "name 'a' appears twice"),
    (_file(b"[" * 100_000 + b"]" * 100_000, b""), "not valid JSON \\(RecursionError"),
    (_file(b'{"a": {"dtype": "U8", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 1]}}', bytes(1)),
     "not valid JSON"),
    (_file(b'{"a": 1}\xff', b""), "not valid JSON \\(UnicodeDecodeError"),
])
def test_corrupt_files_give_clear_errors(tmp_path, content, words):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    for load in (load_file, load_metadata):   # both validate the whole header
        with pytest.raises(ValueError, match=words) as info:
            load(path)
        assert str(path) in str(info.value)


def test_errors_name_the_tensor(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(_file({"conv.weight": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)))
    with pytest.raises(ValueError, match=f"{path} is corrupt: tensor 'conv.weight' has data_offsets"):
        load_file(path)


def test_each_tensor_is_read_straight_into_its_own_array(tmp_path):
    tensors = {"big": np.arange(250_000, dtype=np.float64), "small": np.arange(3, dtype=np.int16)}
    save_file(tensors, tmp_path / "a.safetensors")
    size = (tmp_path / "a.safetensors").stat().st_size
    tracemalloc.start()
    try:
        loaded = load_file(tmp_path / "a.safetensors")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size * 1.1   # no copy of the whole data buffer besides the arrays themselves
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_file(tmp_path / "nothing.safetensors")
