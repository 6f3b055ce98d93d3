"""ops.gemm.matmul: np.matmul, split over convkit's threads when large, equal to rounding."""

import warnings

import numpy as np
import pytest

import convkit
from convkit.ops import gemm


@pytest.mark.parametrize("a_shape,b_shape", [
    ((300, 200), (200, 150)),            # 2-D: split along the rows of a
    ((16, 150), (150, 1000)),            # 2-D, skinny: split along the columns of b
    ((8, 60, 90), (8, 90, 70)),          # batched: split along the batch
    ((3, 200, 100), (100, 120)),         # batch on a only
    ((200, 100), (4, 100, 120)),         # batch on b only
    ((1, 4, 200, 100), (3, 1, 100, 60)),  # broadcast leading axes, first one too short to split
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_products_equal_numpy_to_rounding(a_shape, b_shape, dtype, monkeypatch):
    monkeypatch.setattr(gemm, "SPLIT_FLOPS", 0)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape).astype(dtype), rng.standard_normal(b_shape).astype(dtype)
    want = np.matmul(a, b)
    with convkit.backends.num_threads(2):
        got = gemm.matmul(a, b)
        out = np.empty_like(want)
        assert gemm.matmul(a, b, out=out) is out
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-13)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, **tol)
    np.testing.assert_allclose(out, want, **tol)
    np.testing.assert_allclose(gemm.matmul(a[..., ::2, :], b), np.matmul(a[..., ::2, :], b), **tol)  # a view


def test_small_products_and_vectors_are_plain_matmul():
    a, b = np.ones((3, 4)), np.ones(4)
    np.testing.assert_array_equal(gemm.matmul(a, b), np.matmul(a, b))
    np.testing.assert_array_equal(gemm.matmul(a, np.ones((4, 2))), np.full((3, 2), 4.0))


def test_the_callers_error_handling_reaches_every_part(monkeypatch):
    monkeypatch.setattr(gemm, "SPLIT_FLOPS", 0)
    a = np.full((64, 64), 1e30, np.float32)
    with convkit.backends.num_threads(2), np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            gemm.matmul(a, a)
    with convkit.backends.num_threads(2), np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isinf(gemm.matmul(a, a)).all()
