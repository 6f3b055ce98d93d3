"""convkit.train.checkpoint: round trips of the training state, model files, refused files."""

import json

import numpy as np
import pytest

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
