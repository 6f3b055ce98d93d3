"""What equivariance and invariance checks must show, with numbers, and the symmetric constructions.

Facts (conv-arithmetic reference §4.11): circular stride-1 convolution is
equivariant to every circular shift, zero padding breaks it only at the
borders, stride s keeps only shifts by multiples of s (moving the output
by t/s), and so does 2×2 max pooling; a circular conv net ending in global
average pooling is shift-invariant; a conv commutes with a rotation or flip
exactly when its kernel is symmetric under it. All in float64, where
round-off is about 1e-16.
"""

import numpy as np
import pytest

import convkit
import convkit.functional as F
import convkit.nn as nn
from convkit.symmetry import (C4, D4, Flip, Flips, Group, GroupAveraged, GroupPooled, Identity, Rot90, Shift,
                              Shifts, SymmetricConv2d, check, default_tolerance, equivariance_error,
                              invariance_error)

F64 = np.float64


@pytest.fixture(autouse=True)
def seeded():
    convkit.manual_seed(0)


def _x(*shape, dtype=F64):
    return np.random.default_rng(1).standard_normal(shape).astype(dtype)


def _conv(k=3, padding=1, mode="circular", stride=1, c_in=2, c_out=3):
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, padding_mode=mode, dtype=F64)


def _odd(g):
    return any(t % 2 for t in g.shift)


# ----------------------------------------------------------------- shifts
def test_circular_conv_is_equivariant_to_every_circular_shift():
    result = check(_conv(), Shifts(8, 8), _x(2, 2, 8, 8))
    assert result.passed and len(result.errors) == 64
    assert result.max_error < 1e-14


def test_zero_padding_breaks_equivariance_at_the_borders_only():
    conv, x = _conv(mode="zeros"), _x(1, 2, 12, 12)
    g = Shift(2, 3)
    assert equivariance_error(conv, g, x) > 1e-1
    shifted_out, out_shifted = conv(g(x)).data, g(conv(x).data)
    interior = (..., slice(3, 11), slice(4, 11))  # rows/cols whose windows see no padding or wrap-around
    np.testing.assert_allclose(shifted_out[interior], out_shifted[interior], rtol=0, atol=1e-14)
    assert np.abs(shifted_out - out_shifted).max() > 1e-1
    # A zero-filled shift leaves the same interior intact too.
    z = Shift(2, 3, circular=False)
    np.testing.assert_allclose(conv(z(x)).data[interior], z(conv(x).data)[interior], rtol=0, atol=1e-14)
    assert equivariance_error(conv, z, x) > 1e-1


def test_stride_two_is_equivariant_to_even_shifts_only():
    conv, x = _conv(stride=2), _x(1, 2, 8, 8)
    result = check(conv, Shifts(8, 8), x)
    odd = [g for g in result.elements if _odd(g)]
    assert {g for g, _ in result.failures} == set(odd) and len(odd) == 48
    assert max(result.error(g) for g in result.elements if not _odd(g)) < 1e-14
    assert min(result.error(g) for g in odd) > 1e-2
    assert "not a multiple of the output stride (2, 2)" in repr(result)
    # The output moves by t / s, and asking for an odd shift's image is an error.
    assert equivariance_error(conv, Shift(2, 4), x, Shift(1, 2)) < 1e-14
    assert equivariance_error(conv, Shift(2, 4), x, output_stride=2) < 1e-14
    with pytest.raises(ValueError, match=r"shift \(1, 0\) is not a multiple of the stride \(2, 2\)"):
        equivariance_error(conv, Shift(1, 0), x, output_stride=2)


def test_max_pooling_two_by_two_keeps_even_shifts_only():
    x = _x(1, 2, 8, 8)
    result = check(nn.MaxPool2d(2), Shifts(8, 8), x)
    assert {g for g, _ in result.failures} == {g for g in result.elements if _odd(g)}
    assert max(result.error(g) for g in result.elements if not _odd(g)) == 0.0
    assert min(e for _, e in result.failures) > 1e-2
    assert equivariance_error(nn.MaxPool2d(2), Shift(2, 0), x, Shift(1, 0)) == 0.0


def _gap_net(mode):
    return nn.Sequential(_conv(mode=mode, c_out=4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1, padding_mode=mode,
                         dtype=F64), nn.ReLU(), nn.GlobalAvgPool2d(flatten=True), nn.Linear(4, 3, dtype=F64))


def test_circular_conv_net_with_global_average_pooling_is_shift_invariant():
    x = _x(2, 2, 8, 8)
    result = check(_gap_net("circular"), Shifts(8, 8), x, invariant=True)
    assert result.passed and result.max_error < 1e-13
    assert check(_gap_net("zeros"), Shifts(8, 8), x, invariant=True).max_error > 1e-3


# ------------------------------------------------------ flips and rotations
def _c4_kernel(c_out=3, c_in=2, k=3):
    w = _x(c_out, c_in, k, k)
    return sum(Rot90(r)(w) for r in range(4)) / 4


def test_conv_with_rotation_symmetric_kernel_is_c4_equivariant():
    x, w = _x(1, 2, 9, 9), _c4_kernel()
    assert check(lambda t: F.conv2d(t, w, padding=1), C4, x).max_error < 1e-14
    asymmetric = _x(3, 2, 3, 3)
    result = check(lambda t: F.conv2d(t, asymmetric, padding=1), C4, x)
    assert [g for g, _ in result.failures] == [Rot90(1), Rot90(2), Rot90(3)]
    assert min(e for _, e in result.failures) > 1e-1
    # The kernel transforms with the input: (R x) * w == R(x * R^-1 w).
    r = Rot90(1)
    np.testing.assert_allclose(F.conv2d(r(x), asymmetric, padding=1).data,
                               r(F.conv2d(x, r.inverse()(asymmetric), padding=1).data), rtol=0, atol=1e-14)


def test_conv_with_flip_symmetric_kernel_is_flip_equivariant():
    x = _x(1, 2, 7, 7)
    w0 = _x(3, 2, 3, 3)
    w = (w0 + Flip("w")(w0)) / 2
    assert equivariance_error(lambda t: F.conv2d(t, w, padding=1), Flip("w"), x) < 1e-14
    assert equivariance_error(lambda t: F.conv2d(t, w, padding=1), Flip("h"), x) > 1e-1
    assert equivariance_error(lambda t: F.conv2d(t, w0, padding=1), Flip("w"), x) > 1e-1


def test_even_kernel_with_same_padding_breaks_flips_but_symmetric_padding_does_not():
    x = _x(1, 2, 8, 8)
    same = SymmetricConv2d(2, 3, 4, "flips", padding="same", dtype=F64)          # pads (1, 2): asymmetric
    assert check(same, Flips, x).max_error > 1e-1
    symmetric = SymmetricConv2d(2, 3, 4, "flips", padding=2, dtype=F64)         # 8 -> 9, pads (2, 2)
    assert check(symmetric, Flips, x).max_error < 1e-14


def test_symmetric_conv2d_is_equivariant_to_its_group():
    x = _x(2, 2, 8, 8)
    for symmetry, group in (("c4", C4), ("d4", D4), ("flips", Flips)):
        conv = SymmetricConv2d(2, 3, 3, symmetry, padding=1, dtype=F64)
        assert check(conv, group, x).max_error < 1e-14, symmetry
    assert not check(SymmetricConv2d(2, 3, 3, "flip_w", padding=1, dtype=F64), C4, x).passed


def test_symmetric_conv2d_gradient_is_the_group_average():
    conv = SymmetricConv2d(2, 3, 3, "d4", padding=1, dtype=F64)
    x = _x(2, 2, 6, 6)
    upstream = _x(2, 3, 6, 6)
    conv(x).backward(upstream)
    tied = convkit.tensor(conv.symmetric_weight.data, requires_grad=True)
    F.conv2d(x, tied, conv.bias, padding=1).backward(upstream)
    expected = sum(g.inverse()(tied.grad) for g in D4) / 8
    np.testing.assert_allclose(conv.weight.grad, expected, rtol=1e-12, atol=1e-14)
    assert np.abs(conv.weight.grad).max() > 1e-3


def test_symmetric_conv2d_loads_a_conv2d_state_dict():
    plain = nn.Conv2d(2, 3, 3, padding=1, dtype=F64)
    sym = SymmetricConv2d(2, 3, 3, "c4", padding=1, dtype=F64)
    sym.load_state_dict(plain.state_dict())
    np.testing.assert_array_equal(sym.weight.data, plain.weight.data)
    assert "symmetry=C4" in repr(sym)


def test_symmetric_conv2d_bad_arguments():
    with pytest.raises(ValueError, match="symmetry must be one of flip_h, flip_w, flips, c2, c4, d4"):
        SymmetricConv2d(1, 1, 3, "c8")
    with pytest.raises(ValueError, match=r"square kernel, got kernel_size=\(3, 5\)"):
        SymmetricConv2d(1, 1, (3, 5), "c4")
    with pytest.raises(ValueError, match="rotations and reflections only"):
        SymmetricConv2d(1, 1, 3, Shifts(3, 3))
    assert SymmetricConv2d(1, 1, (3, 5), "flips").symmetric_weight.shape == (1, 1, 3, 5)


# ------------------------------------------------------ invariant by construction
def _zero_padded_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, dtype=F64), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64, 5, dtype=F64))


@pytest.mark.parametrize("group", [D4, Shifts(8, 8, stride=2)], ids=["D4", "even-shifts"])
def test_group_averaged_is_exactly_invariant(group):
    net, x = _zero_padded_net(), _x(2, 1, 8, 8)
    assert check(net, group, x, invariant=True).max_error > 1e-2
    averaged = GroupAveraged(net, group)
    result = check(averaged, group, x, invariant=True)
    assert result.passed and result.max_error < 1e-13
    assert "group=" in repr(averaged) and len(list(averaged.parameters())) == 4


def test_group_pooled_turns_an_equivariant_model_invariant():
    x = _x(2, 1, 8, 8)
    equivariant = nn.Sequential(SymmetricConv2d(1, 3, 3, "c4", padding=1, padding_mode="circular", dtype=F64),
                                nn.ReLU())
    for reduction in ("mean", "max"):
        pooled = GroupPooled(equivariant, C4, reduction)
        assert check(pooled, C4, x, invariant=True).max_error < 1e-14
    not_equivariant = GroupPooled(nn.Conv2d(1, 3, 3, padding=1, dtype=F64), C4)
    assert check(not_equivariant, C4, x, invariant=True).max_error > 1e-2
    shifts = GroupPooled(_conv(c_in=1), Shifts(8, 8), "max")
    assert check(shifts, Shifts(8, 8), x, invariant=True).max_error < 1e-14


def test_group_pooled_gradient_flows():
    conv = SymmetricConv2d(1, 2, 3, "c4", padding=1, dtype=F64)
    GroupPooled(conv, C4, "max")(_x(1, 1, 6, 6)).sum().backward()
    assert conv.weight.grad.shape == (2, 1, 3, 3) and np.abs(conv.weight.grad).max() > 0


def test_group_layers_bad_arguments():
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'max', got 'sum'"):
        GroupPooled(nn.ReLU(), C4, "sum")
    with pytest.raises(TypeError, match="group must be a Group"):
        GroupAveraged(nn.ReLU(), [Rot90(1)])
    with pytest.raises(TypeError, match="model must be callable"):
        GroupAveraged(3, C4)
    with pytest.raises(ValueError, match="zero-filled shift, not a permutation"):
        GroupPooled(nn.ReLU(), Group([Identity(), Shift(1, 0, circular=False)]))(_x(1, 1, 4, 4))


# ---------------------------------------------------------- the measure itself
def test_round_off_floor_and_default_tolerances():
    x32 = _x(1, 2, 16, 16, dtype=np.float32)
    conv32 = nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular", dtype=np.float32)
    result = check(conv32, Shifts(16, 16, stride=4), x32)
    assert result.passed and result.atol == 1e-4 and result.dtype == np.float32
    assert result.max_error < 1e-6
    assert (default_tolerance(np.float64), default_tolerance(np.float32), default_tolerance(np.int64)) == \
        (1e-10, 1e-4, 0.0)


def test_errors_are_relative_to_the_largest_output():
    x = _x(1, 1, 4, 4)
    double = lambda t: 2 * t  # noqa: E731
    assert invariance_error(double, Shift(0, 1), x) == pytest.approx(
        np.abs(Shift(0, 1)(x) - x).max() / np.abs(x).max())
    zeros = lambda t: 0 * t  # noqa: E731
    assert invariance_error(zeros, Rot90(1), x) == 0.0


def test_check_result_api_and_repr():
    result = check(_conv(mode="zeros"), [Identity(), Shift(0, 1), Rot90(2)], _x(1, 2, 6, 6))
    assert not result and not result.passed
    assert [g for g, _ in result.failures] == [Shift(0, 1), Rot90(2)]
    assert result.error(Identity()) == 0.0
    text = repr(result)
    assert text.startswith("equivariance under 3 actions: FAIL (2 of 3 elements)")
    assert "Identity()" in text and "Shift(0, 1)" in text and "FAIL" in text
    with pytest.raises(KeyError, match="was not checked"):
        result.error(Rot90(1))


def test_check_and_errors_reject_bad_input():
    conv, x = _conv(), _x(1, 2, 6, 6)
    with pytest.raises(TypeError, match="f must be callable"):
        check("conv", C4, x)
    with pytest.raises(TypeError, match="x must be a Tensor or an ndarray"):
        equivariance_error(conv, Rot90(1), x.tolist())
    with pytest.raises(TypeError, match="g_in must be an Action"):
        equivariance_error(conv, "rot90", x)
    with pytest.raises(TypeError, match="group element 1 must be an Action"):
        check(conv, [Identity(), 2], x)
    with pytest.raises(ValueError, match=r"output has shape \(1, 3\).*ask for invariance"):
        check(nn.Sequential(nn.Flatten(), nn.Linear(72, 3, dtype=F64)), C4, x)
    with pytest.raises(ValueError, match="atol must be a finite number >= 0"):
        check(conv, C4, x, atol=-1)
    with pytest.raises(ValueError, match=r"quarter turn needs a square map, but x has a 6x5 map"):
        check(conv, C4, _x(1, 2, 6, 5))
    with pytest.raises(ValueError, match="output_stride must be a positive int"):
        equivariance_error(conv, Shift(1, 0), x, output_stride=0)
    with pytest.raises(ValueError, match="give g_out or output_stride, not both"):
        equivariance_error(conv, Shift(2, 0), x, Shift(1, 0), output_stride=2)
    with pytest.raises(ValueError, match="group has no elements"):
        check(conv, [], x)
