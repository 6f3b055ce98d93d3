"""Optimizers against torch.optim: 20-step trajectories, param groups, state dicts, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from oracle import raises_like_torch, torch

import convkit
from convkit.nn import Parameter
from convkit.optim import SGD, Adam, AdamW, Optimizer

STEPS = 20
SHAPES = [(4, 3), (4,), (2, 4), (2,)]


def initial_params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * 0.5).astype(dtype) for s in SHAPES]


def data(dtype=np.float64):
    rng = np.random.default_rng(1)
    return rng.standard_normal((6, 3)).astype(dtype), rng.standard_normal((6, 2)).astype(dtype)


def loss_fn(params, x, y):
    """A two-layer net with a square nonlinearity and an MSE loss: works on convkit and torch tensors."""
    w1, b1, w2, b2 = params
    h = x @ w1.T + b1
    out = (h * h) @ w2.T + b2
    return ((out - y) ** 2).mean()


class Pair:
    """The same parameters, loss and optimizer in convkit and in torch."""

    def __init__(self, ck_cls, th_cls, kwargs, *, groups=None, dtype=np.float64, values=None):
        values = initial_params(dtype) if values is None else values
        self.ck = [Parameter(v.copy()) for v in values]
        self.th = [torch.tensor(v.copy(), requires_grad=True) for v in values]
        x, y = data(dtype)
        self.ck_data = (convkit.tensor(x), convkit.tensor(y))
        self.th_data = (torch.tensor(x), torch.tensor(y))
        th_kwargs = dict(kwargs, foreach=False)
        if groups is None:
            self.ck_opt = ck_cls(self.ck, **kwargs)
            self.th_opt = th_cls(self.th, **th_kwargs)
        else:
            self.ck_opt = ck_cls(_groups(self.ck, groups), **kwargs)
            self.th_opt = th_cls(_groups(self.th, groups), **th_kwargs)

    def step(self):
        self.ck_opt.zero_grad()
        loss_fn(self.ck, *self.ck_data).backward()
        self.ck_opt.step()
        self.th_opt.zero_grad()
        loss_fn(self.th, *self.th_data).backward()
        self.th_opt.step()

    def max_error(self):
        return max(float(np.max(np.abs(c.data - t.detach().numpy()))) for c, t in zip(self.ck, self.th))

    def assert_close(self, atol=1e-10, rtol=1e-8):
        for i, (c, t) in enumerate(zip(self.ck, self.th)):
            assert np.all(np.isfinite(c.data)), "the trajectory diverged: pick a smaller lr"
            assert c.dtype == t.detach().numpy().dtype
            np.testing.assert_allclose(c.data, t.detach().numpy(), atol=atol, rtol=rtol, err_msg=f"param {i}")


def _groups(params, groups):
    return [dict(g, params=[params[i] for i in g["params"]]) for g in groups]


CASES = [
    (SGD, torch.optim.SGD, {"lr": 0.1}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    (SGD, torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.05}),
    (SGD, torch.optim.SGD, {"lr": 0.01, "maximize": True}),
    (SGD, torch.optim.SGD, {"lr": 0.002, "momentum": 0.7, "weight_decay": 0.1, "nesterov": True,
                            "maximize": True}),
    (SGD, torch.optim.SGD, {}),
    (Adam, torch.optim.Adam, {"lr": 0.02}),
    (Adam, torch.optim.Adam, {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6}),
    (Adam, torch.optim.Adam, {"lr": 0.02, "betas": (0.3, 0.9)}),  # 1 - beta1 >= 0.5: lerp's other branch
    (Adam, torch.optim.Adam, {"lr": 0.02, "weight_decay": 0.1}),
    (Adam, torch.optim.Adam, {"lr": 0.02, "amsgrad": True}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "maximize": True, "weight_decay": 0.05}),
    (Adam, torch.optim.Adam, {"lr": 0.02, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    (Adam, torch.optim.Adam, {}),
    (AdamW, torch.optim.AdamW, {"lr": 0.02}),
    (AdamW, torch.optim.AdamW, {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True}),
    (AdamW, torch.optim.AdamW, {"lr": 0.01, "betas": (0.5, 0.9), "maximize": True}),
]


@pytest.mark.parametrize("ck_cls,th_cls,kwargs", CASES, ids=lambda v: str(v) if isinstance(v, dict) else None)
def test_trajectory_matches_torch(ck_cls, th_cls, kwargs):
    pair = Pair(ck_cls, th_cls, kwargs)
    for _ in range(STEPS):
        pair.step()
        pair.assert_close()


@pytest.mark.parametrize("ck_cls,th_cls,kwargs", [
    (SGD, torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
    (Adam, torch.optim.Adam, {"lr": 0.01, "amsgrad": True}),
    (AdamW, torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.2}),
])
def test_param_groups_with_own_options(ck_cls, th_cls, kwargs):
    groups = [{"params": [0, 1], "lr": 0.05}, {"params": [2, 3], "weight_decay": 0.1}]
    pair = Pair(ck_cls, th_cls, kwargs, groups=groups)
    assert pair.ck_opt.param_groups[0]["lr"] == 0.05
    assert pair.ck_opt.param_groups[1]["lr"] == kwargs["lr"]
    for _ in range(STEPS):
        pair.step()
        pair.assert_close()


def test_float32_trajectories_keep_dtype():
    for ck_cls, th_cls, kwargs in [(SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
                                   (Adam, torch.optim.Adam, {"lr": 0.02, "amsgrad": True, "weight_decay": 0.1}),
                                   (AdamW, torch.optim.AdamW, {"lr": 0.02})]:
        pair = Pair(ck_cls, th_cls, kwargs, dtype=np.float32)
        for _ in range(STEPS):
            pair.step()
        pair.assert_close(atol=2e-6, rtol=1e-5)
        for p in pair.ck:
            assert p.dtype == np.float32
            assert all(a.dtype == np.float32 for a in pair.ck_opt.state[p].values() if isinstance(a, np.ndarray))


def test_plain_sgd_keeps_no_state_like_torch():
    pair = Pair(SGD, torch.optim.SGD, {"lr": 0.1})
    pair.step()
    assert pair.ck_opt.state == {} and pair.ck_opt.state_dict()["state"] == pair.th_opt.state_dict()["state"] == {}


def test_params_without_grad_are_skipped():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    opt = Adam([a, b], lr=0.1)
    a.grad = np.array([1.0, -1.0, 0.5])
    opt.step()
    np.testing.assert_array_equal(b.data, np.ones(2))
    assert b not in opt.state and opt.state[a]["step"] == 1


def test_update_is_in_place_and_grad_untouched():
    p = Parameter(np.arange(3.0))
    data_before = p.data
    grad = np.array([1.0, 2.0, 3.0])
    p.grad = grad
    SGD([p], lr=0.1, weight_decay=0.5, maximize=True).step()
    assert p.data is data_before
    np.testing.assert_array_equal(grad, [1.0, 2.0, 3.0])


def test_grad_of_another_dtype_is_cast_to_the_parameter_dtype():
    p = Parameter(np.ones(2, dtype=np.float32))
    p.grad = np.array([1.0, 2.0])  # float64
    Adam([p], lr=0.1).step()
    assert p.dtype == np.float32 and p.grad.dtype == np.float64


def test_zero_grad():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = SGD([a, b], lr=0.1)
    (a * b).sum().backward()
    grad = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is grad and not np.any(a.grad) and not np.any(b.grad)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_closure_is_called_and_its_loss_returned():
    p = Parameter(np.array([2.0]))
    opt = SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.data) == 4.0
    np.testing.assert_allclose(p.data, [1.0])


def test_named_parameters_are_accepted():
    params = [("w", Parameter(np.ones(2))), ("b", Parameter(np.zeros(1)))]
    opt = Adam(params, lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]


def test_add_param_group():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert opt.param_groups[1]["params"] == [b]
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="param_group"):
        opt.add_param_group([b])


def _plain_types_only(obj):
    if isinstance(obj, dict):
        return all(isinstance(k, (int, str)) and _plain_types_only(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_plain_types_only(v) for v in obj)
    return isinstance(obj, (np.ndarray, int, float, str, bool, type(None)))


def json_round_trip(state_dict):
    """What a checkpoint writer does: arrays to a name->array table, the rest to JSON text, and back."""
    arrays = {}

    def split(obj):
        if isinstance(obj, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = obj
            return {"__array__": key}
        if isinstance(obj, dict):
            return {k: split(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [split(v) for v in obj]
        return obj

    def join(obj):
        if isinstance(obj, dict):
            if "__array__" in obj:
                return arrays[obj["__array__"]]
            return {k: join(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [join(v) for v in obj]
        return obj

    return join(json.loads(json.dumps(split(state_dict))))


@pytest.mark.parametrize("ck_cls,th_cls,kwargs", [
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    (Adam, torch.optim.Adam, {"lr": 0.02, "amsgrad": True, "betas": (0.8, 0.95)}),
    (AdamW, torch.optim.AdamW, {"lr": 0.02, "weight_decay": 0.1}),
])
def test_state_dict_round_trip_mid_trajectory(ck_cls, th_cls, kwargs):
    groups = [{"params": [0, 1], "lr": 0.03}, {"params": [2, 3]}]
    pair = Pair(ck_cls, th_cls, kwargs, groups=groups)
    for _ in range(STEPS // 2):
        pair.step()
    saved = pair.ck_opt.state_dict()
    assert _plain_types_only(saved)
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2, 3]]
    assert sorted(saved["state"]) == [0, 1, 2, 3]
    restored = Pair(ck_cls, th_cls, {**kwargs, "lr": 0.5}, groups=groups, values=[p.data for p in pair.ck])
    restored.ck_opt.load_state_dict(json_round_trip(saved))
    assert restored.ck_opt.param_groups[0]["lr"] == 0.03
    assert restored.ck_opt.param_groups[1]["lr"] == kwargs["lr"]
    for _ in range(STEPS // 2):
        pair.step()  # the saved dict holds copies: stepping on must not change it
    np.testing.assert_array_equal(restored.ck_opt.state_dict()["state"][0][_first_array_key(saved)],
                                  saved["state"][0][_first_array_key(saved)])
    for _ in range(STEPS // 2):
        restored.ck_opt.zero_grad()
        loss_fn(restored.ck, *restored.ck_data).backward()
        restored.ck_opt.step()
    for c, r in zip(pair.ck, restored.ck):
        np.testing.assert_array_equal(c.data, r.data)
    pair.assert_close()


def _first_array_key(saved):
    return next(k for k, v in saved["state"][0].items() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("ck_cls,th_cls,kwargs", [
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (Adam, torch.optim.Adam, {"lr": 0.02, "amsgrad": True}),
])
def test_torch_state_dict_loads(ck_cls, th_cls, kwargs):
    pair = Pair(ck_cls, th_cls, kwargs)
    for _ in range(5):
        pair.th_opt.zero_grad()
        loss_fn(pair.th, *pair.th_data).backward()
        pair.th_opt.step()
    for c, t in zip(pair.ck, pair.th):
        c.data[...] = t.detach().numpy()
    pair.ck_opt.load_state_dict(pair.th_opt.state_dict())
    for _ in range(5):
        pair.step()
        pair.assert_close()


def test_load_state_dict_rejects_other_layouts():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    saved = SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="param groups"):
        SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="parameters"):
        SGD([a], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        SGD([a, b], lr=0.1).load_state_dict({"state": {}})
    bad = {"state": {5: {"momentum_buffer": np.zeros(2)}}, "param_groups": saved["param_groups"]}
    with pytest.raises(ValueError, match="parameter 5"):
        SGD([a, b], lr=0.1).load_state_dict(bad)


def test_repr_lists_groups():
    text = repr(SGD([Parameter(np.ones(1))], lr=0.5))
    assert text.startswith("SGD (") and "lr: 0.5" in text


BAD_HYPERPARAMETERS = [
    (SGD, torch.optim.SGD, {"lr": -0.1}, "lr"),
    (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": -0.5}, "momentum"),
    (SGD, torch.optim.SGD, {"lr": 0.1, "weight_decay": -1.0}, "weight_decay"),
    (SGD, torch.optim.SGD, {"lr": 0.1, "nesterov": True}, "nesterov"),
    (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, "dampening"),
    (Adam, torch.optim.Adam, {"lr": -1e-3}, "lr"),
    (Adam, torch.optim.Adam, {"betas": (1.0, 0.999)}, "betas[0]"),
    (Adam, torch.optim.Adam, {"betas": (0.9, -0.1)}, "betas[1]"),
    (Adam, torch.optim.Adam, {"eps": -1e-8}, "eps"),
    (Adam, torch.optim.Adam, {"weight_decay": -0.1}, "weight_decay"),
    (AdamW, torch.optim.AdamW, {"betas": (0.9, 1.5)}, "betas[1]"),
    (AdamW, torch.optim.AdamW, {"lr": -0.5}, "lr"),
]


@pytest.mark.parametrize("ck_cls,th_cls,kwargs,word", BAD_HYPERPARAMETERS)
def test_invalid_hyperparameters_raise(ck_cls, th_cls, kwargs, word):
    msg = raises_like_torch(lambda: ck_cls([Parameter(np.ones(2))], **kwargs),
                            lambda: th_cls([torch.ones(2, requires_grad=True)], **kwargs),
                            ck_exc=ValueError)
    assert word in msg and ck_cls.__name__ in msg


def test_invalid_group_option_raises():
    with pytest.raises(ValueError, match="lr=-1"):
        SGD([{"params": [Parameter(np.ones(1))], "lr": -1}], lr=0.1)


def test_hyperparameter_of_wrong_type_raises():
    with pytest.raises(TypeError, match="lr must be a real number"):
        SGD([Parameter(np.ones(1))], lr="0.1")
    with pytest.raises(TypeError, match="betas must be a pair"):
        Adam([Parameter(np.ones(1))], betas=0.9)


def test_bad_params_raise():
    p = Parameter(np.ones(2))
    msg = raises_like_torch(lambda: SGD(p, lr=0.1), lambda: torch.optim.SGD(torch.ones(2), lr=0.1))
    assert "params" in msg
    msg = raises_like_torch(lambda: SGD([], lr=0.1), lambda: torch.optim.SGD([], lr=0.1))
    assert "empty" in msg
    msg = raises_like_torch(lambda: SGD([np.ones(2)], lr=0.1), lambda: torch.optim.SGD([np.ones(2)], lr=0.1))
    assert "ndarray" in msg
    leaf_t = torch.ones(2, requires_grad=True)
    msg = raises_like_torch(lambda: SGD([p * 2], lr=0.1), lambda: torch.optim.SGD([leaf_t * 2], lr=0.1))
    assert "non-leaf" in msg
    with pytest.raises(TypeError, match="list"):
        SGD({p}, lr=0.1)
    with pytest.raises(TypeError, match="set"):
        SGD([{"params": {p}}], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_mismatched_grad_shape_raises():
    p = Parameter(np.ones(3))
    p.grad = np.ones(2)
    with pytest.raises(ValueError, match=r"shape \(3,\).*gradient of shape \(2,\)"):
        SGD([p], lr=0.1).step()


def test_optimizer_base_is_exported():
    opt = Adam([Parameter(np.ones(1))])
    assert isinstance(opt, Optimizer)
    assert opt.defaults["betas"] == (0.9, 0.999) and opt.defaults["lr"] == 1e-3
    assert AdamW([Parameter(np.ones(1))]).defaults["weight_decay"] == 1e-2
