"""nn.init: PyTorch's formulas for bounds and standard deviations, checked on large samples."""

import math

import numpy as np
import pytest
from oracle import torch

import convkit
from convkit.nn import init


@pytest.fixture(autouse=True)
def seeded():
    convkit.manual_seed(0)


def weight(shape=(64, 32, 5, 5)):
    return np.zeros(shape, dtype=np.float32)


def test_fans_and_gains_match_torch():
    w = torch.empty(64, 32, 5, 5)
    assert init._fans(weight()) == torch.nn.init._calculate_fan_in_and_fan_out(w)
    for name, param in [("relu", None), ("tanh", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)),
                        ("linear", None), ("conv2d", None), ("sigmoid", None), ("selu", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming(mode):
    w = weight()
    fan = 32 * 25 if mode == "fan_in" else 64 * 25
    init.kaiming_uniform_(w, a=0.0, mode=mode, nonlinearity="relu")
    bound = math.sqrt(2.0) * math.sqrt(3.0 / fan)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    init.kaiming_normal_(w, mode=mode, nonlinearity="relu")
    assert w.std() == pytest.approx(math.sqrt(2.0 / fan), rel=0.02)
    assert w.dtype == np.float32


def test_xavier_and_default_conv_init():
    w = weight()
    init.xavier_uniform_(w, gain=2.0)
    bound = 2.0 * math.sqrt(6.0 / (32 * 25 + 64 * 25))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    init.xavier_normal_(w)
    assert w.std() == pytest.approx(math.sqrt(2.0 / (32 * 25 + 64 * 25)), rel=0.02)
    # PyTorch's default for Conv/Linear, kaiming_uniform_(a=sqrt(5)), is U(+-1/sqrt(fan_in)).
    init.kaiming_uniform_(w, a=math.sqrt(5))
    assert np.abs(w).max() <= 1 / math.sqrt(32 * 25)
    assert np.abs(w).max() > 0.99 / math.sqrt(32 * 25)


def test_constant_fills_work_on_parameters_and_are_reproducible():
    p = convkit.nn.Parameter(np.ones((3, 3), dtype=np.float32))
    init.zeros_(p)
    assert not p.data.any()
    init.ones_(p)
    assert (p.data == 1).all()
    init.constant_(p, 0.5)
    assert (p.data == 0.5).all()
    convkit.manual_seed(7)
    a = init.normal_(weight((4, 4))).copy()
    convkit.manual_seed(7)
    np.testing.assert_array_equal(a, init.normal_(weight((4, 4))))


def test_errors():
    with pytest.raises(ValueError, match="at least|>= 2 dimensions"):
        init.kaiming_uniform_(np.zeros(5))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(weight(), mode="fan_avg")
    init.kaiming_uniform_(np.zeros((0, 3)))  # empty: nothing to fill, no error
