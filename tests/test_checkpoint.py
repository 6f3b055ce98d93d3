"""convkit.train.checkpoint: round trips of the training state, model files, refused files."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convkit
import convkit.functional as F
from convkit import nn, optim
from convkit import random as convkit_random
from convkit.optim.lr_scheduler import OneCycleLR, StepLR
from convkit.safetensors import load_file, load_metadata, save_file
from convkit.train import FORMAT_VERSION, load_checkpoint, save_checkpoint, save_model


def _net(seed=0, hidden=5):
    convkit.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, hidden))


def _train_steps(model, optimizer, scheduler, steps=3):
    rng = np.random.default_rng(1)
    for _ in range(steps):
        x = rng.normal(size=(4, 1, 6, 6)).astype(np.float32)
        loss = F.cross_entropy(model(x), rng.integers(0, 5, 4))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()


def _assert_same_optimizer_state(a, b):
    assert json.dumps(a["param_groups"], sort_keys=True) == json.dumps(b["param_groups"], sort_keys=True)
    assert sorted(map(int, a["state"])) == sorted(map(int, b["state"]))
    for key, entry in a["state"].items():
        other = b["state"][str(key)] if str(key) in b["state"] else b["state"][int(key)]
        assert entry.keys() == other.keys()
        for name, value in entry.items():
            if isinstance(value, np.ndarray):
                assert other[name].dtype == value.dtype
                np.testing.assert_array_equal(other[name], value)
            else:
                assert other[name] == value


@pytest.mark.parametrize("make_optimizer, make_scheduler", [
    (lambda p: optim.Adam(p, lr=0.01), lambda o: OneCycleLR(o, max_lr=0.01, total_steps=10)),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True), lambda o: StepLR(o, step_size=2)),
    (lambda p: optim.AdamW(p, lr=0.01, amsgrad=True), lambda o: StepLR(o, step_size=1, gamma=0.5)),
])
def test_round_trip_restores_model_optimizer_scheduler_and_rng(tmp_path, make_optimizer, make_scheduler):
    model = _net()
    optimizer = make_optimizer(list(model.parameters()))
    scheduler = make_scheduler(optimizer)
    _train_steps(model, optimizer, scheduler)
    history = [{"epoch": 1, "train_loss": 1.25, "train_accuracy": 0.5}]
    config = {"model": "tiny", "dataset": "synthetic", "lr": 0.01}
    convkit.manual_seed(123)
    save_checkpoint(tmp_path / "ck.safetensors", model, optimizer, scheduler, epoch=3, history=history,
                    config=config)
    expected_draws = convkit_random.generator().random(4)

    fresh = _net(seed=7)
    fresh_optimizer = make_optimizer(list(fresh.parameters()))
    fresh_scheduler = make_scheduler(fresh_optimizer)
    checkpoint = load_checkpoint(tmp_path / "ck.safetensors")
    assert (checkpoint.kind, checkpoint.epoch, checkpoint.history, checkpoint.config) == \
        ("checkpoint", 3, history, config)
    assert checkpoint.convkit_version == convkit.__version__
    checkpoint.restore(fresh, fresh_optimizer, fresh_scheduler)

    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b)
    _assert_same_optimizer_state(optimizer.state_dict(), fresh_optimizer.state_dict())
    assert fresh_scheduler.state_dict() == json.loads(json.dumps(scheduler.state_dict()))
    np.testing.assert_array_equal(convkit_random.generator().random(4), expected_draws)
    # both continue identically
    _train_steps(model, optimizer, scheduler, steps=2)
    _train_steps(fresh, fresh_optimizer, fresh_scheduler, steps=2)
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_layout_arrays_in_tensors_rest_in_metadata(tmp_path):
    model = _net()
    optimizer = optim.Adam(list(model.parameters()), lr=0.01)
    scheduler = StepLR(optimizer, step_size=1)
    _train_steps(model, optimizer, scheduler, steps=1)
    save_checkpoint(tmp_path / "ck.safetensors", model, optimizer, scheduler, epoch=1)
    tensors = load_file(tmp_path / "ck.safetensors")
    assert "model.0.weight" in tensors and "model.1.running_var" in tensors
    assert "optimizer.state.0.exp_avg" in tensors
    metadata = load_metadata(tmp_path / "ck.safetensors")
    assert metadata["format"] == "convkit.checkpoint"
    assert metadata["format_version"] == str(FORMAT_VERSION)
    state = json.loads(metadata["state"])
    assert state["optimizer"]["state"]["0"]["exp_avg"] == {"__tensor__": "optimizer.state.0.exp_avg"}
    assert state["optimizer"]["state"]["0"]["step"] == 1


def test_model_file_uses_plain_state_dict_names(tmp_path):
    model = _net()
    save_model(tmp_path / "model.safetensors", model, {"model": "tiny"})
    tensors = load_file(tmp_path / "model.safetensors")
    assert list(tensors) == list(model.state_dict())
    checkpoint = load_checkpoint(tmp_path / "model.safetensors")
    assert (checkpoint.kind, checkpoint.epoch, checkpoint.optimizer_state) == ("model", 0, None)
    fresh = _net(seed=5)
    checkpoint.restore(fresh)
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="without optimizer state"):
        checkpoint.restore(fresh, optim.SGD(list(fresh.parameters()), lr=0.1))


def test_mismatched_model_is_refused_with_names_and_shapes(tmp_path):
    save_model(tmp_path / "model.safetensors", _net(hidden=5), {"model": "tiny"})
    checkpoint = load_checkpoint(tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"model 'tiny'\) does not fit this model.*4.bias.*\(5,\).*\(7,\)"):
        checkpoint.restore(_net(hidden=7))
    other = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(ValueError, match=r"unexpected keys \['1.weight'.*0.weight: checkpoint \(2, 1, 3, 3\)"):
        checkpoint.restore(other)


def test_other_format_version_is_refused(tmp_path):
    path = tmp_path / "future.safetensors"
    save_file({"w": np.zeros(2)}, path, metadata={"format": "convkit.model", "format_version": "99",
                                                   "convkit_version": "9.0", "config": "{}"})
    with pytest.raises(ValueError, match=rf"format version 99, written by convkit 9.0.*reads version {FORMAT_VERSION}"):
        load_checkpoint(path)


def test_foreign_and_corrupt_files_are_refused(tmp_path):
    save_file({"w": np.zeros(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="not a convkit checkpoint or model"):
        load_checkpoint(tmp_path / "plain.safetensors")
    save_file({"w": np.zeros(2)}, tmp_path / "nostate.safetensors",
              metadata={"format": "convkit.checkpoint", "format_version": str(FORMAT_VERSION), "config": "{}"})
    with pytest.raises(ValueError, match="'state' is missing or not JSON"):
        load_checkpoint(tmp_path / "nostate.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(ValueError, match="not a safetensors file"):
        load_checkpoint(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.safetensors")


# ------------------------------------------------------------------ crafted JSON fields (hypothesis)

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
# Where a crafted value goes: a path into the checkpoint's "state" JSON.
_FIELDS = [
    ("epoch",), ("history",), ("history", 0), ("history", 0, "epoch"), ("history", 0, "train_loss"),
    ("optimizer",), ("optimizer", "state"), ("optimizer", "state", "0"), ("optimizer", "state", "0", "step"),
    ("optimizer", "state", "0", "exp_avg"), ("optimizer", "param_groups"), ("optimizer", "param_groups", 0),
    ("optimizer", "param_groups", 0, "lr"), ("optimizer", "param_groups", 0, "betas"),
    ("optimizer", "param_groups", 0, "params"), ("scheduler",), ("scheduler", "last_epoch"),
    ("scheduler", "total_steps"), ("scheduler", "_schedule_phases"), ("scheduler", "base_lrs"),
    ("rng",), ("rng", "state"), ("rng", "state", "state"), ("rng", "bit_generator"),
]


def _training_objects():
    model = _net()
    optimizer = optim.Adam(list(model.parameters()), lr=0.01)
    return model, optimizer, OneCycleLR(optimizer, max_lr=0.01, total_steps=10)


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    """The tensors and metadata of a valid checkpoint after a few steps of training."""
    path = tmp_path_factory.mktemp("ck") / "good.safetensors"
    model, optimizer, scheduler = _training_objects()
    _train_steps(model, optimizer, scheduler)
    save_checkpoint(path, model, optimizer, scheduler, epoch=1,
                    history=[{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5}], config={"model": "tiny"})
    return load_file(path), load_metadata(path)


def _crafted(good_checkpoint, tmp_path, field, value):
    """A copy of the good checkpoint whose state has ``value`` at ``field`` (a path of keys)."""
    tensors, metadata = good_checkpoint
    state = json.loads(metadata["state"])
    parent = state
    for key in field[:-1]:
        parent = parent[key]
    parent[field[-1]] = value
    path = tmp_path / "crafted.safetensors"
    save_file(tensors, path, metadata={**metadata, "state": json.dumps(state)})
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(_FIELDS), value=_JSON)
def test_crafted_state_fields_give_a_clean_error_naming_file_and_field(good_checkpoint, tmp_path, field, value):
    """Any JSON value in any field: the checkpoint loads and restores, or ValueError names the file and field."""
    path = _crafted(good_checkpoint, tmp_path, field, value)
    model, optimizer, scheduler = _training_objects()
    before = [p.data.copy() for p in model.parameters()]
    try:
        load_checkpoint(path).restore(model, optimizer, scheduler)
    except ValueError as exc:
        assert str(path) in str(exc)
        assert any(words in str(exc) for words in ("field state.", "optimizer state", "scheduler state")), str(exc)
        return
    # accepted (values of the right kind in the right place): training goes on from it, unless the
    # one-cycle schedule was put past its end (it then refuses to step, in its own words)
    assert scheduler.state_dict().keys() == json.loads(good_checkpoint[1]["state"])["scheduler"].keys()
    past_the_end = scheduler.last_epoch + 1 > scheduler.total_steps
    with np.errstate(all="ignore"):
        if past_the_end:
            with pytest.raises(ValueError, match="Tried to step"):
                _train_steps(model, optimizer, scheduler, steps=1)
        else:
            _train_steps(model, optimizer, scheduler, steps=1)
    assert [p.data.shape for p in model.parameters()] == [b.shape for b in before]


@pytest.mark.parametrize("field, value, words", [
    (("epoch",), -1, "field state.epoch is -1; expected a non-negative integer"),
    (("epoch",), "2", "field state.epoch is '2'"),
    (("epoch",), True, "field state.epoch is True"),
    (("history",), {"epoch": 1}, "field state.history is"),
    (("history", 0, "epoch"), 3, "field state.history[0].epoch is 3; expected the integer 1"),
    (("history", 0, "train_loss"), "low", "field state.history[0].train_loss is 'low'; expected a number"),
    (("optimizer", "param_groups", 0, "lr"), "fast", "field state.optimizer.param_groups[0].lr is 'fast'"),
    (("optimizer", "param_groups", 0, "params"), [0, 0], "field state.optimizer.param_groups"),
    (("optimizer", "state", "0", "step"), [1], "field state.optimizer.state.0 is"),
    (("scheduler", "last_epoch"), 2.5, "field state.scheduler.last_epoch is 2.5; expected an integer"),
    (("scheduler", "_schedule_phases"), [], "field state.scheduler._schedule_phases is []; expected a list of 2"),
    (("rng", "state", "state"), "x", "field state.rng is"),
    (("rng", "bit_generator"), "MT19937", "expected the state of a PCG64 generator"),
])
def test_crafted_state_fields_are_named(good_checkpoint, tmp_path, field, value, words):
    path = _crafted(good_checkpoint, tmp_path, field, value)
    model, optimizer, scheduler = _training_objects()
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError) as info:
        load_checkpoint(path).restore(model, optimizer, scheduler)
    assert str(path) in str(info.value) and words in str(info.value)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)


def test_optimizer_arrays_of_the_wrong_shape_are_refused_before_loading(good_checkpoint, tmp_path):
    tensors, metadata = good_checkpoint
    path = tmp_path / "crafted.safetensors"
    save_file({**tensors, "optimizer.state.0.exp_avg": np.zeros(3, np.float32)}, path, metadata=metadata)
    model, optimizer, scheduler = _training_objects()
    with pytest.raises(ValueError, match=r"field state.optimizer.state.0.exp_avg is 'float32 of shape \(3,\)'"):
        load_checkpoint(path).restore(model, optimizer, scheduler)
    assert optimizer.state == {}
