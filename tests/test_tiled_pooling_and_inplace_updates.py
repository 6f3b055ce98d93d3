"""The cases of a training step that once had NumPy fast paths of their own, against PyTorch.

Non-overlapping pooling (``stride == kernel``, no padding: LeNet's 2x2
pools) runs on the same compiled kernels as every other geometry; it must
give torch's outputs, gradients and indices, in float64 (1e-12) and float32
(exact for max pooling, which only moves values; 1e-6 relative for average
pooling), including ties, ``-inf``, NaN, floor-mode remainders and
non-finite upstream gradients. The optimizers update in place without
touching ``.grad``.
"""

import numpy as np
import pytest
from oracle import torch

import convkit
import convkit.functional as F
from convkit.ops import pooling as P

TF = torch.nn.functional
TORCH_MAX = {1: TF.max_pool1d, 2: TF.max_pool2d, 3: TF.max_pool3d}
TORCH_AVG = {1: TF.avg_pool1d, 2: TF.avg_pool2d, 3: TF.avg_pool3d}
CK_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
CK_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}

# (input shape, kernel): every case has stride == kernel and no padding.
TILED = [
    ((4, 3, 8, 8), (2, 2)),
    ((2, 3, 7, 9), (2, 2)),  # floor mode drops the last row and column
    ((2, 2, 9, 12), (3, 4)),
    ((2, 2, 6, 5), (1, 5)),
    ((3, 2, 11), (2,)),
    ((2, 2, 12), (3,)),
    ((1, 2, 4, 6, 4), (2, 3, 2)),
]


def values(shape, dtype, ties, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)  # integers: many ties
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("shape,kernel", TILED)
def test_max_pool_of_tiled_windows_equals_torch(shape, kernel, ties, dtype):
    nsp = len(kernel)
    x = values(shape, dtype, ties)
    opts = dict(dilation=(1,) * nsp, ceil_mode=False)
    y, saved = P.max_pool_forward(x, kernel=kernel, stride=kernel, padding=(0,) * nsp, **opts)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx, = P.max_pool_backward(g, saved)
    assert y.dtype == dx.dtype == dtype and dx.shape == x.shape
    xt = torch.tensor(x, requires_grad=True)
    yt, it = TORCH_MAX[nsp](xt, kernel, return_indices=True)
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(dx, xt.grad.numpy())
    np.testing.assert_array_equal(saved.indices, it.numpy())


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("shape,kernel", TILED)
def test_avg_pool_of_tiled_windows_equals_torch(shape, kernel, dtype, rtol):
    nsp = len(kernel)
    x = values(shape, dtype, ties=False)
    opts = dict(ceil_mode=False, count_include_pad=True, divisor_override=None)
    y, saved = P.avg_pool_forward(x, kernel=kernel, stride=kernel, padding=(0,) * nsp, **opts)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx, = P.avg_pool_backward(g, saved)
    xt = torch.tensor(x, requires_grad=True)
    yt = TORCH_AVG[nsp](xt, kernel)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=rtol, atol=rtol)
    assert y.dtype == dx.dtype == dtype


def test_avg_pool_of_tiled_windows_keeps_divisor_override():
    x = values((2, 2, 4, 4), np.float64, ties=False)
    xt = torch.tensor(x, requires_grad=True)
    y = F.avg_pool2d(convkit.tensor(x), 2, divisor_override=3).data
    np.testing.assert_allclose(y, TF.avg_pool2d(xt, 2, divisor_override=3).detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("nsp", [1, 2, 3])
def test_max_pool_of_tiled_windows_with_nan_matches_torch(nsp):
    shape, kernel = [(s, k) for s, k in TILED if len(k) == nsp][0]
    x = values(shape, np.float64, ties=True)
    flat = x.reshape(-1)
    flat[[1, 5, 6]] = np.nan
    y, saved = P.max_pool_forward(x, kernel=kernel, stride=kernel, padding=(0,) * nsp,
                                  dilation=(1,) * nsp, ceil_mode=False)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = TORCH_MAX[nsp](xt, kernel, return_indices=True)
    g = np.random.default_rng(2).standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(saved.indices, it.numpy())
    np.testing.assert_array_equal(P.max_pool_backward(g, saved)[0], xt.grad.numpy())


def test_max_pool_of_tiled_windows_all_minus_inf_and_non_finite_gradients_like_torch():
    x = values((2, 2, 6, 6), np.float32, ties=True)
    x[0, 0, :2, :2] = -np.inf
    xt = torch.tensor(x, requires_grad=True)
    yt, it = TF.max_pool2d(xt, 2, return_indices=True)
    xk = convkit.tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(xk, 2, return_indices=True)
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    np.testing.assert_array_equal(idx.data, it.numpy())
    g = np.ones(y.shape, dtype=np.float32)
    g[0, 0, 1, 1] = np.inf
    g[1, 1, 2, 0] = np.nan
    y.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(xk.grad, xt.grad.numpy())  # 0 (not NaN) away from the maxima


def test_one_by_one_max_pool_output_does_not_alias_the_input():
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    y = F.max_pool2d(x, 1).data
    y[...] = 0
    assert x.sum() == 28


@pytest.mark.parametrize("make", [
    lambda ps: convkit.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True),
    lambda ps: convkit.optim.SGD(ps, lr=0.1, maximize=True),
    lambda ps: convkit.optim.Adam(ps, lr=0.1, weight_decay=0.01, amsgrad=True),
    lambda ps: convkit.optim.AdamW(ps, lr=0.1),
])
def test_optimizer_steps_update_parameters_in_place_and_leave_grad_alone(make):
    w = convkit.nn.Parameter(np.linspace(-1, 1, 6, dtype=np.float32))
    data = w.data
    w.grad = np.linspace(0.5, -0.5, 6, dtype=np.float32)
    grad = w.grad.copy()
    opt = make([w])
    for _ in range(3):
        opt.step()
    assert w.data is data and w.data.dtype == np.float32
    np.testing.assert_array_equal(w.grad, grad)
