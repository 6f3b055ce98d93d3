"""Untrusted input cannot make convkit allocate more than it legitimately describes (issue 15, item 3).

* model names and spec strings are sized before any weight is allocated;
* IDX files (raw or gzip) are read no further than their header implies;
* safetensors files are validated whole before a tensor is allocated.

The property-based tests (hypothesis) feed arbitrary and mutated input:
each either loads correctly or raises ValueError / TypeError, and what it
returns is never larger than the file.
"""

import gzip
import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import convkit.nn as nn
from convkit import models
from convkit.data import load, read_idx, write_idx
from convkit.data.idx import read_idx_header
from convkit.models import budget
from convkit.models.spec import spec_parameters
from convkit.safetensors import load_file, load_metadata, save_file

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def n_params(net):
    return sum(p.numel() for p in net.parameters())


# ----------------------------------------------------------------- model sizes

@pytest.fixture
def no_init(monkeypatch):
    """Weights left as np.empty (untouched pages): a full VGG is then built in milliseconds, not seconds."""
    for cls in (nn.Linear, nn.Conv2d):
        monkeypatch.setattr(cls, "reset_parameters", lambda self: None)
    for name in ("kaiming_normal_", "normal_"):   # VGG's own initialisation of the large weights
        monkeypatch.setattr(nn.init, name, lambda *args, **kwargs: None)


@pytest.mark.parametrize("name", [line.split(": ", 1)[0] for line in models.available()])
@pytest.mark.parametrize("in_channels, num_classes", [(1, 10), (3, 1000), (2, 1)])
def test_parameter_count_of_every_builtin_equals_the_built_model(no_init, name, in_channels, num_classes):
    side = 32 if name.startswith("vgg") else 28
    size = (in_channels, side, side)
    assert models.parameter_count(name, size, num_classes) == n_params(models.build(name, size, num_classes))


def test_the_default_budget_admits_every_builtin_with_margin():
    names = [line.split(": ", 1)[0] for line in models.available()]
    largest = max(models.parameter_count(name, (3, 28, 28) if name in ("lenet5", "convnet") else (3, 224, 224),
                                         1000) for name in names)
    assert largest == 143_678_248   # VGG-19 with batch norm
    assert largest * 1.3 < budget.DEFAULT_MAX_PARAMETERS


def test_a_builtin_over_the_budget_is_refused_before_it_is_built(monkeypatch):
    monkeypatch.setattr(models.vgg, "VGG", lambda *args, **kwargs: pytest.fail("VGG was built"))
    with pytest.raises(ValueError) as info:
        models.build("vgg11", (3, 32, 32), num_classes=100_000)
    assert str(info.value).startswith(f"build: model 'vgg11' has "
                                      f"{models.parameter_count('vgg11', (3, 32, 32), 100_000):,} parameters, "
                                      f"more than the budget of max_parameters=200,000,000")
    assert "--max-parameters N" in str(info.value)
    with pytest.raises(ValueError, match="build: model 'lenet5' has 61,706 parameters, more than the budget of "
                                         "max_parameters=61,705"):
        models.build("lenet5", max_parameters=61_705)


def test_build_passes_its_budget_to_a_spec():
    assert n_params(models.build("fc10", max_parameters=7850)) == 7850
    with pytest.raises(ValueError, match="spec 'fc10' has 7,850 parameters, more than the budget of "
                                         "max_parameters=7,849"):
        models.build("fc10", max_parameters=7849)
    with pytest.raises(ValueError, match="10,079,600,010 parameters"):
        models.build("fc100000 fc100000 fc10")


def test_parameter_count_rejects_what_build_rejects():
    with pytest.raises(ValueError, match="parameter_count: unknown model 'lenet6'"):
        models.parameter_count("lenet6")
    with pytest.raises(ValueError, match="parameter_count: vgg16 needs inputs of at least 32x32"):
        models.parameter_count("vgg16")
    with pytest.raises(TypeError, match="parameter_count: model must be a str"):
        models.parameter_count(None)


SPEC_ALPHABET = st.sampled_from(["conv", "C", "pool", "P", "A", "avgpool", "maxpool", "fc", "bn", "gap", "relu",
                                 "lrelu", "tanh", "sigmoid", "dropout", "flatten", "id", "-", "s", "p", "d",
                                 "same", "valid", ".", "0", "1", "2", "3", "5", "9", "99999", " ", "\t", "x", "é"])


@FAST
@given(st.one_of(st.text(max_size=40), st.lists(SPEC_ALPHABET, max_size=14).map("".join)),
       st.tuples(st.integers(1, 4), st.integers(1, 12), st.integers(1, 12)))
def test_any_string_is_sized_or_refused_with_a_value_error(spec, size):
    try:
        count = spec_parameters(spec, size)
    except ValueError as err:
        assert str(err).startswith(("spec: ", "spec_parameters: spec is empty")), str(err)
        return
    assert count >= 0
    if count <= 100_000:   # small enough to build: the count is the real one
        assert n_params(models.from_spec(spec, size)) == count
    else:
        with pytest.raises(ValueError, match="more than the budget"):
            models.from_spec(spec, size, max_parameters=100_000)


# ----------------------------------------------------------------- IDX files

def idx_header(code, *sizes):
    return bytes([0, 0, code, len(sizes)]) + b"".join(s.to_bytes(4, "big") for s in sizes)


def gzip_of_zeros(prefix: bytes, n: int) -> bytes:
    """gzip of ``prefix`` then ``n`` zero bytes, compressed chunk by chunk (about 1000:1)."""
    out = zlib.compressobj(9, zlib.DEFLATED, 31)   # wbits 31: gzip framing
    parts = [out.compress(prefix)]
    zeros = bytes(1 << 20)
    parts += [out.compress(zeros[:min(len(zeros), n - i)]) for i in range(0, n, len(zeros))]
    return b"".join(parts + [out.flush()])


def test_a_gzip_bomb_is_refused_after_reading_what_its_header_implies(tmp_path):
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip_of_zeros(idx_header(0x08, 10, 28, 28), 32 << 20))   # 32 KB that inflate to 32 MB
    assert path.stat().st_size < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value) == (f"read_idx: {path} is followed by trailing bytes: shape (10, 28, 28) of uint8 needs "
                               f"7856 bytes (16 header + data), its decompressed content has 7857 or more "
                               f"(reading stopped there)")
    assert peak < 1 << 20   # not the 32 MB the stream inflates to


def test_a_header_claiming_more_than_the_gzip_file_can_inflate_to_is_refused_before_reading(tmp_path):
    path = tmp_path / "claims-a-terabyte.gz"
    path.write_bytes(gzip_of_zeros(idx_header(0x08, 10**6, 10**3, 10**3), 4 << 20))
    with pytest.raises(ValueError, match=rf"{path} is truncated or corrupt: shape \(1000000, 1000, 1000\) of uint8 "
                                         rf"needs 1000000000016 bytes .* more than its {path.stat().st_size} "
                                         rf"compressed bytes can inflate to \(deflate expands at most 1032:1\)"):
        read_idx(path)


def test_a_short_stream_allocates_only_what_it_holds(tmp_path):
    # The header claims 400 MB, which 400 kB of gzip could hold; the stream holds 400 kB of random bytes.
    noise = np.random.default_rng(0).integers(0, 256, 400_000, dtype=np.uint8).tobytes()
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(idx_header(0x0D, 100, 1000, 1000) + noise))
    assert 400 * 10**6 < 1032 * path.stat().st_size
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"short.gz is truncated: shape \(100, 1000, 1000\) of float32 needs "
                                             r"400000016 bytes \(16 header \+ data\), its decompressed content "
                                             r"has 400016$"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_a_header_is_read_and_checked_without_the_data(tmp_path):
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip_of_zeros(idx_header(0x0C, 10, 28, 28), 32 << 20))
    assert read_idx_header(path) == (np.dtype(np.int32), (10, 28, 28))   # the excess is never reached
    with pytest.raises(ValueError, match="trailing bytes"):
        read_idx(path)
    (tmp_path / "short").write_bytes(idx_header(0x08, 10, 28, 28) + bytes(100))
    with pytest.raises(ValueError, match=r"short is truncated: shape \(10, 28, 28\) of uint8 needs 7856 bytes"):
        read_idx_header(tmp_path / "short")


def test_a_dataset_whose_files_disagree_is_refused_before_their_data_are_read(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip_of_zeros(idx_header(0x08, 50_000, 28, 28),
                                                                        50_000 * 28 * 28))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(10, np.uint8))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="has 50000 images but .* has 10 labels"):
            load("mnist", "train", data_dir=tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20   # the 39 MB of images were never read


def _idx_outcome(path, content_size):
    """read_idx(path): an array no larger than the content, or a ValueError naming the file."""
    try:
        array = read_idx(path)
    except ValueError as err:
        assert str(path) in str(err)
        return None
    assert array.nbytes <= content_size and array.dtype.isnative and array.flags.writeable
    return array


@FAST
@given(st.binary(max_size=64), st.booleans())
def test_arbitrary_bytes_are_read_or_refused_with_a_value_error(tmp_path, content, gz):
    path = tmp_path / "any.idx"
    path.write_bytes(gzip.compress(content) if gz else content)
    _idx_outcome(path, len(content))


GOOD_IDX = idx_header(0x0B, 2, 3) + np.arange(6, dtype=">i2").tobytes()


@FAST
@given(st.lists(st.tuples(st.integers(0, len(GOOD_IDX) - 1), st.integers(0, 255)), max_size=4),
       st.integers(0, len(GOOD_IDX)), st.binary(max_size=8), st.booleans())
def test_mutated_idx_files_are_read_or_refused_with_a_value_error(tmp_path, flips, keep, tail, gz):
    content = bytearray(GOOD_IDX)
    for at, value in flips:
        content[at] = value
    content = bytes(content[:keep]) + tail
    path = tmp_path / "mutated.idx"
    path.write_bytes(gzip.compress(content) if gz else content)
    array = _idx_outcome(path, len(content))
    if content == GOOD_IDX:
        np.testing.assert_array_equal(array, np.arange(6).reshape(2, 3))


@FAST
@given(st.binary(min_size=2, max_size=200).map(lambda b: b"\x1f\x8b" + b))
def test_arbitrary_gzip_lookalikes_are_refused_with_a_value_error(tmp_path, content):
    path = tmp_path / "lookalike.gz"
    path.write_bytes(content)
    _idx_outcome(path, 1032 * len(content))


# ----------------------------------------------------------------- safetensors files

def _safetensors_outcome(path):
    """load_file(path): arrays no larger than the file in all, or a ValueError naming the file."""
    try:
        tensors = load_file(path)
        metadata = load_metadata(path)
    except ValueError as err:
        assert str(path) in str(err)
        return None
    assert sum(a.nbytes for a in tensors.values()) <= path.stat().st_size
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    return tensors


@FAST
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_loaded_or_refused_with_a_value_error(tmp_path, content):
    path = tmp_path / "any.safetensors"
    path.write_bytes(content)
    _safetensors_outcome(path)


def _valid_file(tmp_path) -> bytes:
    save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, -1], np.int8),
               "e": np.zeros((0, 2), np.float64)}, tmp_path / "valid.safetensors", metadata={"k": "v"})
    return (tmp_path / "valid.safetensors").read_bytes()


@FAST
@given(st.data())
def test_mutated_safetensors_files_are_loaded_or_refused_with_a_value_error(tmp_path, data):
    content = bytearray(_valid_file(tmp_path))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(content) - 1))
        content[at] = data.draw(st.integers(0, 255))
    content = bytes(content[:data.draw(st.integers(0, len(content)))]) + data.draw(st.binary(max_size=16))
    path = tmp_path / "mutated.safetensors"
    path.write_bytes(content)
    _safetensors_outcome(path)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-5, 2**64) | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=3),
                           max_leaves=8)
ENTRIES = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "U8", "F64", "BOOL", "BF16", "f32", ""]) | JSON_VALUES,
    "shape": st.lists(st.integers(-1, 5) | st.just(2**63), max_size=3) | JSON_VALUES,
    "data_offsets": st.lists(st.integers(-1, 48), min_size=2, max_size=2) | JSON_VALUES,
})


@FAST
@given(st.dictionaries(st.text(max_size=4), ENTRIES | JSON_VALUES, max_size=3),
       st.none() | st.dictionaries(st.text(max_size=3), st.text(max_size=3) | st.integers(), max_size=2),
       st.integers(0, 48))
def test_crafted_headers_are_loaded_or_refused_with_a_value_error(tmp_path, header, metadata, data_size):
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(range(data_size)))
    tensors = _safetensors_outcome(path)
    if tensors is not None:
        for name, array in tensors.items():
            assert list(array.shape) == header[name]["shape"]


# ----------------------------------------------------------------- the command line

@pytest.mark.parametrize("argv", [
    ["symmetry", "fc100000 fc100000 fc10"], ["summary", "fc100000 fc100000 fc10"],
    ["symmetry", "vgg11", "--input", "3x32x32", "--max-parameters", "1000000"],
    ["summary", "lenet5", "--max-parameters", "61705"],
])
def test_a_model_over_the_budget_is_a_one_line_usage_error(capsys, argv):
    from convkit.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "parameters, more than the budget of max_parameters=" in err and "--max-parameters N" in err


def test_the_budget_can_be_raised_on_the_command_line(capsys):
    from convkit.cli import main

    assert main(["summary", "fc100 fc10", "--max-parameters", "79510", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["params"] == 79510
    assert main(["symmetry", "conv3-4 gap", "--input", "1x8x8", "--max-parameters", "40"]) == 0
    assert main(["symmetry", "conv3-4 gap", "--input", "1x8x8", "--max-parameters", "39"]) == 2


def test_a_model_file_naming_a_huge_spec_is_refused_by_evaluate(tmp_path, capsys):
    from convkit.cli import main
    from convkit.train.checkpoint import save_model

    path = tmp_path / "model.safetensors"   # small weights; the metadata names a 37 GiB network
    save_model(path, models.build("fc10"), {"model": "fc100000 fc100000 fc10", "dataset": "mnist"})
    assert main(["evaluate", str(path), "--data-dir", str(tmp_path)]) in (1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "10,079,600,010 parameters, more than the budget of max_parameters=200,000,000" in err
