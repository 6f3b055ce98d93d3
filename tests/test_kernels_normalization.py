"""The compiled normalisation kernels against PyTorch: every norm, training and inference, float64 and float32.

Shapes are chosen to reach the kernels' corners: batch 1, one channel, 1x1
and odd spatial sizes (rows shorter than, equal to and longer than the
kernels' ``LANES`` partial sums, sizes not multiples of 8 or 16), 1-D, 2-D
and 3-D inputs, non-contiguous inputs and gradients. float64 goes through
``oracle.compare`` at its tolerances; float32 is compared with torch's
float32 (errors relative to each array's scale) and with torch's float64
(the README's float32 error bounds).
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import compare, torch

import convkit
import convkit.functional as F
from convkit.ops import normalization as N

TF = torch.nn.functional


def _data(rng, shape, dtype=np.float64):
    """Input with a mean far from 0 and a non-unit scale, as activations have."""
    return (rng.normal(rng.uniform(-3, 3), rng.uniform(0.5, 3), shape)).astype(dtype)


def _params(rng, shape, dtype=np.float64):
    return rng.uniform(0.5, 1.5, shape).astype(dtype), rng.normal(0.0, 1.0, shape).astype(dtype)


def _running(rng, c, dtype=np.float64):
    return rng.normal(size=c).astype(dtype), rng.uniform(0.5, 2.0, c).astype(dtype)


def _case(kind, shape, *, groups=None, normalized=None, mode="train"):
    """``(ck, th, parameter shape, state)``: convkit's and torch's ``f(x, w, b)`` for one norm and mode.

    Batch and instance norm read their running buffers from ``state["ck"]``
    and ``state["th"]``, which the caller fills (they are updated in place).
    """
    pshape = tuple(normalized) if kind == "layer" else (shape[1],)
    state = {}

    def buffers(ck):
        return state["ck" if ck else "th"]

    if kind == "batch":
        def ck(x, w, b):
            rm, rv = buffers(True)
            return F.batch_norm(x, rm, rv, w, b, training=mode == "train", momentum=0.3, eps=1e-5)

        def th(x, w, b):
            rm, rv = buffers(False)
            return TF.batch_norm(x, rm, rv, w, b, training=mode == "train", momentum=0.3, eps=1e-5)
    elif kind == "instance":
        def ck(x, w, b):
            rm, rv = buffers(True)
            return F.instance_norm(x, rm, rv, w, b, use_input_stats=mode == "train", momentum=0.3, eps=1e-5)

        def th(x, w, b):
            rm, rv = buffers(False)
            return TF.instance_norm(x, rm, rv, w, b, use_input_stats=mode == "train", momentum=0.3, eps=1e-5)
    elif kind == "group":
        def ck(x, w, b):
            return F.group_norm(x, groups, w, b, eps=1e-5)

        def th(x, w, b):
            return TF.group_norm(x, groups, w, b, eps=1e-5)
    else:
        def ck(x, w, b):
            return F.layer_norm(x, normalized, w, b, eps=1e-5)

        def th(x, w, b):
            return TF.layer_norm(x, normalized, w, b, eps=1e-5)
    return ck, th, pshape, state


CASES = [
    # batch norm: (N, C) up to 3-D; batch 1, one channel, 1x1, rows of 3..99 elements
    ("batch", (7, 3), {}), ("batch", (1, 3, 5), {}), ("batch", (4, 1, 7, 7), {}), ("batch", (3, 5, 1, 1), {}),
    ("batch", (2, 3, 3, 5), {}), ("batch", (2, 2, 7, 7, 3), {}), ("batch", (5, 3, 37), {}),
    ("batch", (2, 3, 9, 11), {}), ("batch", (33, 2), {}),
    # instance norm
    ("instance", (1, 3, 5), {}), ("instance", (2, 1, 3, 5), {}), ("instance", (2, 3, 7, 7, 3), {}),
    ("instance", (3, 2, 37), {}), ("instance", (2, 2, 9, 11), {}),
    # group norm: G = 1, G = C, groups of one row of 1 element (1x1)
    ("group", (1, 6, 1, 1), dict(groups=3)), ("group", (2, 4, 3, 5), dict(groups=2)),
    ("group", (1, 6, 7, 7, 3), dict(groups=3)), ("group", (3, 8, 37), dict(groups=4)),
    ("group", (2, 5, 3, 5), dict(groups=1)), ("group", (2, 5, 3, 5), dict(groups=5)),
    ("group", (2, 64, 1, 1), dict(groups=2)),
    # layer norm: rows of 1..147 elements
    ("layer", (3, 37), dict(normalized=(37,))), ("layer", (1, 3, 5), dict(normalized=(3, 5))),
    ("layer", (2, 7, 7, 3), dict(normalized=(7, 7, 3))), ("layer", (4, 2), dict(normalized=(2,))),
    ("layer", (2, 3, 40), dict(normalized=(40,))), ("layer", (5, 1, 1, 64), dict(normalized=(1, 1, 64))),
    ("layer", (6,), dict(normalized=(6,))),
]
MODES = {"batch": ("train", "eval"), "instance": ("train", "eval"), "group": ("train",), "layer": ("train",)}
PARAMS = [pytest.param(kind, shape, opts, mode, id=f"{kind}-{'x'.join(map(str, shape))}-{mode}"
                       + (f"-G{opts['groups']}" if "groups" in opts else ""))
          for kind, shape, opts in CASES for mode in MODES[kind]
          if not (kind == "batch" and mode == "train" and np.prod(shape) // shape[1] == 1)]


def _setup(kind, shape, opts, mode, dtype, seed=0):
    rng = np.random.default_rng(seed)
    ck, th, pshape, state = _case(kind, shape, mode=mode, **opts)
    x = _data(rng, shape, dtype)
    w, b = _params(rng, pshape, dtype)
    if kind in ("batch", "instance"):
        rm, rv = _running(rng, shape[1], dtype)
        state["ck"] = (rm.copy(), rv.copy())
        state["th"] = (torch.tensor(rm), torch.tensor(rv))
    return ck, th, state, x, w, b


def _check_buffers(state, dtype):
    if state:
        tol = dict(atol=1e-12, rtol=1e-12) if dtype == np.float64 else dict(atol=1e-6, rtol=1e-6)
        for ours, theirs in zip(state["ck"], state["th"]):
            assert ours.dtype == dtype
            np.testing.assert_allclose(ours, theirs.numpy(), **tol)


# ----------------------------------------------------------------------------------- float64
@pytest.mark.parametrize("kind,shape,opts,mode", PARAMS)
def test_float64_matches_torch(kind, shape, opts, mode):
    ck, th, state, x, w, b = _setup(kind, shape, opts, mode, np.float64)
    compare(ck, th, [x, w, b])
    _check_buffers(state, np.float64)


# ----------------------------------------------------------------------------------- float32
def _compare32(ck_fn, th_fn, inputs, *, forward_tol=1e-5, grad_tol=1e-4, seed=0):
    """``compare`` in float32: output and every gradient within ``tol`` times the array's scale.

    The scale is the largest magnitude of torch's array (at least 1), so a
    gradient that is a sum of many terms is held to its own size.
    """
    rng = np.random.default_rng(seed)
    ck_in = [convkit.tensor(a, requires_grad=True) for a in inputs]
    th_in = [torch.tensor(np.asarray(a), requires_grad=True) for a in inputs]
    ck_out, th_out = ck_fn(*ck_in), th_fn(*th_in)
    assert ck_out.dtype == np.float32 and th_out.dtype == torch.float32
    cot = rng.standard_normal(ck_out.shape).astype(np.float32)
    ck_out.backward(cot)
    th_out.backward(torch.tensor(cot))
    pairs = [("forward", ck_out.data, th_out.detach().numpy(), forward_tol)]
    pairs += [(f"grad of input {i}", c.grad, t.grad.numpy(), grad_tol)
              for i, (c, t) in enumerate(zip(ck_in, th_in))]
    for what, ours, theirs, tol in pairs:
        assert ours.dtype == np.float32, what
        scale = max(1.0, float(np.max(np.abs(theirs))))
        err = float(np.max(np.abs(ours - theirs)))
        assert err <= tol * scale, f"{what}: float32 error {err:.3e} > {tol:g} * {scale:.3g}"


@pytest.mark.parametrize("kind,shape,opts,mode", PARAMS)
def test_float32_matches_torch(kind, shape, opts, mode):
    ck, th, state, x, w, b = _setup(kind, shape, opts, mode, np.float32)
    _compare32(ck, th, [x, w, b])
    _check_buffers(state, np.float32)


README_FAMILIES = {  # the README's float32 table: (16, 8, 6, 6), mean 3, scale 2
    "batch": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
              lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True)),
    "instance": (lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
                 lambda x, w, b: TF.instance_norm(x, weight=w, bias=b)),
    "group": (lambda x, w, b: F.group_norm(x, 4, w, b), lambda x, w, b: TF.group_norm(x, 4, w, b)),
    "layer": (lambda x, w, b: F.layer_norm(x, (8, 6, 6), w, b),
              lambda x, w, b: TF.layer_norm(x, (8, 6, 6), w, b)),
}


@pytest.mark.parametrize("family", sorted(README_FAMILIES))
def test_float32_error_against_float64_within_readme_bounds(family):
    """float32 results against torch's float64 ones: within the README's norm errors (7.2e-7 / 1.05e-5)."""
    ck_fn, th_fn = README_FAMILIES[family]
    rng = np.random.default_rng(5)
    x = rng.normal(3.0, 2.0, (16, 8, 6, 6)).astype(np.float32)
    pshape = (8, 6, 6) if family == "layer" else (8,)
    w = rng.uniform(0.5, 1.5, pshape).astype(np.float32)
    b = rng.normal(size=pshape).astype(np.float32)
    ck_in = [convkit.tensor(a, requires_grad=True) for a in (x, w, b)]
    th_in = [torch.tensor(a.astype(np.float64), requires_grad=True) for a in (x, w, b)]
    ck_out, th_out = ck_fn(*ck_in), th_fn(*th_in)
    cot = np.random.default_rng(0).standard_normal(ck_out.shape).astype(np.float32)
    ck_out.backward(cot)
    th_out.backward(torch.tensor(cot.astype(np.float64)))
    assert np.max(np.abs(ck_out.data - th_out.detach().numpy())) < 7.2e-7
    for c, t in zip(ck_in, th_in):
        assert np.max(np.abs(c.grad - t.grad.numpy())) < 1.05e-5


def test_float32_large_mean_keeps_variance():
    """A mean 1e4 times the spread: the shifted sums keep the variance (a one-pass float32 sum would not)."""
    rng = np.random.default_rng(1)
    x = (1e4 + rng.standard_normal((4, 3, 50))).astype(np.float32)
    ref = TF.batch_norm(torch.tensor(x, dtype=torch.float64), None, None, training=True).numpy()
    np.testing.assert_allclose(F.batch_norm(x, None, None, training=True).data, ref, atol=2e-6)
    ref = TF.instance_norm(torch.tensor(x, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(F.instance_norm(x).data, ref, atol=2e-6)


# ------------------------------------------------------------------------ non-contiguous arrays
NONCONTIGUOUS = [
    ("batch", lambda t: t.permute(1, 0, 2, 3)), ("batch", lambda t: t[:, :, ::2]),
    ("instance", lambda t: t.permute(1, 0, 2, 3)), ("group", lambda t: t[:, :, 1:, ::3]),
    ("layer", lambda t: t.permute(1, 0, 2, 3)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind,view", NONCONTIGUOUS, ids=["bn-permuted", "bn-strided", "in-permuted",
                                                          "gn-strided", "ln-permuted"])
def test_non_contiguous_input_and_gradient(kind, view, dtype):
    """The input is a permuted or strided view, and a permute after the norm makes its gradient one too."""
    rng = np.random.default_rng(2)
    raw = _data(rng, (4, 6, 7, 9), dtype)
    viewed = view(convkit.tensor(raw)).data
    assert not viewed.flags.c_contiguous
    shape = viewed.shape
    ck, th, pshape, state = _case(kind, shape, mode="train", groups=2, normalized=shape[1:])
    w, b = _params(rng, pshape, dtype)
    if kind in ("batch", "instance"):
        rm, rv = _running(rng, shape[1], dtype)
        state["ck"], state["th"] = (rm.copy(), rv.copy()), (torch.tensor(rm), torch.tensor(rv))

    def ck_view(x, ww, bb):
        return ck(view(x), ww, bb).permute(0, 3, 2, 1)

    def th_view(x, ww, bb):
        return th(view(x), ww, bb).permute(0, 3, 2, 1)

    if dtype == np.float64:
        compare(ck_view, th_view, [raw, w, b])
    else:
        _compare32(ck_view, th_view, [raw, w, b])
    _check_buffers(state, dtype)


def test_backward_takes_a_non_contiguous_gradient():
    rng = np.random.default_rng(3)
    x = _data(rng, (3, 4, 5, 6))
    w, b = _params(rng, (4,))
    y, saved = N.batch_norm_forward(x, w, b, running_mean=None, running_var=None, training=True,
                                    momentum=0.1, eps=1e-5)
    g = np.asfortranarray(rng.standard_normal(y.shape))
    contiguous = N.batch_norm_backward(np.ascontiguousarray(g), saved)
    for got, want in zip(N.batch_norm_backward(g, saved), contiguous):
        np.testing.assert_array_equal(got, want)


# -------------------------------------------------------------------------- running statistics
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_running_statistics_over_steps(dtype):
    """Five training steps of batch and instance norm, then eval: buffers and outputs as torch's."""
    rng = np.random.default_rng(4)
    c = 3
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    irm, irv = np.zeros(c, dtype), np.ones(c, dtype)
    trm, trv, tirm, tirv = torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64), \
        torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64)
    for _ in range(5):
        x = _data(rng, (5, c, 4, 3), dtype)
        tx = torch.tensor(x, dtype=torch.float64)
        F.batch_norm(x, rm, rv, training=True, momentum=0.2)
        TF.batch_norm(tx, trm, trv, training=True, momentum=0.2)
        F.instance_norm(x, irm, irv, momentum=0.2)
        TF.instance_norm(tx, tirm, tirv, momentum=0.2)
    tol = dict(atol=1e-12, rtol=1e-12) if dtype == np.float64 else dict(atol=2e-6, rtol=2e-6)
    for ours, theirs in ((rm, trm), (rv, trv), (irm, tirm), (irv, tirv)):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, theirs.numpy(), **tol)
    x = _data(rng, (2, c, 4, 3), dtype)
    tx = torch.tensor(x, dtype=torch.float64)
    ftol = dict(atol=1e-10, rtol=1e-8) if dtype == np.float64 else dict(atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(F.batch_norm(x, rm, rv).data, TF.batch_norm(tx, trm, trv).numpy(), **ftol)
    np.testing.assert_allclose(F.instance_norm(x, irm, irv, use_input_stats=False).data,
                               TF.instance_norm(tx, tirm, tirv, use_input_stats=False).numpy(), **ftol)


def test_inference_backward_uses_the_statistics_of_its_forward():
    """The running buffers change after an eval forward: its backward still uses the old statistics."""
    rng = np.random.default_rng(5)
    x = _data(rng, (4, 3, 5))
    rm, rv = _running(rng, 3)
    t = convkit.tensor(x, requires_grad=True)
    y = F.batch_norm(t, rm, rv, training=False)
    expected_dx = np.broadcast_to(1.0 / np.sqrt(rv + 1e-5)[:, None], x.shape)
    F.batch_norm(x, rm, rv, training=True)   # updates rm, rv in place
    y.backward(np.ones_like(x))
    np.testing.assert_allclose(t.grad, expected_dx, rtol=1e-12)


# ------------------------------------------------------------------------------ compiled kernels
def test_one_compiled_kernel_per_dtype_for_every_rank_and_norm():
    """1-D, 2-D and 3-D inputs of all four norms, training and inference, share one compilation per dtype."""
    rng = np.random.default_rng(6)
    for dtype in (np.float32, np.float64):
        for shape in ((4, 3, 5), (2, 3, 4, 5), (2, 3, 2, 3, 4)):
            x = convkit.tensor(_data(rng, shape, dtype), requires_grad=True)
            rm, rv = np.zeros(3, dtype), np.ones(3, dtype)
            outs = [F.batch_norm(x, rm, rv, training=True), F.batch_norm(x, rm, rv),
                    F.instance_norm(x), F.instance_norm(x, rm, rv, use_input_stats=False),
                    F.group_norm(x, 3), F.layer_norm(x, shape[1:])]
            for y in outs:
                y.backward(np.ones(y.shape, dtype))
    for fn in (N._normalize, N._normalize_backward):
        dtypes = sorted(str(sig[0].dtype) for sig in fn.signatures)
        assert dtypes == ["float32", "float64"], f"{fn.__name__}: {fn.signatures}"


def test_nan_stays_in_its_set_and_empty_input_runs():
    x = np.random.default_rng(7).normal(size=(4, 3, 40))
    x[2, 1, 33] = np.nan  # in the tail after the LANES partial sums
    y = F.group_norm(x, 3).data
    assert np.isnan(y[2, 1]).all() and np.isfinite(np.delete(y.reshape(12, 40), 7, axis=0)).all()
    y = F.layer_norm(x, (40,)).data
    assert np.isnan(y[2, 1]).all() and np.isfinite(y[:2]).all()
    empty = convkit.tensor(np.zeros((0, 3, 4)), requires_grad=True)
    y = F.layer_norm(empty, (4,), np.ones(4), np.zeros(4))
    y.backward(np.zeros(y.shape))
    assert y.shape == (0, 3, 4) and empty.grad.shape == (0, 3, 4)
