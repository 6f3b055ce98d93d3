"""Pooling without torch: the compiled kernels against the literal loops of
``convkit.testing.reference_pool``, and finite-difference gradient checks.

Gradient checks use inputs whose values are at least 0.1 apart (a shuffled
ramp), far from the ties where max pooling has no derivative.
"""

import numpy as np
import pytest

import convkit
import convkit.functional as F
from convkit.testing import reference_pool as R
from convkit.testing.gradcheck import gradcheck


def distinct(shape, seed):
    """float64 values 0.1 apart in random order: no ties within 1e-6."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))) * 0.1 - 1.0).reshape(shape)


def ties(shape, seed):
    return np.random.default_rng(seed).integers(-1, 2, shape).astype(np.float64)


MAX_CASES = [
    # (rank, kernel, stride, padding, dilation, ceil_mode)
    (1, (3,), (1,), (1,), (1,), False),
    (1, (2,), (2,), (1,), (3,), True),
    (1, (3,), (2,), (1,), (2,), True),
    (2, (3, 2), (2, 1), (1, 1), (1, 2), True),
    (2, (2, 2), (2, 2), (0, 0), (1, 1), False),
    (3, (2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 1), True),
]


@pytest.mark.parametrize("make", [distinct, ties], ids=["distinct", "ties"])
@pytest.mark.parametrize("nsp,k,s,p,d,ceil", MAX_CASES)
def test_max_pool_fast_path_equals_loops(nsp, k, s, p, d, ceil, make):
    x = make((2, 2) + (5, 6, 4)[:nsp], seed=nsp)
    x[0, 1, 0] = np.nan                                     # NaN rows too
    t = convkit.tensor(x, requires_grad=True)
    y, idx = getattr(F, f"max_pool{nsp}d")(t, k, s, p, d, ceil, True)
    ref_y, ref_idx = R.max_pool(x, k, s, p, d, ceil)
    np.testing.assert_array_equal(y.data, ref_y)
    np.testing.assert_array_equal(idx.data, ref_idx)
    g = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(g)
    np.testing.assert_allclose(t.grad, R.max_pool_grad(g, ref_idx, x.shape), rtol=1e-14, atol=1e-14)


AVG_CASES = [
    # (rank, kernel, stride, padding, ceil_mode)
    (1, (3,), (2,), (1,), True),
    (1, (2,), (3,), (0,), True),
    (2, (3, 2), (2, 1), (1, 1), True),
    (2, (2, 3), (1, 2), (0, 1), False),
    (3, (2, 3, 2), (2, 2, 1), (1, 1, 0), True),
]


# every case with both divisor conventions, and divisor_override where PyTorch has it (2-D/3-D)
AVG_COMBOS = [case + (include, override) for case in AVG_CASES
              for include, override in [(True, None), (False, None), (True, 3)]
              if override is None or case[0] > 1]


@pytest.mark.parametrize("nsp,k,s,p,ceil,count_include_pad,divisor_override", AVG_COMBOS)
def test_avg_pool_fast_path_equals_loops(nsp, k, s, p, ceil, count_include_pad, divisor_override):
    x = distinct((2, 2) + (5, 7, 4)[:nsp], seed=nsp)
    t = convkit.tensor(x, requires_grad=True)
    extra = () if nsp == 1 else (divisor_override,)
    y = getattr(F, f"avg_pool{nsp}d")(t, k, s, p, ceil, count_include_pad, *extra)
    np.testing.assert_allclose(y.data, R.avg_pool(x, k, s, p, ceil, count_include_pad, divisor_override),
                               rtol=1e-13, atol=1e-15)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(g)
    expected = R.avg_pool_grad(g, x.shape, k, s, p, ceil, count_include_pad, divisor_override)
    np.testing.assert_allclose(t.grad, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("make", [distinct, ties], ids=["distinct", "ties"])
@pytest.mark.parametrize("spatial,out", [((7,), (3,)), ((4,), (6,)), ((5, 7), (3, 4)), ((3, 5, 4), (2, 3, 5))])
def test_adaptive_fast_paths_equal_loops(spatial, out, make):
    x = make((2, 2) + spatial, seed=len(spatial))
    nsp = len(spatial)
    np.testing.assert_allclose(getattr(F, f"adaptive_avg_pool{nsp}d")(x, out).data, R.adaptive_avg_pool(x, out),
                               rtol=1e-13, atol=1e-15)
    y, idx = getattr(F, f"adaptive_max_pool{nsp}d")(x, out, True)
    ref_y, ref_idx = R.adaptive_max_pool(x, out)
    np.testing.assert_array_equal(y.data, ref_y)
    np.testing.assert_array_equal(idx.data, ref_idx)


# ---------------------------------------------------------------- finite differences
@pytest.mark.parametrize("name,fn,shape", [
    ("max_pool1d", lambda t: F.max_pool1d(t, 3, 2, 1, 2, True), (1, 2, 7)),
    ("max_pool2d", lambda t: F.max_pool2d(t, (3, 2), 1, (1, 0)), (1, 2, 4, 5)),
    ("max_pool3d", lambda t: F.max_pool3d(t, 2, 1, 1, 1, True), (1, 1, 3, 3, 2)),
    ("avg_pool1d", lambda t: F.avg_pool1d(t, 3, 2, 1, True, False), (1, 2, 6)),
    ("avg_pool2d", lambda t: F.avg_pool2d(t, 3, 2, 1, True, True), (1, 2, 5, 4)),
    ("avg_pool3d", lambda t: F.avg_pool3d(t, 2, 1, 1, False, True, 3), (1, 1, 3, 2, 3)),
    ("adaptive_avg_pool2d", lambda t: F.adaptive_avg_pool2d(t, (3, 4)), (1, 2, 5, 3)),
    ("adaptive_max_pool2d", lambda t: F.adaptive_max_pool2d(t, (3, 2)), (1, 2, 5, 4)),
    ("adaptive_max_pool3d", lambda t: F.adaptive_max_pool3d(t, 2), (1, 1, 3, 3, 3)),
    ("global_avg_pool3d", F.global_avg_pool3d, (2, 1, 2, 3, 2)),
])
def test_gradcheck(name, fn, shape):
    gradcheck(fn, [distinct(shape, seed=len(name))])


def test_gradcheck_max_unpool():
    # non-overlapping windows: every index is unique, so the gather is the exact derivative
    x = distinct((1, 2, 7, 6), seed=7)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    gradcheck(lambda t: F.max_unpool2d(t, idx, 2, output_size=(7, 6)), [y.data])
