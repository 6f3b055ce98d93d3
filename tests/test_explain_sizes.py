"""Output sizes and receptive fields per layer, against the engine's forward pass and gradient support."""

import pytest

import convkit.nn as nn
from convkit import explain
from convkit.analysis.arithmetic import receptive_field as rf_recurrence
from convkit.explain import Table


def _table(e) -> Table:
    return next(s.value for s in e.steps if isinstance(s.value, Table))


def test_output_size_of_a_spec_layer_by_layer():
    e = explain.output_size("conv3-10 pool2 conv3-10 pool2 flatten fc3", (1, 28, 28))
    # By hand: 28 -> conv3: 26 -> pool2: 13 -> conv3: 11 -> pool2: 5 -> flatten 10·5·5 = 250 -> fc 3 (ReLUs keep)
    assert e.result == [(10, 26, 26), (10, 26, 26), (10, 13, 13), (10, 11, 11), (10, 11, 11), (10, 5, 5), (250,),
                        (3,)]
    text = str(e)
    assert "H: ⌊(28 + 2·0 − 1·(3 − 1) − 1)/1⌋ + 1 = 26" in text
    assert "W: ⌊(26 + 2·0 − 1·(2 − 1) − 1)/2⌋ + 1 = 13" in text
    assert "10·5·5 = 250" in text and "1 ReLU keeps the shape 10×26×26." in text
    assert all(row[1] == row[2] for row in _table(e).rows) and "(they agree)" in text


def test_output_size_covers_same_ceil_mode_transposed_and_global_layers():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 4, padding="same"), nn.BatchNorm2d(4), nn.MaxPool2d(3, stride=2, ceil_mode=True),
        nn.Conv2d(4, 4, 3, stride=2, padding=1, dilation=2), nn.AvgPool2d(2, ceil_mode=True),
        nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
        nn.Sequential(nn.AdaptiveAvgPool2d((3, 2)), nn.ReLU()), nn.GlobalAvgPool2d(flatten=True), nn.Linear(2, 5))
    e = explain.output_size(net, (1, 17, 15))
    assert all(row[1] == row[2] for row in _table(e).rows)
    assert e.result[-1] == (5,) and e.result[2] == (4, 8, 7)  # ceil mode: ⌈(17 − 3)/2⌉ + 1 = 8
    text = str(e)
    assert "padding='same' pads d(k − 1) in total, 1·(4 − 1) = 3 → (1, 2)" in e.steps[1].text
    assert "H: ⌈(17 + 2·0 − 1·(3 − 1) − 1)/2⌉ + 1 = 8" in text
    assert "H: (2 − 1)·2 − 2·1 + 1·(3 − 1) + 1 + 1 = 4" in text
    assert net[1].training  # the forward pass ran in eval mode and restored the modes


def test_receptive_field_hand_worked_recurrence():
    e = explain.receptive_field("conv3-10 pool2 conv3-10 pool2 flatten fc3", (1, 28, 28))
    # r: 1 + 2·1 = 3; 3 + 1·1 = 4; 4 + 2·2 = 8; 8 + 1·2 = 10.  j: 1, 2, 2, 4.  start: 1, 1.5, 3.5, 4.5
    assert [row[1][0] for row in e.result] == [3, 4, 8, 10]
    assert [row[2][0] for row in e.result] == [1, 2, 2, 4]
    assert [row[3][0] for row in e.result] == [1, 1.5, 3.5, 4.5]
    text = str(e)
    assert "3 Conv2d: r_3 = 4 + (3 − 1)·1·2 = 8,  j_3 = 2·1 = 2,  start_3 = 1.5 + (1 − 0)·2 = 3.5" in text
    assert "6 Flatten mixes all positions" in text
    assert "the gradient is non-zero on 0 … 9" in text and "inputs 0 … 9" in text


def test_receptive_field_with_dilation_padding_and_pooling_matches_the_probe():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, dilation=2, padding=2),
                        nn.Conv2d(1, 1, 3, stride=2, padding=1))
    e = explain.receptive_field(net, (1, 48, 48))
    layers = [(3, 1, 1, 1), (2, 2, 1, 0), (3, 1, 2, 2), (3, 2, 1, 1)]
    assert [(row[1][0], row[2][0], row[3][0]) for row in e.result] == rf_recurrence(layers)
    assert e.result[-1][1:3] == ((16, 16), (4, 4))  # r = 16, jump 4 (the reference's verified example)
    probe = e.steps[-1].formulas
    for line in probe:
        seen, found = line.split("→ inputs ")[1].split("; the gradient is non-zero on ")
        assert seen == found  # the engine's gradient support is exactly the computed field


def test_receptive_field_axes_that_differ_get_their_own_tables():
    net = nn.Sequential(nn.Conv2d(1, 1, (3, 1)), nn.MaxPool2d((1, 2)))
    e = explain.receptive_field(net, (1, 8, 8))
    assert e.result[-1][1:] == ((3, 2), (1, 2), (1, 0.5))
    assert sum(isinstance(s.value, Table) for s in e.steps) == 2


def test_receptive_field_stops_at_a_transposed_convolution():
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.ConvTranspose2d(1, 1, 3, stride=2))
    e = explain.receptive_field(net, (1, 9, 9))
    assert len(e.result) == 1 and "alternating numbers of inputs" in str(e)


def test_sizes_bad_input():
    with pytest.raises(TypeError, match="model must be a spec string or an nn.Module"):
        explain.output_size(42, (1, 8, 8))
    with pytest.raises(ValueError, match="input_size must be a tuple of positive ints"):
        explain.output_size("conv3", "1x8x8")
    with pytest.raises(ValueError, match="unknown token 'cnv3'"):
        explain.output_size("cnv3", (1, 8, 8))
    with pytest.raises(ValueError, match="no convolution or pooling layer"):
        explain.receptive_field("fc3", (1, 8, 8))
