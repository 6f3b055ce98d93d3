"""A (leaky) ReLU computed in the pass of the convolution or batch norm before it (``relu_slope``).

The fused call must equal the two ops one after the other, bit for bit,
forward and backward, and both must match torch; ``nn.Sequential`` fuses
exactly the pairs it may.
"""

from __future__ import annotations

import numpy as np
import pytest

import convkit
import convkit.functional as F
import convkit.nn as nn
from oracle import compare

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SLOPES = [0.0, 0.01, 0.3]


def _activate(y, slope):
    return F.relu(y) if slope == 0 else F.leaky_relu(y, slope)


def _torch_activate(y, slope):
    return TF.relu(y) if slope == 0 else TF.leaky_relu(y, slope)


def _grads(fn, arrays, cot):
    """Output and the gradient of every input, for one cotangent."""
    ts = [convkit.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(cot)
    return [out.data] + [t.grad for t in ts]


def _assert_same_bits(fused, separate, arrays, seed=0):
    cot = None
    ts = [convkit.tensor(a) for a in arrays]
    with convkit.no_grad():
        shape, dtype = separate(*ts).shape, arrays[0].dtype
    cot = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    for a, b in zip(_grads(fused, arrays, cot), _grads(separate, arrays, cot)):
        np.testing.assert_array_equal(a, b)


CONV_CASES = [  # (input shape, weight shape, options)
    ((2, 3, 9, 8), (4, 3, 3, 3), dict(padding=1)),
    ((1, 4, 7, 7), (4, 1, 3, 3), dict(padding=1, groups=4)),                   # depthwise: direct
    ((3, 2, 10, 10), (5, 2, 5, 5), dict(stride=2, padding=2, dilation=1)),
    ((2, 2, 12, 12), (3, 2, 3, 3), dict(padding=1, padding_mode="reflect")),
    ((2, 16, 16, 16), (16, 16, 3, 3), dict(padding=1, algorithm="winograd")),
    ((1, 2, 20, 20), (2, 2, 9, 9), dict(algorithm="fft")),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", SLOPES)
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv2d_ending_in_relu_equals_conv_then_relu(case, slope, dtype):
    xs, ws, opts = CONV_CASES[case]
    rng = np.random.default_rng(case)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, ws[:1]))
    _assert_same_bits(lambda x, w, b: F.conv2d(x, w, b, relu_slope=slope, **opts),
                      lambda x, w, b: _activate(F.conv2d(x, w, b, **opts), slope), [x, w, b])


@pytest.mark.parametrize("slope", SLOPES)
def test_conv_without_bias_1d_3d_and_true_convolution(slope):
    rng = np.random.default_rng(1)
    x1, w1 = rng.standard_normal((2, 3, 11)), rng.standard_normal((2, 3, 4))
    _assert_same_bits(lambda x, w: F.conv1d(x, w, padding="same", relu_slope=slope),
                      lambda x, w: _activate(F.conv1d(x, w, padding="same"), slope), [x1, w1])
    x3, w3 = rng.standard_normal((1, 2, 5, 6, 4)), rng.standard_normal((3, 2, 2, 3, 2))
    _assert_same_bits(lambda x, w: F.conv3d(x, w, relu_slope=slope),
                      lambda x, w: _activate(F.conv3d(x, w), slope), [x3, w3])
    x2, w2 = rng.standard_normal((2, 5, 5)), rng.standard_normal((1, 2, 2, 2))  # unbatched
    _assert_same_bits(lambda x, w: F.convolve2d(x, w, relu_slope=slope),
                      lambda x, w: _activate(F.convolve2d(x, w), slope), [x2, w2])


@pytest.mark.parametrize("slope", SLOPES)
def test_fused_conv_matches_torch(slope):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((3, 4, 9, 9)), rng.standard_normal((6, 4, 3, 3)), rng.standard_normal(6)
    compare(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, relu_slope=slope),
            lambda x, w, b: _torch_activate(TF.conv2d(x, w, b, stride=2, padding=1), slope), [x, w, b])


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf * 0 in the weight gradient
def test_nan_and_inf_pass_the_fused_activation_as_they_pass_relu():
    x = np.array([[[[np.nan, -np.inf, np.inf, -0.0, 0.0, -2.0, 3.0]]]], dtype=np.float32)
    w = np.ones((1, 1, 1, 1), np.float32)
    for slope in SLOPES:
        _assert_same_bits(lambda x, w: F.conv2d(x, w, relu_slope=slope),
                          lambda x, w: _activate(F.conv2d(x, w), slope), [x, w])
        fused = F.conv2d(x, w, relu_slope=slope).data
        expect = _torch_activate(torch.from_numpy(x), slope).numpy()
        np.testing.assert_array_equal(fused, expect)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", SLOPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_ending_in_relu_equals_batch_norm_then_relu(training, slope, dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 3, 5, 7)) * 2 + 1).astype(dtype)
    gamma, beta = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
    stats = [rng.random(3).astype(dtype), rng.random(3).astype(dtype) + 0.5]

    def bn(x, gamma, beta, slope=None):
        mean, var = (s.astype(x.dtype) for s in stats)  # fresh buffers each call: training updates them
        return F.batch_norm(x, mean, var, gamma, beta, training, 0.1, 1e-5, relu_slope=slope)

    _assert_same_bits(lambda *a: bn(*a, slope=slope), lambda *a: _activate(bn(*a), slope), [x, gamma, beta])
    compare(lambda *a: bn(*a, slope=slope),
            lambda x, g, b: _torch_activate(TF.batch_norm(x, torch.tensor(stats[0]).double(),
                                                          torch.tensor(stats[1]).double(), g, b, training,
                                                          0.1, 1e-5), slope),
            [a.astype(np.float64) for a in (x, gamma, beta)])


def _bn_cnn(slope_a=0.0, slope_b=0.1):
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1), nn.LeakyReLU(slope_b),
        nn.Conv2d(4, 3, 3, bias=False), nn.BatchNorm2d(3), nn.LeakyReLU(slope_a),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 3 * 3, 5),
    )


@pytest.mark.parametrize("slopes", [(0.0, 0.1), (0.2, -0.5)])
def test_sequential_fuses_and_equals_calling_each_module(slopes):
    convkit.manual_seed(0)
    model = _bn_cnn(*slopes)
    x = np.random.default_rng(4).standard_normal((6, 2, 8, 8)).astype(np.float32)

    def each(x):
        for m in model:
            x = m(x)
        return x

    _assert_same_bits(lambda x: model(x), each, [x])


def test_sequential_fuses_only_marked_pairs():
    calls = []

    class Shifted(nn.Conv2d):  # overrides forward: must run as written
        def forward(self, input):
            calls.append("shifted")
            return super().forward(input) + 1.0

    class Logged(nn.ReLU):
        def forward(self, input):
            calls.append("logged")
            return super().forward(input)

    assert nn.module.fused_relu_slope(nn.Conv2d(1, 1, 1), nn.ReLU()) == 0.0
    assert nn.module.fused_relu_slope(nn.BatchNorm2d(1), nn.LeakyReLU(0.2)) == 0.2
    assert nn.module.fused_relu_slope(nn.BatchNorm2d(1), nn.LeakyReLU(-0.2)) is None
    assert nn.module.fused_relu_slope(nn.ConvTranspose2d(1, 1, 1), nn.ReLU()) is None
    assert nn.module.fused_relu_slope(nn.Linear(1, 1), nn.ReLU()) is None
    assert nn.module.fused_relu_slope(Shifted(1, 1, 1), nn.ReLU()) is None
    assert nn.module.fused_relu_slope(nn.Conv2d(1, 1, 1), Logged()) is None
    convkit.manual_seed(0)
    model = nn.Sequential(Shifted(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 1), Logged())
    x = -np.ones((1, 1, 4, 4), np.float32)
    out = model(x)
    assert calls == ["shifted", "logged"]
    h = F.relu(F.conv2d(x, model[0].weight, model[0].bias) + 1.0)
    np.testing.assert_array_equal(out.data, F.relu(F.conv2d(h, model[2].weight, model[2].bias)).data)


@pytest.mark.parametrize("bad, exc", [(-0.1, ValueError), (float("inf"), ValueError), (float("nan"), ValueError),
                                      (True, TypeError), ("relu", TypeError)])
def test_bad_relu_slope_is_refused_naming_the_argument(bad, exc):
    x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
    with pytest.raises(exc, match="conv2d: relu_slope"):
        F.conv2d(x, w, relu_slope=bad)
    with pytest.raises(exc, match="batch_norm: relu_slope"):
        F.batch_norm(x, None, None, training=True, relu_slope=bad)
