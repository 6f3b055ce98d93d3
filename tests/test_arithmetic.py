"""convkit.analysis.arithmetic: output sizes against torch, padding solvers, receptive-field recurrences by hand."""

import itertools

import numpy as np
import pytest
from oracle import torch

from convkit.analysis import (conv_output_size, conv_transpose_output_size, output_padding_for, padding_for,
                              pool_output_size, receptive_field, same_padding)

TF = torch.nn.functional


def _draws(seed, count):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n, k = int(rng.integers(1, 30)), int(rng.integers(1, 8))
        yield n, k, int(rng.integers(1, 5)), int(rng.integers(0, 4)), int(rng.integers(1, 4))


def test_conv_output_size_matches_torch_for_random_settings():
    checked = 0
    for n, k, s, p, d in _draws(0, 300):
        if n + 2 * p < d * (k - 1) + 1:
            with pytest.raises(ValueError, match="kernel.* is larger than the .* padded input"):
                conv_output_size(n, k, s, p, d)
            continue
        expected = TF.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p, dilation=d).shape[-1]
        assert conv_output_size(n, k, s, p, d) == expected
        checked += 1
    assert checked > 150


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv_output_size_padding_forms():
    # (lo, hi) pairs: floor((n + lo + hi - d(k-1) - 1) / s) + 1
    assert conv_output_size(10, 3, 2, (0, 1)) == (10 + 0 + 1 - 2 - 1) // 2 + 1
    assert conv_output_size(10, 3, padding="valid") == 8
    for k, d in [(4, 1), (2, 1), (3, 2), (4, 3), (5, 1)]:
        assert conv_output_size(13, k, padding="same", dilation=d) == 13
        # a kernel that picks its first tap shows torch's left padding as leading zeros
        first_tap = torch.zeros(1, 1, k, dtype=torch.float64)
        first_tap[..., 0] = 1
        out = TF.conv1d(torch.arange(1.0, 14.0, dtype=torch.float64).reshape(1, 1, 13), first_tap,
                        padding="same", dilation=d)
        assert int((out[0, 0] == 0).sum()) == same_padding(k, d)[0]
    with pytest.raises(ValueError, match="stride=2"):
        conv_output_size(13, 3, 2, "same")


def test_pool_output_size_matches_torch_in_both_modes():
    checked = 0
    for n, k, s, p, d in _draws(1, 400):
        p = min(p, k // 2)
        for ceil in (False, True):
            try:
                expected = TF.max_pool1d(torch.zeros(1, 1, n), k, s, p, d, ceil_mode=ceil).shape[-1]
            except RuntimeError:
                with pytest.raises(ValueError, match="window spans"):
                    pool_output_size(n, k, s, p, d, ceil)
                continue
            assert pool_output_size(n, k, s, p, d, ceil) == expected, (n, k, s, p, d, ceil)
            checked += 1
    assert checked > 400


@pytest.mark.parametrize("args,floor,ceil", [
    ((6, 1, 2, 0), 3, 3),    # the raw ceil gives 4: the last window would start in the right padding
    ((5, 2, 2, 1), 3, 3),    # pytorch#45357 / burn#5791
    ((25, 2, 2, 0), 12, 13),
    ((7, 2, 3, 0), 2, 3),
])
def test_pool_output_size_ceil_mode_corner_cases(args, floor, ceil):
    assert pool_output_size(*args) == floor
    assert pool_output_size(*args, ceil_mode=True) == ceil


def test_pool_output_size_rejects_padding_over_half_the_kernel():
    with pytest.raises(ValueError, match="padding must be at most kernel // 2 = 1"):
        pool_output_size(10, 3, padding=2)
    assert pool_output_size(10, 4) == 2  # stride defaults to the kernel


def test_conv_transpose_output_size_matches_torch():
    for n, k, s, p, d in _draws(2, 200):
        for op in range(max(s, d)):
            expected = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
            if expected < 1:
                continue
            out = TF.conv_transpose1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p,
                                      output_padding=op, dilation=d)
            assert conv_transpose_output_size(n, k, s, p, op, d) == out.shape[-1] == expected
    with pytest.raises(ValueError, match="smaller than either stride"):
        conv_transpose_output_size(5, 3, stride=2, output_padding=2)


def test_same_padding_torch_mode_puts_the_extra_element_last():
    assert same_padding(4) == (1, 2)
    assert same_padding(2) == (0, 1)
    assert same_padding(3, dilation=2) == (2, 2)
    assert same_padding(4, dilation=3) == (4, 5)
    # the fixed total d(k-1) with stride 2 gives floor((n-1)/s) + 1 outputs
    assert conv_output_size(9, 3, 2, same_padding(3, stride=2)) == (9 - 1) // 2 + 1


def test_same_padding_tf_mode_gives_ceil_n_over_s():
    assert same_padding(7, stride=2, n=224, mode="tf") == (2, 3)
    assert same_padding(3, stride=2, n=6, mode="tf") == (0, 1)
    assert same_padding(3, stride=2, n=5, mode="tf") == (1, 1)
    for n, k, s, d in itertools.product(range(1, 12), range(1, 6), range(1, 4), range(1, 3)):
        pads = same_padding(k, d, s, n, mode="tf")
        assert conv_output_size(n, k, s, pads, d) == -(-n // s)
        assert pads[1] - pads[0] in (0, 1)
    with pytest.raises(ValueError, match="pass n"):
        same_padding(3, mode="tf")
    with pytest.raises(ValueError, match="mode must be 'torch' or 'tf', got 'keras'"):
        same_padding(3, mode="keras")


def test_receptive_field_recurrences_on_hand_worked_nets():
    # conv k3 p1 -> avgpool k2 s2 -> conv k3 d2 p2 -> conv k3 s2 p1
    layers = [(3, 1, 1, 1), (2, 2, 1, 0), (3, 1, 2, 2), (3, 2, 1, 1)]
    r1, j1, c1 = 1 + 2, 1, 0 + (1 - 1)
    r2, j2, c2 = r1 + 1 * j1, j1 * 2, c1 + (0.5 - 0) * j1
    r3, j3, c3 = r2 + (2 * 2) * j2, j2, c2 + (2 - 2) * j2
    r4, j4, c4 = r3 + 2 * j3, j3 * 2, c3 + (1 - 1) * j3
    assert receptive_field(layers) == [(r1, j1, c1), (r2, j2, c2), (r3, j3, c3), (r4, j4, c4)]
    # closed form: r = 1 + sum (k_eff - 1) * prod(previous strides); effective padding P = 7
    assert r4 == 1 + 2 * 1 + 1 * 1 + 4 * 2 + 2 * 2 == 16 and j4 == 4
    assert c4 == -7 + (r4 - 1) / 2
    # output 8 sees inputs 25..40 and output 9 sees 29..44 (checked empirically in torch)
    assert (c4 + 8 * j4 - (r4 - 1) / 2, c4 + 8 * j4 + (r4 - 1) / 2) == (25, 40)
    assert (c4 + 9 * j4 - (r4 - 1) / 2, c4 + 9 * j4 + (r4 - 1) / 2) == (29, 44)


def test_receptive_field_of_vgg16_pool5():
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers = [(2, 2, 1) if v == "M" else (3, 1, 1, 1) for v in cfg]
    r, j, start = receptive_field(layers)[-1]
    assert (r, j) == (212, 32)
    assert start == -90 + (212 - 1) / 2  # effective padding 90, as the Google receptive_field table


def test_receptive_field_padding_pair_and_element_wise_layers():
    # only the low padding moves the field; (1, 1, 1) layers change nothing
    assert receptive_field([(4, 1, 1, (1, 2))]) == receptive_field([(4, 1, 1, 1)]) == [(4, 1, 0.5)]
    assert receptive_field([(5, 2, 1), (1, 1, 1)]) == [(5, 2, 2), (5, 2, 2)]
    with pytest.raises(ValueError, match="layer 1 must be"):
        receptive_field([(3, 1, 1), (3,)])
    with pytest.raises(ValueError, match="stride of layer 0"):
        receptive_field([(3, 0, 1)])


def test_padding_for_reaches_the_target_and_prefers_symmetric():
    assert padding_for(28, 28, 5) == 2
    assert padding_for(28, 28, 4) == (1, 2)
    assert padding_for(224, 112, 7, stride=2) == 3
    rng = np.random.default_rng(3)
    for _ in range(300):
        n, k, s, d = (int(v) for v in (rng.integers(1, 40), rng.integers(1, 8), rng.integers(1, 4),
                                       rng.integers(1, 3)))
        target = int(rng.integers(1, 40))
        try:
            pad = padding_for(n, target, k, s, d)
        except ValueError as err:
            assert f"> {target}" in str(err)
            assert conv_output_size(n, k, s, 0, d) > target
            continue
        pair = (pad, pad) if isinstance(pad, int) else pad
        assert conv_output_size(n, k, s, pair, d) == target
        if not isinstance(pad, int):
            assert s == 1 and pair[1] == pair[0] + 1  # only stride 1 can force an odd total


def test_padding_for_explains_an_unreachable_target():
    with pytest.raises(ValueError, match="already has 24 > 10 positions"):
        padding_for(28, 10, 5)


def test_output_padding_for_matches_torch_output_size():
    for n, k, s, p, d in _draws(4, 100):
        smallest = (n - 1) * s - 2 * p + d * (k - 1) + 1
        if smallest < 1:
            continue
        layer = torch.nn.ConvTranspose1d(1, 1, k, stride=s, padding=p, dilation=d)
        for target in range(smallest, smallest + max(s, d)):
            op = output_padding_for(n, target, k, s, p, d)
            if op < s:  # torch's output_size covers the stride's range; output_padding < dilation is valid too
                assert layer(torch.zeros(1, 1, n), output_size=[target]).shape[-1] == target
            out = TF.conv_transpose1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p,
                                      output_padding=op, dilation=d)
            assert conv_transpose_output_size(n, k, s, p, op, d) == out.shape[-1] == target


def test_output_padding_for_names_the_valid_range():
    with pytest.raises(ValueError, match=r"27\.\.28; 30 is outside"):
        output_padding_for(14, 30, 3, stride=2, padding=1)


@pytest.mark.parametrize("call,match", [
    (lambda: conv_output_size(0, 3), "n must be a positive int, got 0"),
    (lambda: conv_output_size(5, 3, padding=-1), "padding must be an int >= 0"),
    (lambda: conv_output_size(5, 3, padding="full"), r"padding must be .*got 'full'"),
    (lambda: pool_output_size(5, 2.0), "kernel must be a positive int, got 2.0"),
    (lambda: conv_transpose_output_size(5, 3, dilation=0), "dilation must be a positive int"),
    (lambda: same_padding(0), "kernel must be a positive int"),
    (lambda: padding_for(5, 0, 3), "target must be a positive int"),
    (lambda: output_padding_for(5, 9, 3, padding=True), "padding must be an int >= 0, got True"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
