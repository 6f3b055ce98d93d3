"""The spec-string language of convkit.models.spec: grammar, implicit layers, shapes and every error."""

import re

import numpy as np
import pytest

import convkit
import convkit.nn as nn
from convkit.models import from_spec
from convkit.models.spec import spec_parameters


def kinds(net):
    return [type(m).__name__ for m in net]


def out_shape(net, input_size=(1, 28, 28)):
    with convkit.no_grad():
        return net.eval()(np.zeros((2, *input_size), dtype=np.float32)).shape


# ----------------------------------------------------------------- the examples and their hand-built twins

@pytest.mark.parametrize("spec, input_size, expected", [
    ("conv3-10 pool2 conv3-10 pool2 flatten fc3", (1, 28, 28), nn.Sequential(
        nn.Conv2d(1, 10, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(10, 10, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(250, 3))),
    ("C7s2 C5 C3p1 P2", (1, 28, 28), nn.Sequential(
        nn.Conv2d(1, 1, 7, stride=2), nn.ReLU(), nn.Conv2d(1, 1, 5), nn.ReLU(), nn.Conv2d(1, 1, 3, padding=1),
        nn.MaxPool2d(2))),
    ("conv3-32s2p1d2 bn lrelu0.2 avgpool2 gap dropout0.25 fc10", (3, 32, 32), nn.Sequential(
        nn.Conv2d(3, 32, 3, stride=2, padding=1, dilation=2), nn.BatchNorm2d(32), nn.LeakyReLU(0.2),
        nn.AvgPool2d(2), nn.GlobalAvgPool2d(flatten=True), nn.Dropout(0.25), nn.Linear(32, 10))),
    ("conv5-6p2 bn pool2 C5-16 maxpool2 fc120 bn fc84 tanh dropout fc10", (1, 28, 28), nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.BatchNorm1d(120), nn.ReLU(),
        nn.Linear(120, 84), nn.Tanh(), nn.Dropout(0.5), nn.Linear(84, 10))),
    ("conv3-8psame id conv3-8pvalid sigmoid A3s1p1 maxpool3s2p1 relu conv1-4", (2, 9, 9), nn.Sequential(
        nn.Conv2d(2, 8, 3, padding="same"), nn.Conv2d(8, 8, 3, padding="valid"), nn.Sigmoid(),
        nn.AvgPool2d(3, stride=1, padding=1), nn.MaxPool2d(3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 4, 1))),
    ("fc16 lrelu fc4 relu", (1, 4, 4), nn.Sequential(
        nn.Flatten(), nn.Linear(16, 16), nn.LeakyReLU(0.01), nn.Linear(16, 4), nn.ReLU())),
])
def test_spec_builds_the_hand_written_network(spec, input_size, expected):
    net = from_spec(spec, input_size)
    assert isinstance(net, nn.Sequential)
    assert repr(net) == repr(expected)
    expected.load_state_dict(net.state_dict())
    x = np.random.default_rng(0).standard_normal((3, *input_size)).astype(np.float32)
    net.eval(), expected.eval()
    np.testing.assert_array_equal(net(x).numpy(), expected(x).numpy())


def test_tokens_are_case_insensitive_and_any_whitespace_separates_them():
    a = from_spec("conv3-10 pool2 flatten fc3")
    b = from_spec("  CONV3-10\tPool2\n  Flatten   FC3 ")
    assert repr(a) == repr(b)


def test_conv_options_come_in_any_order():
    assert repr(from_spec("conv3-4d2p1s2", (1, 16, 16))) == repr(from_spec("conv3-4s2p1d2", (1, 16, 16)))


def test_short_forms_and_their_defaults():
    net = from_spec("C5 P2 A2 pool3s1 lrelu dropout", (3, 20, 20))
    conv, maxpool, avgpool, pool3, lrelu, drop = net
    assert (conv.in_channels, conv.out_channels) == (3, 3)  # C<k> keeps the channel count
    assert conv.stride == (1, 1) and conv.padding == (0, 0) and conv.dilation == (1, 1)
    assert conv.bias is not None
    assert isinstance(maxpool, nn.MaxPool2d) and (maxpool.kernel_size, maxpool.stride) == (2, 2)
    assert isinstance(avgpool, nn.AvgPool2d) and (avgpool.kernel_size, avgpool.stride) == (2, 2)
    assert (pool3.kernel_size, pool3.stride) == (3, 1)
    assert lrelu.negative_slope == 0.01
    assert drop.p == 0.5


def test_the_last_conv_or_fc_gets_no_implicit_relu():
    assert kinds(from_spec("conv3-4 pool2")) == ["Conv2d", "MaxPool2d"]
    assert kinds(from_spec("conv3-4 conv3-4")) == ["Conv2d", "ReLU", "Conv2d"]
    assert kinds(from_spec("fc8 dropout fc2")) == ["Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert kinds(from_spec("conv3-4 bn conv3-4 bn")) == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d"]


def test_an_explicit_activation_or_id_replaces_the_implicit_relu():
    assert kinds(from_spec("conv3-4 tanh conv3-4")) == ["Conv2d", "Tanh", "Conv2d"]
    assert kinds(from_spec("conv3-4 bn sigmoid fc3")) == ["Conv2d", "BatchNorm2d", "Sigmoid", "Flatten", "Linear"]
    assert kinds(from_spec("conv3-4 relu conv3-4")) == ["Conv2d", "ReLU", "Conv2d"]
    assert kinds(from_spec("conv3-4 id conv3-4")) == ["Conv2d", "Conv2d"]
    assert kinds(from_spec("fc3 relu")) == ["Flatten", "Linear", "ReLU"]


def test_bn_follows_the_running_shape():
    net = from_spec("bn flatten bn", (3, 4, 4))
    assert isinstance(net[0], nn.BatchNorm2d) and net[0].num_features == 3
    assert isinstance(net[2], nn.BatchNorm1d) and net[2].num_features == 48


def test_fc_infers_in_features_and_flattens_a_feature_map():
    net = from_spec("conv3-5s2 fc7", (2, 11, 11))
    assert kinds(net) == ["Conv2d", "ReLU", "Flatten", "Linear"]
    assert net[-1].in_features == 5 * 5 * 5
    assert kinds(from_spec("gap fc7", (2, 11, 11))) == ["GlobalAvgPool2d", "Linear"]


def test_every_layer_uses_the_default_dtype():
    previous = convkit.get_default_dtype()
    convkit.set_default_dtype(np.float64)
    try:
        net = from_spec("conv3-4 bn fc3", (1, 6, 6))
    finally:
        convkit.set_default_dtype(previous)
    assert {p.dtype for p in net.parameters()} == {np.dtype(np.float64)}


# ----------------------------------------------------------------- tracked shapes against a real forward pass

def random_spec(rng):
    """A random spec of convolutions and pools (may be too small for its input), ending in fc."""
    tokens = []
    for _ in range(rng.integers(1, 6)):
        if rng.random() < 0.6:
            k = int(rng.integers(1, 6))
            tok = f"conv{k}-{rng.integers(1, 5)}"
            opts = [f"s{rng.integers(1, 3)}", f"p{rng.integers(0, 3)}", f"d{rng.integers(1, 3)}"]
            tok += "".join(o for o in opts if rng.random() < 0.5)
        else:
            k = int(rng.integers(1, 4))
            tok = f"{rng.choice(['pool', 'avgpool', 'P', 'A'])}{k}"
            if rng.random() < 0.5:
                tok += f"s{rng.integers(1, 3)}"
            if rng.random() < 0.5:
                tok += f"p{rng.integers(0, k // 2 + 1)}"
        tokens.append(tok)
        if rng.random() < 0.3:
            tokens.append(str(rng.choice(["bn", "relu", "tanh", "dropout0.1", "id"])))
    return " ".join(tokens + ["fc3"])


def test_tracked_shapes_agree_with_the_engine_on_random_specs():
    rng = np.random.default_rng(0)
    built = rejected = 0
    for _ in range(150):
        spec = random_spec(rng)
        size = (int(rng.integers(1, 4)), int(rng.integers(3, 14)), int(rng.integers(3, 14)))
        try:
            net = from_spec(spec, size)
        except ValueError as err:
            assert "too small" in str(err), (spec, size, str(err))
            rejected += 1
            continue
        assert out_shape(net, size) == (2, 3), (spec, size)  # fc3's in_features was tracked exactly
        built += 1
    assert built > 40 and rejected > 10  # both outcomes are exercised


@pytest.mark.parametrize("spec, input_size", [
    ("conv5", (1, 5, 5)), ("conv5p1", (1, 3, 3)), ("conv3d2", (1, 5, 5)), ("conv3s2", (1, 3, 3)),
    ("pool2", (1, 2, 3)), ("A3s1p1", (1, 1, 1)), ("conv5psame", (1, 1, 1)),
])
def test_smallest_inputs_that_fit_give_one_pixel_or_more(spec, input_size):
    shape = out_shape(from_spec(spec, input_size), input_size)
    assert min(shape[2:]) >= 1


@pytest.mark.parametrize("spec, input_size, layer", [
    ("conv5", (1, 4, 5), nn.Conv2d(1, 1, 5)),
    ("conv5p1", (1, 2, 2), nn.Conv2d(1, 1, 5, padding=1)),
    ("conv3d2", (1, 5, 4), nn.Conv2d(1, 1, 3, dilation=2)),
    ("pool2", (1, 1, 8), nn.MaxPool2d(2)),
    ("A3s2", (1, 2, 8), nn.AvgPool2d(3, stride=2)),
])
def test_too_small_inputs_are_rejected_as_the_engine_would(spec, input_size, layer):
    with pytest.raises(ValueError):
        layer(np.zeros((1, *input_size), dtype=np.float32))
    with pytest.raises(ValueError, match="too small"):
        from_spec(spec, input_size)


# ----------------------------------------------------------------- errors point at the token

def caret_column(message):
    """Column (0-based, in the spec) of the first caret, and the caret run's length."""
    lines = message.splitlines()
    spec_line = next(i for i, line in enumerate(lines) if set(line.strip()) == {"^"}) - 1
    carets = lines[spec_line + 1]
    start = carets.index("^")
    assert lines[spec_line][:2] == "  " and carets[:2] == "  "
    return start - 2, len(carets.strip())


def test_unknown_token_message_quotes_the_spec_with_a_caret_and_the_grammar():
    spec = "conv3-10 pool2 conv3-1O pool2"
    with pytest.raises(ValueError) as info:
        from_spec(spec)
    lines = str(info.value).splitlines()
    assert lines[0] == "spec: unknown token 'conv3-1O' at column 16"
    assert lines[1] == "  conv3-10 pool2 conv3-1O pool2"
    assert lines[2] == "                 ^^^^^^^^"
    assert lines[3].startswith("expected conv<k>[-<channels>][s<stride>][p<pad>")
    for form in ("pool<k>", "avgpool<k>", "gap", "bn", "lrelu", "dropout[<p>]", "flatten", "fc<N>"):
        assert form in lines[3]


@pytest.mark.parametrize("spec, token", [
    ("conv3-10 pool2 conv3-1O pool2", "conv3-1O"),
    ("conv", "conv"), ("conv3-", "conv3-"), ("conv3x3", "conv3x3"), ("fc", "fc"), ("fc-3", "fc-3"),
    ("conv3-8 pool2 dense10", "dense10"), ("conv3 maxpool2d1", "maxpool2d1"), ("gap2", "gap2"),
    ("pool2 avgpool2psame", "avgpool2psame"), ("relu6", "relu6"), ("dropout0.5.1", "dropout0.5.1"),
    ("conv3-8,pool2", "conv3-8,pool2"), ("conv3sp1", "conv3sp1"), ("conv3-4\tbatchnorm", "batchnorm"),
])
def test_unknown_tokens_are_pointed_at(spec, token):
    with pytest.raises(ValueError, match=re.escape(f"unknown token {token!r}")) as info:
        from_spec(spec)
    assert caret_column(str(info.value)) == (spec.index(token), len(token))


@pytest.mark.parametrize("spec, token, detail", [
    ("conv3s1s2", "conv3s1s2", "option 's' (stride) given twice"),
    ("conv3-4 conv3p1psame", "conv3p1psame", "option 'p' (padding) given twice"),
    ("pool2 pool2s1s1", "pool2s1s1", "option 's' (stride) given twice"),
    ("conv3-4 dropout1.5", "dropout1.5", "p must be a probability"),
    ("conv3-0", "conv3-0", "out_channels must be a positive int, got 0"),
    ("conv0-4", "conv0-4", "kernel_size must be >= 1"),
    ("conv3-4s0", "conv3-4s0", "stride must be >= 1"),
    ("conv3-4d0", "conv3-4d0", "dilation must be >= 1"),
    ("conv3-4s2psame", "conv3-4s2psame", "padding='same'"),
    ("pool0", "pool0", "kernel_size must be >= 1"),
    ("pool4p3", "pool4p3", "padding should be at most half of kernel_size"),
    ("conv3-4 fc0", "fc0", "out_features must be a positive int, got 0"),
])
def test_invalid_values_are_pointed_at_with_the_engines_reason(spec, token, detail):
    with pytest.raises(ValueError, match=re.escape(detail)) as info:
        from_spec(spec)
    assert str(info.value).startswith("spec: ")
    assert caret_column(str(info.value)) == (spec.index(token), len(token))


def test_a_too_small_input_names_the_token_and_the_shape_it_receives():
    spec = "conv5-10 pool2 conv5 pool2 conv5"
    with pytest.raises(ValueError) as info:
        from_spec(spec)
    first = str(info.value).splitlines()[0]
    assert first == ("spec: 'conv5' at column 28: receives shape (10, 4, 4) (C, H, W), too small for "
                     "kernel 5, stride 1, padding 0, dilation 1: the output would be 0x0")
    assert caret_column(str(info.value)) == (27, 5)


def test_a_too_small_pool_names_its_settings():
    with pytest.raises(ValueError, match=re.escape("'P3s2' at column 7: receives shape (1, 2, 9) (C, H, W), "
                                                   "too small for kernel 3, stride 2, padding 0")):
        from_spec("conv3 P3s2", (1, 4, 11))


@pytest.mark.parametrize("spec, token", [
    ("flatten conv3", "conv3"), ("fc10 pool2", "pool2"), ("gap gap", "gap"), ("gap A2", "A2"),
])
def test_spatial_layers_after_flattening_are_rejected(spec, token):
    with pytest.raises(ValueError, match=r"needs a \(C, H, W\) feature map but receives shape \(\d+,\)") as info:
        from_spec(spec)
    assert caret_column(str(info.value)) == (spec.rindex(token), len(token))


def test_whitespace_in_the_spec_is_shown_as_spaces_so_the_caret_lines_up():
    spec = "conv3-4\n\tpool2 fcx"
    with pytest.raises(ValueError) as info:
        from_spec(spec)
    lines = str(info.value).splitlines()
    assert lines[1] == "  conv3-4  pool2 fcx"
    assert caret_column(str(info.value)) == (spec.index("fcx"), 3)


@pytest.mark.parametrize("spec", ["", "   ", "\n\t"])
def test_an_empty_spec_is_an_error(spec):
    with pytest.raises(ValueError, match="spec is empty; expected conv<k>"):
        from_spec(spec)


@pytest.mark.parametrize("spec", [None, 3, ["conv3"], b"conv3"])
def test_a_spec_must_be_a_string(spec):
    with pytest.raises(TypeError, match="from_spec: spec must be a str"):
        from_spec(spec)


@pytest.mark.parametrize("input_size", [(28, 28), (1, 28, 28, 1), (0, 28, 28), (1, 28.0, 28), "1x28x28", 28])
def test_input_size_must_be_three_positive_ints(input_size):
    with pytest.raises(ValueError, match=re.escape(f"from_spec: input_size must be (C, H, W), three positive "
                                                   f"ints, got {input_size!r}")):
        from_spec("conv3", input_size)


# ----------------------------------------------------------------- parameters counted before building

def n_params(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("spec, input_size", [
    ("conv3-10 pool2 conv3-10 pool2 flatten fc3", (1, 28, 28)),
    ("conv3-32s2p1d2 bn lrelu0.2 avgpool2 gap dropout0.25 fc10", (3, 32, 32)),
    ("conv5-6p2 bn pool2 C5-16 maxpool2 fc120 bn fc84 tanh dropout fc10", (1, 28, 28)),
    ("conv3-8psame id conv3-8pvalid sigmoid A3s1p1 maxpool3s2p1 relu conv1-4", (2, 9, 9)),
    ("bn flatten bn", (3, 4, 4)), ("gap", (5, 3, 3)), ("C5 P2 A2 pool3s1 lrelu dropout", (3, 20, 20)),
])
def test_spec_parameters_equal_the_built_networks(spec, input_size):
    assert spec_parameters(spec, input_size) == n_params(from_spec(spec, input_size))


def test_spec_parameters_agree_with_random_built_specs():
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(100):
        spec = random_spec(rng) + " bn fc2"
        size = (int(rng.integers(1, 4)), int(rng.integers(3, 14)), int(rng.integers(3, 14)))
        try:
            net = from_spec(spec, size)
        except ValueError:
            with pytest.raises(ValueError, match="too small"):
                spec_parameters(spec, size)
            continue
        assert spec_parameters(spec, size) == n_params(net), (spec, size)
        checked += 1
    assert checked > 30


def test_a_spec_over_the_budget_is_refused_before_any_layer_is_built(monkeypatch):
    built = []
    for cls in (nn.Linear, nn.Conv2d):
        monkeypatch.setattr(cls, "__init__", lambda self, *a, **k: built.append(a))
    with pytest.raises(ValueError) as info:
        from_spec("fc100000 fc100000 fc10")   # 37 GiB of float32 weights
    assert built == []
    message = str(info.value)
    assert message.startswith("from_spec: spec 'fc100000 fc100000 fc10' has 10,079,600,010 parameters, "
                              "more than the budget of max_parameters=200,000,000")
    assert "max_parameters=N" in message and "--max-parameters N" in message


def test_the_budget_can_be_lowered_raised_or_lifted():
    spec = "conv3-10 pool2 conv3-10 pool2 flatten fc3"   # 100 + 910 + 753 = 1763 parameters
    assert spec_parameters(spec) == 1763
    assert n_params(from_spec(spec, max_parameters=1763)) == 1763
    with pytest.raises(ValueError, match="has 1,763 parameters, more than the budget of max_parameters=1,762"):
        from_spec(spec, max_parameters=1762)
    assert n_params(from_spec(spec, max_parameters=None)) == 1763


@pytest.mark.parametrize("max_parameters, error", [(0, ValueError), (-5, ValueError), (1.5e6, TypeError),
                                                   ("1000", TypeError), (True, TypeError)])
def test_the_budget_must_be_a_positive_int_or_none(max_parameters, error):
    with pytest.raises(error, match="from_spec: max_parameters must be"):
        from_spec("fc3", max_parameters=max_parameters)


@pytest.mark.parametrize("spec, size, count", [
    ("C1-999999999999", (1, 1, 1), 2 * 999999999999),      # huge channel counts are only counted
    ("fc4294967296 fc4294967296", (1, 1, 1), 2 * 4294967296 + 4294967296 ** 2 + 4294967296),
    ("conv1-100000000 conv1-100000000", (3, 2, 2), 4 * 10 ** 8 + 10 ** 16 + 10 ** 8),
])
def test_absurd_sizes_are_counted_exactly_and_refused(spec, size, count):
    assert spec_parameters(spec, size) == count
    with pytest.raises(ValueError, match=f"has {count:,} parameters"):
        from_spec(spec, size)


def test_a_number_of_thousands_of_digits_is_an_error_at_its_token():
    spec = "conv3 fc" + "9" * 5000
    with pytest.raises(ValueError, match=r"has 5000 digits; no setting needs more than 18") as info:
        from_spec(spec)
    assert caret_column(str(info.value)) == (6, 5002)


def test_a_spec_of_more_than_ten_thousand_layers_is_refused_before_any_is_built():
    assert len(from_spec("relu " * 10_000)) == 10_000
    with pytest.raises(ValueError, match=r"from_spec: spec has more than 10,000 tokens \(it is 5,000,000 "
                                         r"characters long\)"):
        from_spec("relu " * 1_000_000)
