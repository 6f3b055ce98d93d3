"""Pooling against PyTorch in float64: forward, indices and input gradients.

Max, average, unpooling, adaptive and global pooling in 1-D/2-D/3-D, over
an explicit table of options (the ceil_mode corner cases of the reference
notes, dilation, padding, overlapping windows, unbatched inputs) plus
seeded random configurations; ties, NaN and all-``-inf`` windows.
"""

import numpy as np
import pytest
from oracle import compare, torch

import convkit
import convkit.functional as F
from convkit.ops.pooling import pool_output_size

TF = torch.nn.functional


def sample(shape, seed, ties=False):
    """Random float64 input; with ``ties`` the values repeat (five distinct integers)."""
    rng = np.random.default_rng(seed)
    if ties:
        return rng.integers(-2, 3, shape).astype(np.float64)
    return rng.standard_normal(shape)


def assert_same_indices(ck_fn, th_fn, x):
    """convkit's indices (an int64 Tensor) equal torch's exactly."""
    _, ck_idx = ck_fn(convkit.tensor(x))
    _, th_idx = th_fn(torch.tensor(x))
    assert ck_idx.dtype == np.int64
    np.testing.assert_array_equal(ck_idx.data, th_idx.numpy())


def cases_with_ids(table):
    return [pytest.param(i, case, id=f"{i}-{case[0]}d") for i, case in enumerate(table)]


# ---------------------------------------------------------------- output size
@pytest.mark.parametrize("n,k,s,p,d,ceil,expected", [
    (6, 1, 2, 0, 1, True, 3),    # the raw ceil gives 4: the last window would start past the input
    (5, 2, 2, 1, 1, True, 3),    # the raw ceil gives 4: the last window would start in the right padding
    (25, 2, 2, 0, 1, False, 12),
    (25, 2, 2, 0, 1, True, 13),
    (7, 2, 3, 0, 1, False, 2),
    (7, 2, 3, 0, 1, True, 3),
    (10, 3, 2, 1, 2, True, 5),
    (8, 3, 3, 1, 1, True, 3),
])
def test_output_size_corner_cases(n, k, s, p, d, ceil, expected):
    assert pool_output_size(n, k, s, p, d, ceil) == expected
    x = np.zeros((1, 1, n))
    assert TF.max_pool1d(torch.tensor(x), k, s, p, d, ceil).shape[-1] == expected
    assert F.max_pool1d(x, k, s, p, d, ceil).shape[-1] == expected
    if d == 1:
        assert F.avg_pool1d(x, k, s, p, ceil).shape[-1] == expected


def test_avg_divisor_examples_from_reference():
    # explicit padding counts in the divisor, the ceil_mode overhang does not
    np.testing.assert_allclose(F.avg_pool1d(np.arange(7.0)[None, None], 2, 3, ceil_mode=True).data,
                               [[[0.5, 3.5, 6.0]]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(F.avg_pool1d(np.ones((1, 1, 6)), 3, 2, 1, ceil_mode=True).data,
                               [[[2 / 3, 1.0, 1.0, 0.5]]], rtol=0, atol=1e-15)


# ---------------------------------------------------------------- max pooling
MAX_TABLE = [
    # (spatial rank, input shape, kernel, stride, padding, dilation, ceil_mode)
    (1, (2, 3, 9), 3, None, 0, 1, False),
    (1, (2, 3, 9), 3, 1, 1, 1, False),                 # overlapping windows: gradients add
    (1, (2, 2, 10), 4, 2, 2, 1, False),
    (1, (2, 2, 11), 3, 2, 1, 2, False),                # dilation
    (1, (1, 2, 6), 1, 2, 0, 1, True),                  # ceil corner: 3 windows
    (1, (1, 2, 5), 2, 2, 1, 1, True),                  # ceil corner: 3 windows
    (1, (1, 2, 7), 2, 3, 0, 1, True),                  # ceil overhang past the input
    (1, (3, 8), 3, 2, 1, 1, True),                     # unbatched (C, L)
    (2, (2, 3, 7, 8), 3, 2, 1, 1, True),
    (2, (2, 2, 9, 7), (3, 2), (1, 2), (1, 0), (2, 1), False),
    (2, (1, 2, 8, 9), (2, 3), (2, 2), (1, 1), 1, True),
    (2, (2, 5, 6), 2, None, 0, 1, False),              # unbatched (C, H, W)
    (3, (1, 2, 5, 6, 7), 2, None, 0, 1, False),
    (3, (2, 1, 6, 7, 5), (3, 2, 2), (2, 1, 2), (1, 1, 0), (1, 2, 1), True),
    (3, (2, 5, 6, 4), 2, 1, 1, 1, True),               # unbatched (C, D, H, W)
]


def random_max_table(count, seed):
    """Seeded random (rank, shape, kernel, stride, padding, dilation, ceil_mode) with output >= 1."""
    rng = np.random.default_rng(seed)
    table = []
    while len(table) < count:
        nsp = int(rng.integers(1, 4))
        spatial = tuple(int(v) for v in rng.integers(3, 9, nsp))
        k = tuple(int(v) for v in rng.integers(1, 4, nsp))
        s = tuple(int(v) for v in rng.integers(1, 4, nsp))
        p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
        d = tuple(int(v) for v in rng.integers(1, 3, nsp))
        ceil = bool(rng.integers(2))
        if all(pool_output_size(n, *args, ceil) >= 1 for n, *args in zip(spatial, k, s, p, d)):
            table.append((nsp, (int(rng.integers(1, 3)), int(rng.integers(1, 4))) + spatial, k, s, p, d, ceil))
    return table


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("seed,case", cases_with_ids(MAX_TABLE + random_max_table(24, seed=1)))
def test_max_pool_matches_torch(seed, case, ties):
    nsp, shape, k, s, p, d, ceil = case
    ck, th = getattr(F, f"max_pool{nsp}d"), getattr(TF, f"max_pool{nsp}d")
    x = sample(shape, seed, ties)
    compare(lambda t: ck(t, k, s, p, d, ceil), lambda t: th(t, k, s, p, d, ceil), [x], seed=seed)
    assert_same_indices(lambda t: ck(t, k, s, p, d, ceil, True), lambda t: th(t, k, s, p, d, ceil, True), x)


def test_max_pool_ties_first_maximum_gets_the_gradient():
    x = np.array([[[3.0, 3.0, 1.0, 3.0]]])
    _, idx = F.max_pool1d(x, 2, 1, return_indices=True)
    assert idx.tolist() == [[[0, 1, 3]]]
    compare(lambda t: F.max_pool1d(t, 2, 1), lambda t: TF.max_pool1d(t, 2, 1), [x])


@pytest.mark.parametrize("nsp", [1, 2, 3])
def test_max_pool_nan_propagates_like_torch(nsp):
    x = sample((2, 3) + (6,) * nsp, seed=nsp)
    x[(Ellipsis,) + (0,) * nsp] = np.nan
    x[(Ellipsis,) + (1,) * nsp] = np.nan           # two NaNs in one window: torch keeps the last
    x[(0, 1) + (4,) * nsp] = np.nan
    ck, th = getattr(F, f"max_pool{nsp}d"), getattr(TF, f"max_pool{nsp}d")
    out = compare(lambda t: ck(t, 3, 2, 1), lambda t: th(t, 3, 2, 1), [x])
    assert np.isnan(out).any() and not np.isnan(out).all()
    assert_same_indices(lambda t: ck(t, 3, 2, 1, return_indices=True),
                        lambda t: th(t, 3, 2, 1, return_indices=True), x)


def test_max_pool_all_minus_inf_windows_report_first_input_element():
    x = np.full((1, 1, 5), -np.inf)
    for args in [(2, 2, 1), (3, 2, 1, 2), (2, 1, 1, 3)]:
        assert_same_indices(lambda t: F.max_pool1d(t, *args, return_indices=True),
                            lambda t: TF.max_pool1d(t, *args, return_indices=True), x)
    compare(lambda t: F.max_pool1d(t, 2, 1, 1, 3), lambda t: TF.max_pool1d(t, 2, 1, 1, 3), [x[..., :2]])


# ---------------------------------------------------------------- average pooling
AVG_TABLE = [
    # (rank, shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    (1, (2, 3, 9), 3, None, 0, False, True, None),
    (1, (2, 3, 9), 3, 1, 1, False, False, None),        # overlapping windows
    (1, (1, 2, 7), 2, 3, 0, True, True, None),          # overhang not counted
    (1, (1, 2, 6), 3, 2, 1, True, True, None),
    (1, (1, 2, 6), 3, 2, 1, True, False, None),
    (1, (3, 8), 4, 3, 2, True, False, None),            # unbatched
    (2, (2, 3, 7, 8), 3, 2, 1, True, True, None),
    (2, (2, 3, 7, 8), 3, 2, 1, True, False, None),
    (2, (2, 2, 9, 7), (3, 2), (1, 2), (1, 0), False, True, 5),
    (2, (1, 2, 8, 9), (2, 3), (2, 2), (1, 1), True, False, -3),
    (2, (2, 5, 6), 2, None, 0, False, True, None),      # unbatched
    (3, (1, 2, 5, 6, 7), 2, None, 0, False, True, None),
    (3, (2, 1, 6, 7, 5), (3, 2, 2), (2, 1, 2), (1, 1, 0), True, False, None),
    (3, (2, 1, 6, 7, 5), (3, 2, 2), (2, 1, 2), (1, 1, 0), True, True, 7),
    (3, (2, 5, 6, 4), 3, 2, 1, True, True, None),       # unbatched
]


def random_avg_table(count, seed):
    rng = np.random.default_rng(seed)
    table = []
    while len(table) < count:
        nsp = int(rng.integers(1, 4))
        spatial = tuple(int(v) for v in rng.integers(3, 9, nsp))
        k = tuple(int(v) for v in rng.integers(1, 5, nsp))
        s = tuple(int(v) for v in rng.integers(1, 4, nsp))
        p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
        ceil, include = bool(rng.integers(2)), bool(rng.integers(2))
        override = int(rng.integers(1, 9)) if nsp > 1 and rng.integers(3) == 0 else None
        fits = nsp < 3 or all(n >= kk for n, kk in zip(spatial, k))      # torch's avg_pool3d check
        if fits and all(pool_output_size(n, kk, ss, pp, 1, ceil) >= 1 for n, kk, ss, pp in zip(spatial, k, s, p)):
            table.append((nsp, (2, 2) + spatial, k, s, p, ceil, include, override))
    return table


@pytest.mark.parametrize("seed,case", cases_with_ids(AVG_TABLE + random_avg_table(24, seed=2)))
def test_avg_pool_matches_torch(seed, case):
    nsp, shape, k, s, p, ceil, include, override = case
    ck, th = getattr(F, f"avg_pool{nsp}d"), getattr(TF, f"avg_pool{nsp}d")
    extra = () if nsp == 1 else (override,)
    compare(lambda t: ck(t, k, s, p, ceil, include, *extra), lambda t: th(t, k, s, p, ceil, include, *extra),
            [sample(shape, seed)], seed=seed)


def test_avg_pool_nan_stays_in_its_windows():
    x = sample((1, 2, 8, 8), seed=3)
    x[0, 0, 2, 3] = np.nan
    out = compare(lambda t: F.avg_pool2d(t, 3, 2, 1), lambda t: TF.avg_pool2d(t, 3, 2, 1), [x])
    assert np.isnan(out).sum() == 2


# ---------------------------------------------------------------- max unpooling
UNPOOL_TABLE = [
    # (rank, input shape, kernel, stride, padding, output_size passed to unpool)
    (1, (2, 3, 8), 2, None, 0, None),
    (1, (2, 3, 9), 2, None, 0, (9,)),                  # the default (8) would lose the last element
    (1, (2, 3, 9), 3, 1, 1, None),                     # overlapping windows share indices
    (1, (3, 10), 4, 2, 1, (2, 3, 10)),                 # unbatched; output_size with N, C
    (2, (2, 2, 6, 8), 2, None, 0, None),
    (2, (2, 2, 7, 9), (2, 3), (2, 2), (1, 1), (7, 9)),
    (2, (2, 7, 7), 3, 2, 1, (7, 7)),                   # unbatched
    (3, (1, 2, 4, 6, 4), 2, None, 0, None),
    (3, (2, 1, 5, 6, 7), (3, 2, 2), (2, 1, 2), (1, 0, 1), (5, 6, 7)),
]


@pytest.mark.parametrize("seed,case", cases_with_ids(UNPOOL_TABLE))
def test_max_unpool_matches_torch(seed, case):
    nsp, shape, k, s, p, size = case
    pool, th_pool = getattr(F, f"max_pool{nsp}d"), getattr(TF, f"max_pool{nsp}d")
    ck, th = getattr(F, f"max_unpool{nsp}d"), getattr(TF, f"max_unpool{nsp}d")
    x = sample(shape, seed)
    y, idx = pool(x, k, s, p, return_indices=True)
    _, th_idx = th_pool(torch.tensor(x), k, s, p, return_indices=True)
    np.testing.assert_array_equal(idx.data, th_idx.numpy())
    compare(lambda t, i: ck(t, i, k, s, p, size), lambda t, i: th(t, i, k, s, p, size),
            [y.data, idx.data], seed=seed)


def test_max_unpool_roundtrip_keeps_the_maxima():
    x = np.abs(sample((2, 3, 6, 8), seed=4)) + 1      # positive, so the zeros never win
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    back = F.max_unpool2d(y, idx, 2).data
    np.testing.assert_array_equal(back, np.where(back != 0, x, 0))
    np.testing.assert_array_equal(F.max_pool2d(back, 2).data, y.data)


# ---------------------------------------------------------------- adaptive pooling
ADAPTIVE_TABLE = [
    # (rank, input shape, output_size)
    (1, (2, 3, 10), 3),                                # windows of lengths 4, 4, 4, overlapping
    (1, (2, 3, 7), 7),
    (1, (2, 3, 5), 8),                                 # more windows than inputs
    (1, (3, 9), (4,)),                                 # unbatched
    (1, (2, 2, 9), 1),
    (2, (2, 3, 7, 10), (3, 4)),
    (2, (2, 3, 7, 10), (None, 3)),                     # None keeps the size
    (2, (2, 3, 5, 4), (7, 9)),
    (2, (3, 11, 6), 5),                                # unbatched
    (3, (1, 2, 5, 7, 6), (2, 3, 4)),
    (3, (1, 2, 5, 7, 6), (None, 1, 8)),
    (3, (2, 4, 5, 3), 2),                              # unbatched
]


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("seed,case", cases_with_ids(ADAPTIVE_TABLE))
def test_adaptive_pools_match_torch(seed, case, ties):
    nsp, shape, size = case
    x = sample(shape, seed, ties)
    ck_avg, th_avg = getattr(F, f"adaptive_avg_pool{nsp}d"), getattr(TF, f"adaptive_avg_pool{nsp}d")
    ck_max, th_max = getattr(F, f"adaptive_max_pool{nsp}d"), getattr(TF, f"adaptive_max_pool{nsp}d")
    compare(lambda t: ck_avg(t, size), lambda t: th_avg(t, size), [x], seed=seed)
    compare(lambda t: ck_max(t, size), lambda t: th_max(t, size), [x], seed=seed)
    assert_same_indices(lambda t: ck_max(t, size, True), lambda t: th_max(t, size, True), x)


@pytest.mark.parametrize("nsp", [1, 2, 3])
def test_adaptive_max_nan_and_empty_output_like_torch(nsp):
    x = sample((2, 2) + (5,) * nsp, seed=nsp)
    x[(Ellipsis,) + (1,) * nsp] = np.nan
    x[(Ellipsis,) + (2,) * nsp] = np.nan             # both in the middle window: the last one wins
    ck, th = getattr(F, f"adaptive_max_pool{nsp}d"), getattr(TF, f"adaptive_max_pool{nsp}d")
    compare(lambda t: ck(t, 3), lambda t: th(t, 3), [x])
    assert_same_indices(lambda t: ck(t, 3, True), lambda t: th(t, 3, True), x)
    assert ck(x, 0).shape == tuple(th(torch.tensor(x), 0).shape)
    assert getattr(F, f"adaptive_avg_pool{nsp}d")(x, 0).shape == (2, 2) + (0,) * nsp


# ---------------------------------------------------------------- global average pooling
@pytest.mark.parametrize("nsp,shape", [(1, (2, 3, 7)), (2, (2, 3, 5, 6)), (2, (3, 5, 6)), (3, (2, 3, 4, 5, 3))])
def test_global_avg_pool_is_adaptive_avg_to_one(nsp, shape):
    compare(lambda t: getattr(F, f"global_avg_pool{nsp}d")(t),
            lambda t: getattr(TF, f"adaptive_avg_pool{nsp}d")(t, 1), [sample(shape, nsp)])


# ---------------------------------------------------------------- dtypes and float32
def test_dtypes_are_kept_and_integers_become_float32():
    x = np.arange(2 * 3 * 16, dtype=np.int64).reshape(2, 3, 4, 4)
    assert F.max_pool2d(x, 2).dtype == np.float32
    assert F.adaptive_avg_pool2d(x, 3).dtype == np.float32
    for dtype in (np.float32, np.float64):
        xs = x.astype(dtype)
        y, idx = F.max_pool2d(xs, 2, return_indices=True)
        outs = [y, F.avg_pool2d(xs, 2), F.max_unpool2d(y, idx, 2), F.adaptive_avg_pool2d(xs, 3),
                F.adaptive_max_pool2d(xs, 3), F.global_avg_pool2d(xs)]
        assert all(o.dtype == dtype for o in outs)


# one call per op family, written once for both libraries (m is convkit.functional or torch's)
FLOAT32_OPS = {
    "max_pool": lambda m, t: m.max_pool2d(t, 3, 2, 1, 2, True),
    "avg_pool": lambda m, t: m.avg_pool3d(t.reshape((2, 3, 2, 10, 12)), 2, 2, 1, True, False),
    "max_unpool": lambda m, t: m.max_unpool2d(*m.max_pool2d(t, 2, return_indices=True), 2),
    "adaptive_avg": lambda m, t: m.adaptive_avg_pool2d(t, (7, 5)),
    "adaptive_max": lambda m, t: m.adaptive_max_pool1d(t.reshape((2, 3, 240)), 17),
    "global_avg": lambda m, t: m.global_avg_pool2d(t) if m is F else m.adaptive_avg_pool2d(t, 1),
}


@pytest.mark.parametrize("family", sorted(FLOAT32_OPS))
def test_float32_matches_torch(family):
    fn = FLOAT32_OPS[family]
    x = (sample((2, 3, 20, 12), seed=5) * 10).astype(np.float32)
    compare(lambda t: fn(F, t), lambda t: fn(TF, t), [x], atol=2e-5, rtol=2e-5)
