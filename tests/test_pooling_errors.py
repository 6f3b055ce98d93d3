"""Bad pooling arguments: convkit raises ValueError/TypeError naming the argument,
and torch rejects the same call (``raises_like_torch``) where it has the rule."""

import numpy as np
import pytest
from oracle import raises_like_torch, torch

import convkit.functional as F
import convkit.nn as nn

TF = torch.nn.functional
X = np.zeros((2, 3, 6, 6))


def both(name, *args, **kwargs):
    """The same call on convkit (ndarray inputs) and torch (tensors)."""
    def to_torch(a):
        return torch.tensor(a) if isinstance(a, np.ndarray) else a
    return (lambda: getattr(F, name)(*args, **kwargs),
            lambda: getattr(TF, name)(*[to_torch(a) for a in args], **kwargs))


@pytest.mark.parametrize("call,message", [
    (both("max_pool2d", X[0, 0], 2), "input must be 3-D (C, H, W) or 4-D"),
    (both("max_pool1d", X, 2), "input must be 2-D (C, L) or 3-D"),
    (both("max_pool2d", X, 0), "kernel_size must be >= 1"),
    (both("max_pool2d", X, 2, 0), "stride must be >= 1"),
    (both("max_pool2d", X, 2, 1, 0, 0), "dilation must be >= 1"),
    (both("max_pool3d", X[None], 2, 1, -1), "padding must be >= 0"),
    (both("max_pool2d", X, 3, 1, 2), "padding should be at most half of kernel_size"),
    (both("max_pool1d", X[0], 2, padding=2, dilation=3), "padding should be at most half"),
    (both("max_pool2d", X, 7), "input too small"),
    (both("max_pool2d", X, 2, 1, 0, 6), "input too small"),
    (both("max_pool2d", X, (2, 2, 2)), "kernel_size must be an int or a tuple of 2 ints"),
    (both("avg_pool2d", X, 3, padding=2), "padding should be at most half"),
    (both("avg_pool1d", X[0], 7), "input too small"),
    (both("avg_pool2d", X, 2, divisor_override=0), "divisor_override must not be zero"),
    (both("avg_pool2d", X, 2, divisor_override=1.5), "divisor_override must be an int"),
    (both("avg_pool3d", np.zeros((1, 1, 3, 3, 3)), 4, 1, 2), "smaller than kernel_size"),
    (both("adaptive_avg_pool2d", X, -1), "output_size entries must be >= 0"),
    (both("adaptive_max_pool2d", X, (2, 3, 4)), "output_size must be an int or a tuple of 2"),
    (both("adaptive_avg_pool1d", X[0], 2.5), "output_size must be an int"),
    (both("adaptive_avg_pool2d", np.zeros((2, 3, 0, 4)), 2), "empty channel or spatial dimension"),
])
def test_bad_arguments_raise_like_torch(call, message):
    assert message in raises_like_torch(*call)


def pooled():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5))
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    return y.data, idx.data


@pytest.mark.parametrize("args,kwargs,message", [
    (lambda y, i: (y, i, 2), {}, "indices must lie in [0, 16)"),                    # indices of a 5x5 plane
    (lambda y, i: (y, i, 2), {"output_size": (6, 6)}, "invalid output_size"),
    (lambda y, i: (y, i, 2), {"output_size": (2, 2)}, "must be between 2 and 6"),
    (lambda y, i: (y, i, 2), {"output_size": (5,)}, "output_size must hold 2 (or 4) sizes"),
    (lambda y, i: (y, i.astype(np.float64), 2), {}, "indices must be integers"),
    (lambda y, i: (y, i[:, :, :1], 2), {}, "indices must have the input's shape"),
    (lambda y, i: (y, i - 1, 2), {"output_size": (5, 5)}, "indices must lie in [0, 25)"),
])
def test_bad_unpool_arguments(args, kwargs, message):
    y, idx = pooled()
    ck_args = args(y, idx)
    th_args = [torch.tensor(a) for a in ck_args[:2]] + list(ck_args[2:])
    got = raises_like_torch(lambda: F.max_unpool2d(*ck_args, **kwargs),
                            lambda: TF.max_unpool2d(*th_args, **kwargs))
    assert message in got


def test_convkit_only_checks():
    y, idx = pooled()
    with pytest.raises(ValueError, match="output size .* is empty"):
        F.max_unpool2d(y[..., :1, :1], idx[..., :1, :1], 2, padding=1)
    with pytest.raises(TypeError, match="output_size must be a tuple of ints"):
        F.max_unpool2d(y, idx, 2, output_size=5)
    with pytest.raises(TypeError, match="input must be a Tensor or ndarray"):
        F.max_pool2d("image", 2)
    with pytest.raises(ValueError, match="empty channel"):
        F.avg_pool2d(np.zeros((2, 0, 4, 4)), 2)
    # int32 indices are accepted (torch insists on int64) and give the same result
    np.testing.assert_array_equal(F.max_unpool2d(y, idx.astype(np.int32), 2, output_size=(5, 5)).data,
                                  F.max_unpool2d(y, idx, 2, output_size=(5, 5)).data)


@pytest.mark.parametrize("build,exc,message", [
    (lambda: nn.MaxPool2d(3, padding=2), ValueError, "MaxPool2d: padding should be at most half"),
    (lambda: nn.MaxPool1d(0), ValueError, "MaxPool1d: kernel_size must be >= 1"),
    (lambda: nn.MaxPool3d(2, dilation=(1, 2)), TypeError, "MaxPool3d: dilation must be an int or a tuple of 3"),
    (lambda: nn.AvgPool2d(2, stride=0), ValueError, "AvgPool2d: stride must be >= 1"),
    (lambda: nn.AvgPool3d(2, divisor_override=0), ValueError, "AvgPool3d: divisor_override must not be zero"),
    (lambda: nn.AvgPool1d(2, padding=-1), ValueError, "AvgPool1d: padding must be >= 0"),
    (lambda: nn.MaxUnpool2d((2, 2, 2)), TypeError, "MaxUnpool2d: kernel_size must be an int or a tuple of 2"),
])
def test_layers_check_arguments_when_built(build, exc, message):
    with pytest.raises(exc) as info:
        build()
    assert message in str(info.value)
