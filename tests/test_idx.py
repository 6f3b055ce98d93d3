"""IDX files: exact bytes, round trips raw and gzip, and every kind of corrupt file."""

import gzip

import numpy as np
import pytest

from convkit.data import read_idx, write_idx
from convkit._io import atomic_file

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def header(code, *sizes):
    return bytes([0, 0, code, len(sizes)]) + b"".join(s.to_bytes(4, "big") for s in sizes)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5), (1, 2, 1, 3)])
def test_round_trip(tmp_path, dtype, name, shape):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info:
        array = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        array = (rng.standard_normal(shape) * 1e3).astype(dtype)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_exact_bytes_of_mnist_like_files(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "images", images)
    write_idx(tmp_path / "labels", np.array([7, 1], dtype=np.uint8))
    raw = (tmp_path / "images").read_bytes()
    assert int.from_bytes(raw[:4], "big") == 2051
    assert raw == header(0x08, 2, 3, 4) + images.tobytes()
    raw = (tmp_path / "labels").read_bytes()
    assert int.from_bytes(raw[:4], "big") == 2049
    assert raw == header(0x08, 2) + bytes([7, 1])


def test_multibyte_data_is_big_endian(tmp_path):
    write_idx(tmp_path / "a", np.array([1, -2], dtype=np.int16))
    assert (tmp_path / "a").read_bytes() == header(0x0B, 2) + b"\x00\x01\xff\xfe"
    write_idx(tmp_path / "b", np.array([1.0], dtype=np.float32))
    assert (tmp_path / "b").read_bytes() == header(0x0D, 1) + b"\x3f\x80\x00\x00"
    (tmp_path / "c").write_bytes(header(0x0C, 2) + b"\x00\x00\x01\x00\xff\xff\xff\xff")
    np.testing.assert_array_equal(read_idx(tmp_path / "c"), [256, -1])
    (tmp_path / "d").write_bytes(header(0x0E, 1) + b"\xc0\x00\x00\x00\x00\x00\x00\x00")
    np.testing.assert_array_equal(read_idx(tmp_path / "d"), [-2.0])


def test_gzip_written_by_name_read_by_content(tmp_path):
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    write_idx(tmp_path / "z.gz", array)
    write_idx(tmp_path / "r", array)
    assert (tmp_path / "z.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress((tmp_path / "z.gz").read_bytes()) == (tmp_path / "r").read_bytes()
    # gzip content under a plain name, raw content under a .gz name
    (tmp_path / "gz-without-suffix").write_bytes((tmp_path / "z.gz").read_bytes())
    (tmp_path / "raw.gz").write_bytes((tmp_path / "r").read_bytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "gz-without-suffix"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw.gz"), array)


def test_write_is_deterministic_and_leaves_no_temporary_file(tmp_path):
    array = np.ones((4, 4), dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    first = (tmp_path / "a.gz").read_bytes()
    write_idx(tmp_path / "a.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == first
    assert [p.name for p in tmp_path.iterdir()] == ["a.gz"]


def test_atomic_file_keeps_old_content_when_writing_fails(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(target) as f:
        f.write(b"new but incomplete")
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
    with atomic_file(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("content, match", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", r"bad magic bytes 01 00.*starts with 00 00"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", r"unknown dtype code 0x07.*0x08"),
    (b"\x00\x00\x08\x00", r"0 dimensions"),
    (b"\x00\x00", r"too short"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x01", r"header for 2 dimensions needs 12 bytes.* has 8"),
    (header(0x08, 2, 3) + bytes(5), r"truncated: shape \(2, 3\) of uint8 needs 18 bytes.* has 17"),
    (header(0x0B, 2) + bytes(3), r"truncated: shape \(2,\) of int16 needs 12 bytes.* has 11"),
    (header(0x08, 2, 3) + bytes(7), r"trailing bytes: shape \(2, 3\) of uint8 needs 18 bytes.* has 19"),
])
def test_corrupt_files_are_rejected_with_file_and_counts(tmp_path, gz, content, match):
    path = tmp_path / "bad.idx"
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(ValueError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert ("decompressed" in str(info.value)) == gz


def test_broken_gzip_stream(tmp_path):
    data = gzip.compress(header(0x08, 100) + bytes(100))
    (tmp_path / "cut.gz").write_bytes(data[:-10])
    with pytest.raises(ValueError, match=r"cut.gz is not a valid gzip file"):
        read_idx(tmp_path / "cut.gz")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


@pytest.mark.parametrize("array, error, match", [
    (np.zeros(3, dtype=np.int64), TypeError, r"dtype int64; IDX supports uint8, int8, int16, int32"),
    (np.zeros(3, dtype=bool), TypeError, r"dtype bool"),
    (np.zeros(3, dtype=np.float16), TypeError, r"dtype float16"),
    (np.float32(1.0), ValueError, r"0 dimensions; IDX supports 1 to 255"),
])
def test_write_rejects_what_idx_cannot_hold(tmp_path, array, error, match):
    with pytest.raises(error, match=match):
        write_idx(tmp_path / "x", array)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("content, match", [
    # sizes whose product overflows 64-bit integers are compared exactly, as Python ints
    (header(0x0E, *[2**32 - 1] * 8) + bytes(8), rf"truncated.*of float64 needs {36 + 8 * (2**32 - 1) ** 8} bytes"),
    (header(0x08, 2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(3), r"\(4294967295, 4294967295, 4294967295\) of uint8"),
    (header(0x08, *[2] * 64), rf"shape \(2, 2, .*\) of uint8 needs {2**64 + 260} bytes \(260 header"),
    (header(0x08, *[1] * 64)[:200], r"header for 64 dimensions needs 260 bytes.* has 200"),
    (header(0x08, *[1] * 65) + b"x", r"declares 65 dimensions in its (decompressed )?content; expected 1 to 64"),
    (header(0x08, 0, 7) + b"x", r"trailing bytes: shape \(0, 7\) of uint8 needs 12 bytes"),
])
def test_absurd_headers_are_refused_without_reading_their_claims(tmp_path, gz, content, match):
    path = tmp_path / "bad.idx"
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(ValueError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("shape", [(0,), (3, 0, 2), (1,) * 64])
def test_empty_and_many_dimensional_arrays_round_trip(tmp_path, shape):
    write_idx(tmp_path / "a.gz", np.zeros(shape, np.int16))
    back = read_idx(tmp_path / "a.gz")
    assert back.shape == shape and back.dtype == np.int16


def test_data_after_the_gzip_stream_is_refused(tmp_path):
    good = gzip.compress(header(0x08, 3) + b"abc")
    (tmp_path / "garbage.gz").write_bytes(good + b"garbage")
    with pytest.raises(ValueError, match=r"garbage.gz is not a valid gzip file"):
        read_idx(tmp_path / "garbage.gz")
    (tmp_path / "second-member.gz").write_bytes(good + gzip.compress(b"x"))
    with pytest.raises(ValueError, match=r"trailing bytes: shape \(3,\) of uint8 needs 11 bytes.* has 12 or more"):
        read_idx(tmp_path / "second-member.gz")
