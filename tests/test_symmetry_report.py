"""``symmetry.report``: per-prefix errors of a Sequential model, and the diagnosis of each breaker."""

import numpy as np
import pytest

import convkit
import convkit.functional as F
import convkit.nn as nn
from convkit.symmetry import C4, D4, Flip, Flips, Rot90, Shift, Shifts, SymmetricConv2d, report

F64 = np.float64


@pytest.fixture(autouse=True)
def seeded():
    convkit.manual_seed(0)


def conv(c_in, c_out, k=3, **kw):
    return nn.Conv2d(c_in, c_out, k, dtype=kw.pop("dtype", F64), **kw)


def circ(c_in, c_out, **kw):
    return conv(c_in, c_out, padding=1, padding_mode="circular", **kw)


def only_reason(row):
    assert row.status == "breaks" and len(row.reasons) == 1, row
    return row.reasons[0]


def test_circular_net_keeps_shift_symmetry_to_the_end():
    net = nn.Sequential(circ(1, 4), nn.ReLU(), circ(4, 4), nn.ReLU(), nn.GlobalAvgPool2d(flatten=True),
                        nn.Linear(4, 3, dtype=F64))
    rep = report(net, Shifts(8, 8), (1, 8, 8))
    assert rep.holds and rep.breaks == []
    assert [r.kind for r in rep.rows] == ["equivariance"] * 4 + ["invariance"] * 2
    assert [r.status for r in rep.rows] == ["holds"] * 6
    assert max(r.max_error for r in rep.rows) < 1e-14
    text = str(rep)
    assert "Sequential under Shifts(8, 8) (64 elements), input 1x1x8x8 float64, seed 0, tolerance 1e-10" in text
    assert "verdict: the model is invariant under Shifts(8, 8)" in text
    assert "Conv2d(1->4, k=3, p=1, circular)" in text and "0/64" in text


def test_zero_padding_is_diagnosed_under_shifts():
    net = nn.Sequential(conv(1, 4, padding=1), nn.ReLU())
    rep = report(net, Shifts(6, 6), (1, 6, 6))
    first, relu = rep.rows
    assert first.status == "breaks" and first.failing == 35 and first.max_error > 1e-1
    assert any("zero padding (1, 1) along H at the borders" in r for r in first.reasons)
    assert any("zero padding (1, 1) along W at the borders" in r for r in first.reasons)
    assert relu.status == "inherited" and relu.reasons == ()
    assert "verdict: equivariance fails under Shifts(6, 6): first broken at layer 0" in str(rep)


def test_unpadded_conv_cannot_wrap_around():
    rep = report(nn.Sequential(conv(1, 2)), [Shift(0, 1)], (1, 6, 6))
    assert "no padding along W: windows of 3 pixels cannot wrap around" in only_reason(rep.rows[0])


def test_stride_that_does_not_divide_the_shift_is_diagnosed():
    net = nn.Sequential(circ(1, 4), circ(4, 4, stride=2), nn.MaxPool2d(2))
    rep = report(net, Shifts(8, 8), (1, 8, 8))
    top, strided, pool = rep.rows
    assert top.status == "holds"
    assert strided.status == "breaks" and strided.failing == 48
    assert all("does not divide the shift it receives" in r for r in strided.reasons)
    # The pool (stride 2 after stride 2) breaks the shifts by 2 that are not multiples of 4.
    assert pool.status == "breaks" and pool.failing == 60
    assert any("stride 2 along H does not divide the shift it receives (8 of 12" in r for r in pool.reasons)


def test_flatten_ends_the_spatial_map():
    net = nn.Sequential(circ(1, 2), nn.Flatten(), nn.Linear(32, 3, dtype=F64))
    rep = report(net, Shifts(4, 4), (1, 4, 4))
    assert [r.kind for r in rep.rows] == ["equivariance", "invariance", "invariance"]
    assert [r.status for r in rep.rows] == ["holds", "breaks", "inherited"]
    assert "Flatten turns the positions of the 4x4 map into separate features" in only_reason(rep.rows[1])


def test_linear_on_a_spatial_axis_is_diagnosed():
    rep = report(nn.Sequential(nn.Linear(4, 4, dtype=F64)), [Shift(0, 1)], (1, 4, 4))
    assert "Linear acts on the W axis" in only_reason(rep.rows[0])


def test_asymmetric_kernel_is_diagnosed_from_the_weights():
    net = nn.Sequential(SymmetricConv2d(1, 2, 3, "c4", padding=1, dtype=F64), nn.ReLU(), conv(2, 2, padding=1))
    rep = report(net, C4, (1, 7, 7))
    assert [r.status for r in rep.rows] == ["holds", "holds", "breaks"]
    assert rep.rows[0].max_error < 1e-14
    reason = only_reason(rep.rows[2])
    assert reason.startswith("kernel not symmetric under the rotations/flips: max|P▷w − w| up to")
    assert "(3 of 3 failing elements, e.g. Rot90(1))" in reason


def test_even_kernel_with_same_padding_is_diagnosed_under_flips():
    net = nn.Sequential(SymmetricConv2d(1, 2, 4, "flips", padding="same", dtype=F64))
    (row,) = report(net, Flips, (1, 8, 8)).rows
    assert row.status == "breaks" and row.failing == 3
    assert all("even kernel 4 with padding='same' pads (1, 2)" in r for r in row.reasons)
    assert not any("kernel not symmetric" in r for r in row.reasons)   # the tied kernel is symmetric


def test_pooling_that_leaves_a_pixel_over_breaks_flips():
    net = nn.Sequential(SymmetricConv2d(1, 2, 3, "d4", padding=1, dtype=F64), nn.MaxPool2d(2))
    rep = report(net, [Rot90(2)], (1, 7, 7))
    assert rep.rows[0].status == "holds"
    assert "leave 1 pixel(s) of the 7-pixel map along H unused at the end" in rep.rows[1].reasons[0]
    assert report(net, D4, (1, 8, 8)).holds


def test_quarter_turns_need_the_same_settings_on_both_axes():
    net = nn.Sequential(SymmetricConv2d(1, 2, 3, "d4", padding=1, stride=(1, 2), dtype=F64))
    rep = report(net, [Rot90(2), Rot90(1)], (1, 8, 8))
    assert any("H and W differ in kernel, stride" in r for r in rep.rows[0].reasons)


def trained_layer_norm(shape):
    norm = nn.LayerNorm(shape, dtype=F64)
    norm.weight.data[...] = np.random.default_rng(0).uniform(0.5, 1.5, shape)
    return norm


@pytest.mark.parametrize("layers, elements, size, expected", [
    (lambda: [circ(1, 2), nn.MaxPool2d(3, 2, 1)], [Shift(2, 0)], 8, "pooling padding (1, 1) along H at the borders"),
    (lambda: [circ(1, 2), nn.MaxPool2d(3, 2)], [Shift(2, 0)], 8, "no padding along H: windows of 3 pixels cannot"),
    (lambda: [conv(1, 2, k=5, padding=1, padding_mode="circular")], [Shift(0, 1)], 6,
     "circular padding (1, 1) along W does not make up the kernel's reach 4"),
    (lambda: [circ(1, 2, stride=2)], [Shift(2, 0)], 7, "the 7-pixel map along H is not a multiple of the stride 2"),
    (lambda: [nn.MaxPool2d(2, ceil_mode=True)], [Flip("h")], 7,
     "the last window along H hangs 1 pixel(s) over the end (ceil_mode)"),
    (lambda: [conv(1, 2, padding=1)], [Shift(1, 0, circular=False)], 6,
     "convolution windows along H mix the zero fill of the shift"),
    (lambda: [trained_layer_norm((1, 6, 6))], [Rot90(1)], 6,
     "LayerNorm's element-wise weight over (1, 6, 6) differs per position"),
    (lambda: [nn.AdaptiveAvgPool2d(4)], [Shift(1, 0)], 6, "adaptive windows over 6 -> 4 pixels along H differ"),
], ids=["pool-padding", "pool-overlap", "circular-short", "stride-size", "ceil-mode", "zero-fill", "layer-norm",
        "adaptive"])
def test_each_breaker_is_named(layers, elements, size, expected):
    rep = report(nn.Sequential(*layers()), elements, (1, size, size))
    reasons = [reason for row in rep.breaks for reason in row.reasons]
    assert any(expected in r for r in reasons), reasons


def test_nested_sequentials_are_flattened_and_named():
    net = nn.Sequential(nn.Sequential(circ(1, 2), nn.ReLU()), nn.Sequential(nn.Sequential(circ(2, 2))))
    rep = report(net, C4, (1, 5, 5))
    assert [r.name for r in rep.rows] == ["0.0", "0.1", "1.0.0"]


def test_unanalysed_layer_is_said_so():
    class Corner(nn.Module):
        def forward(self, x):
            return x * np.arange(x.shape[-1], dtype=F64)

    (row,) = report(nn.Sequential(Corner()), [Shift(0, 1)], (1, 4, 4)).rows
    assert row.status == "breaks"
    assert row.reasons == ("Corner is not analysed",)


def test_modes_are_restored_and_batch_norm_runs_in_eval():
    net = nn.Sequential(circ(1, 2), nn.BatchNorm2d(2, dtype=F64), nn.Dropout(0.5))
    rep = report(net, Shifts(4, 4), (1, 4, 4))
    assert rep.holds  # dropout would break it in training mode
    assert net.training and all(m.training for m in net.modules())
    np.testing.assert_array_equal(net[1].running_mean, np.zeros(2))


def test_float32_model_uses_the_float32_tolerance():
    net = nn.Sequential(circ(1, 4, dtype=np.float32), nn.ReLU(), nn.GlobalAvgPool2d())
    rep = report(net, Shifts(6, 6), (1, 6, 6), seed=3)
    assert rep.dtype == np.float32 and rep.atol == 1e-4 and rep.seed == 3
    assert rep.holds and rep.rows[-1].max_error < 1e-6


def test_report_is_reproducible_and_batch_size_does_not_matter():
    net = nn.Sequential(conv(1, 2, padding=1), nn.MaxPool2d(2))
    a = report(net, Shifts(6, 6), (1, 6, 6), batch_size=7)
    b = report(net, Shifts(6, 6), (1, 6, 6))
    assert [r.max_error for r in a.rows] == [r.max_error for r in b.rows]
    assert repr(a).startswith("SymmetryReport(Sequential under Shifts(6, 6): broken; breaks at 0 (Conv2d")


def test_bad_input_is_rejected():
    net = nn.Sequential(circ(1, 2))

    class Twice(nn.Module):
        def forward(self, x):
            return x + x

    assert report(Twice(), C4, (1, 4, 4)).holds               # a module without children is its own call
    with pytest.raises(TypeError, match="model must be a convkit.nn.Module, got function"):
        report(lambda x: x, C4, (1, 4, 4))
    with pytest.raises(ValueError, match="empty Sequential"):
        report(nn.Sequential(), C4, (1, 4, 4))
    with pytest.raises(ValueError, match=r"input_size must be \(C, H, W\).*got \(4, 4\)"):
        report(net, C4, (4, 4))
    with pytest.raises(ValueError, match="group Shifts.8, 8. is for a 8x8 map, but the input is 6x6"):
        report(net, Shifts(8, 8), (1, 6, 6))
    with pytest.raises(ValueError, match="quarter turn needs a square map, but the input has a 6x8 map"):
        report(net, C4, (1, 6, 8))
    with pytest.raises(ValueError, match=r"layer 1 \(1: MaxPool2d\(k=4, s=4\)\) failed on an input of shape "
                                         r"\(1, 2, 3, 3\)"):
        report(nn.Sequential(circ(1, 2), nn.MaxPool2d(4)), C4, (1, 3, 3))
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        report(net, C4, (1, 4, 4), seed=-1)
    with pytest.raises(TypeError, match="group element 0 must be an Action"):
        report(net, ["flip"], (1, 4, 4))


def test_branching_models_are_checked_call_by_call():
    """A residual block and a concatenation: rows are the leaf modules' calls in the order forward makes them;
    the break is found at the zero-padded convolution, and the sums and concatenations between calls are
    judged at the next call's input."""
    class Block(nn.Module):
        def __init__(self, padding_mode):
            super().__init__()
            self.a = nn.Conv2d(2, 2, 3, padding=1, padding_mode=padding_mode)
            self.b = nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular")
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            h = x + F.relu(self.a(x))
            both = convkit.cat([h, self.b(h)], dim=1)
            return self.pool(both)

    convkit.manual_seed(0)
    good = report(Block("circular"), Shifts(6, 6), (2, 6, 6))
    assert good.holds and [r.name for r in good.rows] == ["a", "b", "pool"]   # pool's output is the model's
    assert [r.kind for r in good.rows] == ["equivariance", "equivariance", "invariance"]
    convkit.manual_seed(0)
    bad = report(Block("zeros"), Shifts(6, 6), (2, 6, 6))
    assert [r.status for r in bad.rows] == ["breaks", "inherited", "inherited"]
    assert any("zero padding" in reason for reason in bad.rows[0].reasons)


def test_what_forward_computes_after_its_last_call_is_checked_too():
    class Shifted(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = nn.ReLU()

        def forward(self, x):
            y = self.relu(x)
            return y[..., 1:, :]                       # cropping after the last call breaks the symmetry

    rep = report(Shifted(), Shifts(4, 4), (1, 4, 4))
    assert [r.name for r in rep.rows] == ["relu", "(output)"]
    assert rep.rows[0].status == "holds" and rep.rows[1].status == "breaks" and not rep.holds


def test_large_groups_are_sampled_with_a_confidence_statement():
    convkit.manual_seed(0)
    holds = nn.Sequential(circ(1, 2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    rep = report(holds, Shifts(8, 8), (1, 8, 8), samples=10)
    assert (rep.group_size, rep.checked, rep.sampled) == (64, 10, True)
    assert all(0 <= r.failing <= 10 for r in rep.rows) and rep.holds
    text = str(rep)
    assert "(64 elements, 10 sampled at random)" in text
    assert "10 of the 64 elements sampled: with 95 % confidence at most 30.0% of the group fails" in text
    again = report(holds, Shifts(8, 8), (1, 8, 8), samples=10)
    assert [r.max_error for r in again.rows] == [r.max_error for r in rep.rows]      # the seed fixes the sample
    everything = report(holds, Shifts(8, 8), (1, 8, 8), samples=None)
    assert (everything.checked, everything.sampled) == (64, False) and "sampled" not in str(everything)
    assert report(holds, Shifts(8, 8), (1, 8, 8), samples=64).sampled is False
    broken = report(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                    Shifts(8, 8), (1, 8, 8), samples=20)
    assert "sampled elements fail:" in str(broken).splitlines()[-1] and "at 95 % confidence" in str(broken)
    with pytest.raises(ValueError, match="samples must be a positive int or None"):
        report(holds, Shifts(8, 8), (1, 8, 8), samples=0)
