"""Pooling layers: PyTorch's constructor arguments, attributes and repr, and the same outputs."""

import numpy as np
import pytest
from oracle import compare, torch

import convkit
import convkit.nn as nn

tnn = torch.nn

LAYERS = [
    # (class name, constructor args, kwargs, input shape)
    ("MaxPool1d", (3,), {}, (2, 3, 10)),
    ("MaxPool1d", (3, 2, 1, 2), {"ceil_mode": True}, (3, 11)),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, (2, 3, 9, 8)),
    ("MaxPool2d", ((2, 3),), {"dilation": (2, 1)}, (2, 3, 9, 8)),
    ("MaxPool3d", ((1, 2, 3),), {}, (1, 2, 4, 6, 6)),
    ("AvgPool1d", (3,), {}, (2, 3, 10)),
    ("AvgPool1d", (4, 3, 2, True, False), {}, (2, 3, 10)),
    ("AvgPool2d", (3, 1, 1, True, False, 2), {}, (2, 3, 7, 6)),
    ("AvgPool2d", ((2, 3),), {"count_include_pad": False, "padding": (1, 0)}, (3, 7, 6)),
    ("AvgPool3d", (2,), {"ceil_mode": True}, (1, 2, 5, 4, 5)),
    ("AdaptiveAvgPool1d", (3,), {}, (2, 3, 10)),
    ("AdaptiveAvgPool2d", ((None, 3),), {}, (2, 3, 7, 10)),
    ("AdaptiveAvgPool3d", (2,), {}, (1, 2, 5, 4, 5)),
    ("AdaptiveMaxPool1d", (4,), {}, (2, 3, 10)),
    ("AdaptiveMaxPool2d", (3,), {}, (3, 7, 10)),
    ("AdaptiveMaxPool3d", ((2, None, 1),), {}, (1, 2, 5, 4, 5)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", LAYERS)
def test_layer_matches_torch(name, args, kwargs, shape):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(tnn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    for attr in ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "count_include_pad",
                 "divisor_override", "output_size", "return_indices"):
        assert getattr(ours, attr, None) == getattr(theirs, attr, None), attr
    assert ours.state_dict() == {} and list(ours.parameters()) == []
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    compare(ours, theirs, [x])


@pytest.mark.parametrize("nsp,shape", [(1, (2, 3, 9)), (2, (2, 3, 7, 9)), (3, (1, 2, 5, 4, 6))])
def test_max_pool_and_unpool_layers_roundtrip_like_torch(nsp, shape):
    pool = getattr(nn, f"MaxPool{nsp}d")(2, return_indices=True)
    tpool = getattr(tnn, f"MaxPool{nsp}d")(2, return_indices=True)
    unpool, tunpool = getattr(nn, f"MaxUnpool{nsp}d")(2), getattr(tnn, f"MaxUnpool{nsp}d")(2)
    assert repr(unpool) == repr(tunpool)
    assert (unpool.kernel_size, unpool.stride, unpool.padding) == (tunpool.kernel_size, tunpool.stride,
                                                                   tunpool.padding)
    x = np.random.default_rng(nsp).standard_normal(shape)
    y, idx = pool(x)
    ty, tidx = tpool(torch.tensor(x))
    np.testing.assert_array_equal(idx.data, tidx.numpy())
    compare(lambda t, i: unpool(t, i, output_size=shape), lambda t, i: tunpool(t, i, output_size=shape),
            [y.data, idx.data])


def test_adaptive_max_pool_layer_returns_indices():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 5))
    y, idx = nn.AdaptiveMaxPool2d((3, 2), return_indices=True)(x)
    _, tidx = tnn.AdaptiveMaxPool2d((3, 2), return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(idx.data, tidx.numpy())


@pytest.mark.parametrize("flatten,shape,expected", [
    (False, (2, 3, 5, 4), (2, 3, 1, 1)),
    (True, (2, 3, 5, 4), (2, 3)),
    (True, (3, 5, 4), (3,)),
])
def test_global_avg_pool_layer(flatten, shape, expected):
    layer = nn.GlobalAvgPool2d(flatten=flatten)
    assert repr(layer) == f"GlobalAvgPool2d(flatten={flatten})"
    x = convkit.tensor(np.random.default_rng(1).standard_normal(shape), requires_grad=True)
    y = layer(x)
    assert y.shape == expected
    np.testing.assert_allclose(y.data.reshape(-1), x.data.reshape(x.shape[:-2] + (-1,)).mean(-1).reshape(-1))
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(shape, 1 / 20))
