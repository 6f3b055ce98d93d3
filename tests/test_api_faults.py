"""Misuse of the API where data enter convkit: clear TypeError/ValueError naming the argument, nothing half done."""

import re

import numpy as np
import pytest

import convkit
import convkit.functional as F
from convkit import nn
from convkit.train import save_checkpoint

NOT_REAL = [np.ones(4, complex), np.array([None, 1.0] * 2), np.array(["1", "2", "3", "4"]), np.array([b"x"] * 4),
            np.array(["2020-01-01"] * 4, dtype="datetime64[D]")]


@pytest.mark.parametrize("data", NOT_REAL, ids=lambda a: str(a.dtype))
def test_tensors_hold_only_real_numbers(data):
    with pytest.raises(TypeError, match=rf"tensor: data must hold real numbers .*got dtype {re.escape(str(data.dtype))}"):
        convkit.tensor(data)
    with pytest.raises(TypeError, match=rf"relu: input must hold real numbers .*got dtype {re.escape(str(data.dtype))}"):
        F.relu(data)


def test_complex_data_is_refused_not_cast_wherever_it_enters():
    x, w = np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))
    with pytest.raises(TypeError, match=r"conv2d: input must hold real numbers .*complex128 \(convkit has no complex"):
        F.conv2d(x + 1j, w)
    with pytest.raises(TypeError, match=r"conv2d: weight must hold real numbers"):
        F.conv2d(x, w.astype(np.complex64))
    with pytest.raises(TypeError, match=r"cross_entropy: target must hold real numbers"):
        F.cross_entropy(np.ones((2, 3)), np.array(["a", "b"]))
    with pytest.raises(TypeError, match=r"tensor: dtype must hold real numbers"):
        convkit.tensor([1.0], dtype=np.complex64)
    assert convkit.tensor([True]).dtype == np.bool_ and convkit.tensor([1]).dtype == np.int64


def _net():
    convkit.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


@pytest.mark.parametrize("bad, words", [
    ({"3.bias": np.array(["a", "b", "c"])}, r"dtype mismatch: 3.bias: checkpoint <U1 vs model float32"),
    ({"3.bias": np.ones(3, complex)}, r"dtype mismatch: 3.bias: checkpoint complex128"),
    ({"3.bias": [[1.0], [2.0, 3.0]]}, r"not arrays: 3.bias: list"),
    ({"3.bias": np.ones(4)}, r"shape mismatch: 3.bias: checkpoint \(4,\) vs model \(3,\)"),
    ({"1.running_mean": np.ones(2, object)}, r"dtype mismatch: 1.running_mean: checkpoint object"),
])
def test_load_state_dict_checks_every_value_before_copying_any(bad, words):
    model = _net()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = {k: v + 1 for k, v in before.items()}  # every value new and valid ...
    state.update(bad)                                 # ... but one, checked last in the module's order
    with pytest.raises(ValueError, match=words):
        model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_load_state_dict_wants_a_mapping():
    with pytest.raises(TypeError, match="state_dict must be a mapping of names to arrays, got list"):
        _net().load_state_dict(list(_net().state_dict().items()))


@pytest.mark.parametrize("epoch", ["1", -1, 1.5, True, None])
def test_save_checkpoint_wants_a_non_negative_int_epoch(tmp_path, epoch):
    with pytest.raises(ValueError, match=rf"save_checkpoint: epoch must be a non-negative int, got {epoch!r}"):
        save_checkpoint(tmp_path / "c.safetensors", _net(), epoch=epoch)
    assert list(tmp_path.iterdir()) == []


def test_ragged_nested_lists_are_refused_naming_the_argument():
    with pytest.raises(ValueError, match="tensor: data must be a rectangular array, got nested lists of unequal"):
        convkit.tensor([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match="relu: input must be a rectangular array"):
        F.relu([[1.0, 2.0], [3.0]])
