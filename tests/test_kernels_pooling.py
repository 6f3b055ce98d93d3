"""The compiled pooling kernels against PyTorch and the literal-loop references, float64 and float32.

Max, average and adaptive pooling (forward, input gradient and indices),
global average pooling and max unpooling, through the public functions, on
shapes that stress the kernels' window tables: batch 1 and one channel,
sizes that are multiples neither of the kernel nor of 8/16, overlapping
3x3/2 windows with padding 1, dilation, ceil_mode (the last window's
overhang), 1-D and 3-D, ties, NaN, all-``-inf`` windows and non-contiguous
inputs. Each case is checked twice: against torch (``oracle.compare``) and
against ``convkit.testing.reference_pool`` (scalar loops over the formula).

Tolerances: float64 as the oracle's (1e-10 absolute, 1e-8 relative);
float32 1.4e-6 absolute (1e-6 relative) for sums; max pooling only moves
values, so its outputs, indices and gradients are compared exactly.
"""

import numpy as np
import pytest
from oracle import compare, torch

import convkit
import convkit.functional as F
from convkit.testing import reference_pool as R

TF = torch.nn.functional
DTYPES = [np.float64, np.float32]
TOL = {np.float64: dict(atol=1e-10, rtol=1e-8), np.float32: dict(atol=1.4e-6, rtol=1e-6)}


def sample(shape, dtype, seed=0, ties=False, layout="contiguous"):
    """Random input of ``dtype``; ``ties``: five distinct integers.

    ``layout`` "strided" (every other element of a twice-as-long last axis) or
    "transposed" (Fortran order: the axes reversed in memory) gives a
    non-C-contiguous array with the same values (except where all but one
    axis are 1).
    """
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(dtype)
    if layout == "strided":
        wide = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)
        wide[..., ::2] = x
        x = wide[..., ::2]
        assert not x.flags.c_contiguous
    elif layout == "transposed":
        x = np.asfortranarray(x)
    return x


def run(fn, x, g, *args, indices=False):
    """convkit's output, input gradient for the cotangent ``g`` and (with ``indices``) the indices."""
    xt = convkit.tensor(x, requires_grad=True)
    out = fn(xt, *args, return_indices=True) if indices else fn(xt, *args)
    y, idx = out if indices else (out, None)
    y.backward(g)
    return y.data, xt.grad, (None if idx is None else idx.data)


def cotangent(shape, dtype, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- max pooling
MAX_CASES = [
    # (input shape, kernel, stride, padding, dilation, ceil_mode)
    ((1, 1, 5, 7), (2, 2), (2, 2), (0, 0), (1, 1), False),        # batch 1, one channel, odd sizes
    ((2, 3, 13, 11), (3, 3), (2, 2), (1, 1), (1, 1), False),      # overlapping 3x3/2, padding 1
    ((2, 3, 13, 11), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((2, 4, 33, 35), (3, 3), (2, 2), (1, 1), (1, 1), False),      # not multiples of 8/16
    ((1, 2, 17, 19), (3, 3), (2, 2), (1, 1), (2, 2), True),       # dilation
    ((2, 2, 10, 9), (2, 3), (3, 2), (1, 1), (1, 2), True),        # ceil overhang
    ((3, 1, 9, 12), (4, 1), (1, 3), (2, 0), (1, 1), False),
    ((2, 3, 23), (4,), (3,), (2,), (1,), True),                   # 1-D
    ((1, 1, 31), (3,), (2,), (1,), (3,), False),
    ((1, 2, 5, 6, 7), (3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), True),        # 3-D
    ((2, 1, 4, 6, 5), (2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 1), False),
]


def max_ids(case):
    shape, k, s, p, d, ceil = case
    return f"{len(k)}d-{'x'.join(map(str, shape))}-k{k}-s{s}-p{p}-d{d}-{'ceil' if ceil else 'floor'}"


@pytest.mark.parametrize("layout", ["contiguous", "strided", "transposed"])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", MAX_CASES, ids=max_ids)
def test_max_pool_kernel_matches_torch_and_reference(case, dtype, ties, layout):
    shape, k, s, p, d, ceil = case
    nsp = len(k)
    ck, th = getattr(F, f"max_pool{nsp}d"), getattr(TF, f"max_pool{nsp}d")
    x = sample(shape, dtype, seed=len(shape), ties=ties, layout=layout)
    y_ref, idx_ref = R.max_pool(x, k, s, p, d, ceil)
    g = cotangent(y_ref.shape, dtype)
    y, dx, idx = run(ck, x, g, k, s, p, d, ceil, indices=True)
    assert y.dtype == dx.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(dx, R.max_pool_grad(g, idx_ref, x.shape))
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    yt, it = th(xt, k, s, p, d, ceil, return_indices=True)
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(idx, it.numpy())
    np.testing.assert_array_equal(dx, xt.grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("nsp", [1, 2, 3])
def test_max_pool_kernel_nan_and_minus_inf(nsp, dtype):
    x = sample((2, 3) + (7,) * nsp, dtype, seed=nsp, ties=True)
    flat = x.reshape(-1)
    flat[[0, 1, 9, 30, 31]] = np.nan       # two NaNs in one window: the last one wins
    x[(1, 2) + (slice(0, 4),) * nsp] = -np.inf   # windows of -inf: their first in-input element
    k, s, p = (3,) * nsp, (2,) * nsp, (1,) * nsp
    ck, th = getattr(F, f"max_pool{nsp}d"), getattr(TF, f"max_pool{nsp}d")
    y_ref, idx_ref = R.max_pool(x, k, s, p, (1,) * nsp, True)
    g = cotangent(y_ref.shape, dtype)
    y, dx, idx = run(ck, x, g, k, s, p, 1, True, indices=True)
    assert np.isnan(y).any() and np.isneginf(y).any()
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(dx, R.max_pool_grad(g, idx_ref, x.shape))
    compare(lambda t: ck(t, k, s, p, 1, True), lambda t: th(t, k, s, p, 1, True), [x], atol=0, rtol=0)


def test_max_pool_kernel_all_padding_window_matches_reference():
    # k=2, p=1, d=6 over n=5: the only window reads positions -1 and 5, both padding
    x = sample((2, 2, 5), np.float64)
    y_ref, idx_ref = R.max_pool(x, (2,), (1,), (1,), (6,), False)
    g = cotangent(y_ref.shape, np.float64)
    y, dx, idx = run(F.max_pool1d, x, g, 2, 1, 1, 6, indices=True)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(dx, R.max_pool_grad(g, idx_ref, x.shape))


# ---------------------------------------------------------------- average pooling
AVG_CASES = [
    # (input shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    ((1, 1, 5, 7), (2, 2), (2, 2), (0, 0), False, True, None),
    ((2, 3, 13, 11), (3, 3), (2, 2), (1, 1), False, True, None),
    ((2, 3, 13, 11), (3, 3), (2, 2), (1, 1), True, False, None),
    ((2, 4, 33, 35), (3, 3), (2, 2), (1, 1), True, True, None),
    ((2, 2, 10, 9), (2, 3), (3, 2), (1, 1), True, True, None),    # ceil overhang, not counted
    ((2, 2, 10, 9), (2, 3), (3, 2), (1, 1), True, False, 5),      # divisor_override
    ((3, 1, 9, 12), (4, 1), (1, 3), (2, 0), False, False, -3),
    ((2, 3, 23), (4,), (3,), (2,), True, True, None),             # 1-D
    ((1, 1, 31), (3,), (2,), (1,), True, False, None),
    ((1, 2, 5, 6, 7), (3, 3, 3), (2, 2, 2), (1, 1, 1), True, True, None),        # 3-D
    ((2, 1, 4, 6, 5), (2, 3, 2), (1, 2, 2), (1, 1, 0), False, False, 7),
]


def avg_ids(case):
    shape, k, s, p, ceil, include, override = case
    return (f"{len(k)}d-{'x'.join(map(str, shape))}-k{k}-s{s}-p{p}-{'ceil' if ceil else 'floor'}"
            f"-{'incl' if include else 'excl'}-{override}")


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", AVG_CASES, ids=avg_ids)
def test_avg_pool_kernel_matches_torch_and_reference(case, dtype, layout):
    shape, k, s, p, ceil, include, override = case
    nsp = len(k)
    ck, th = getattr(F, f"avg_pool{nsp}d"), getattr(TF, f"avg_pool{nsp}d")
    args = (k, s, p, ceil, include) + (() if nsp == 1 else (override,))
    x = sample(shape, dtype, seed=len(shape), layout=layout)
    y_ref = R.avg_pool(x.astype(np.float64), k, s, p, ceil, include, override)
    g = cotangent(y_ref.shape, dtype)
    dx_ref = R.avg_pool_grad(g.astype(np.float64), x.shape, k, s, p, ceil, include, override)
    y, dx, _ = run(ck, x, g, *args)
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    np.testing.assert_allclose(dx, dx_ref, **TOL[dtype])
    compare(lambda t: ck(t, *args), lambda t: th(t, *args), [x], **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_avg_pool_kernel_nan_stays_in_its_windows(dtype):
    x = sample((1, 2, 9, 8), dtype, seed=3)
    x[0, 0, 2, 3] = np.nan
    out = compare(lambda t: F.avg_pool2d(t, 3, 2, 1), lambda t: TF.avg_pool2d(t, 3, 2, 1), [x], **TOL[dtype])
    assert np.isnan(out).sum() == 2


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_avg_pool_float32_large_windows_stay_accurate(dtype):
    # 15x15 windows of values near 1000: float64 accumulation keeps the float32 result within tolerance
    x = (1000 + sample((2, 3, 45, 47), np.float64, seed=5)).astype(dtype)
    y_ref = R.avg_pool(x.astype(np.float64), (15, 15), (15, 15), (0, 0), False, True)
    y = F.avg_pool2d(x, 15).data
    np.testing.assert_allclose(y, y_ref, rtol=1e-7 if dtype == np.float32 else 1e-13, atol=0)


# ---------------------------------------------------------------- adaptive pooling
ADAPTIVE_CASES = [
    # (input shape, output size)
    ((1, 1, 7), (3,)),
    ((2, 3, 10), (4,)),
    ((2, 3, 5), (8,)),                 # o > n: windows share starts
    ((1, 1, 5, 7), (2, 3)),
    ((2, 3, 13, 11), (5, 4)),
    ((2, 2, 6, 9), (6, 9)),            # identity
    ((2, 2, 4, 5), (7, 3)),
    ((1, 2, 5, 6, 7), (2, 3, 4)),      # 3-D
    ((2, 1, 3, 4, 5), (4, 4, 1)),
]


def adaptive_ids(case):
    shape, out = case
    return f"{len(out)}d-{'x'.join(map(str, shape))}-to-{'x'.join(map(str, out))}"


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=adaptive_ids)
def test_adaptive_max_pool_kernel_matches_torch_and_reference(case, dtype, ties, layout):
    shape, out = case
    nsp = len(out)
    ck, th = getattr(F, f"adaptive_max_pool{nsp}d"), getattr(TF, f"adaptive_max_pool{nsp}d")
    x = sample(shape, dtype, seed=len(shape), ties=ties, layout=layout)
    y_ref, idx_ref = R.adaptive_max_pool(x, out)
    g = cotangent(y_ref.shape, dtype)
    y, dx, idx = run(ck, x, g, out, indices=True)
    assert y.dtype == dx.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(dx, R.max_pool_grad(g, idx_ref, x.shape))
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    yt, it = th(xt, out, return_indices=True)
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(idx, it.numpy())
    np.testing.assert_array_equal(dx, xt.grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_adaptive_max_pool_kernel_nan_takes_the_last(dtype):
    x = sample((2, 2, 6, 7), dtype, seed=4, ties=True)
    x[0, 0, 0, 0] = x[0, 0, 1, 1] = x[1, 1, 5, 6] = np.nan
    y_ref, idx_ref = R.adaptive_max_pool(x, (4, 3))
    y, idx = F.adaptive_max_pool2d(x, (4, 3), return_indices=True)
    np.testing.assert_array_equal(y.data, y_ref)
    np.testing.assert_array_equal(idx.data, idx_ref)
    _, it = TF.adaptive_max_pool2d(torch.tensor(x), (4, 3), return_indices=True)
    np.testing.assert_array_equal(idx.data, it.numpy())


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=adaptive_ids)
def test_adaptive_avg_pool_kernel_matches_torch_and_reference(case, dtype, layout):
    shape, out = case
    nsp = len(out)
    ck, th = getattr(F, f"adaptive_avg_pool{nsp}d"), getattr(TF, f"adaptive_avg_pool{nsp}d")
    x = sample(shape, dtype, seed=len(shape), layout=layout)
    np.testing.assert_allclose(ck(x, out).data, R.adaptive_avg_pool(x.astype(np.float64), out), **TOL[dtype])
    compare(lambda t: ck(t, out), lambda t: th(t, out), [x], **TOL[dtype])


# ---------------------------------------------------------------- global average, unpooling
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(1, 1, 5), (2, 3, 13, 11), (2, 2, 3, 5, 7)], ids=str)
def test_global_avg_pool_kernel_matches_torch(shape, dtype):
    nsp = len(shape) - 2
    x = sample(shape, dtype, layout="transposed")
    compare(getattr(F, f"global_avg_pool{nsp}d"), lambda t: t.mean(dim=tuple(range(2, t.ndim)), keepdim=True),
            [x], **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("nsp", [1, 2, 3])
def test_max_unpool_kernel_matches_torch(nsp, dtype):
    x = sample((2, 3) + (7,) * nsp, dtype, seed=nsp, ties=True)
    y, idx = getattr(F, f"max_pool{nsp}d")(x, 3, 2, 1, return_indices=True)   # overlapping: repeated indices
    size = (7,) * nsp
    ck, th = getattr(F, f"max_unpool{nsp}d"), getattr(TF, f"max_unpool{nsp}d")
    compare(lambda t, i: ck(t, i, 3, 2, 1, size), lambda t, i: th(t, i, 3, 2, 1, size),
            [y.data, idx.data], atol=0, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_backward_kernels_take_non_contiguous_cotangents(dtype):
    from convkit.ops import adaptive_pooling as AP
    from convkit.ops import pooling as P

    x = sample((2, 3, 9, 10), dtype, seed=6)
    window = dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True)
    runs = [
        (P.max_pool, dict(window, dilation=(1, 1))),
        (P.avg_pool, dict(window, count_include_pad=False, divisor_override=None)),
        (AP.adaptive_max_pool, dict(output_size=(4, 3))),
        (AP.adaptive_avg_pool, dict(output_size=(4, 3))),
        (P.global_avg_pool, {}),
    ]
    for op, options in runs:
        y, saved = op.forward(x, **options)
        g = np.asfortranarray(cotangent(y.shape, dtype))
        dx, = op.backward(g, saved, (True,))
        np.testing.assert_array_equal(dx, op.backward(np.ascontiguousarray(g), saved, (True,))[0])
        assert dx.dtype == dtype and dx.shape == x.shape
