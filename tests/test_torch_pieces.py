"""PyTorch pieces that course code uses: F.pad, F.unfold/F.fold, dropout2d, F.interpolate, softmax's dtype,
pooling's ``stride=()`` and the matching modules, each against torch in float64 with gradients."""

from __future__ import annotations

import numpy as np
import pytest

import convkit
import convkit.functional as F
import convkit.nn as nn
from oracle import compare, raises_like_torch

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ------------------------------------------------------------------------------------------- pad
PAD_CASES = [  # (input shape, pad, mode)
    ((2, 3, 5), (1, 2), "constant"),
    ((2, 3, 5), (2, 0), "reflect"),
    ((2, 3, 5), (3, 1), "replicate"),
    ((2, 3, 5), (1, 4), "circular"),
    ((3, 5), (2, 1), "reflect"),                    # unbatched
    ((1, 2, 4, 5), (1, 2, 3, 0), "constant"),
    ((1, 2, 4, 5), (1, 2, 3, 0), "reflect"),
    ((1, 2, 4, 5), (4, 4, 2, 2), "replicate"),
    ((1, 2, 4, 5), (2, 3, 4, 1), "circular"),
    ((1, 2, 3, 4, 5), (1, 1, 2, 0, 0, 2), "reflect"),
    ((1, 2, 3, 4, 5), (1, 1, 2, 0, 0, 2), "circular"),
    ((2, 3, 4, 5), (1, -1), "constant"),            # negative: crop
    ((2, 3, 4, 5), (-1, 2, 1, -2), "constant"),
    ((3, 4, 5), (-1, 2), "circular"),               # crop first, then wrap around the cropped axis
    ((3, 4, 5), (2, -1), "reflect"),
    ((3, 4, 5), (-2, 1, 1, -1), "replicate"),
    ((2, 3, 4, 5), (1, 1, 1, 1, 1, 1), "constant"),  # the channel axis too
]


@pytest.mark.parametrize("shape, pad, mode", PAD_CASES)
def test_pad_matches_torch(shape, pad, mode):
    compare(lambda x: F.pad(x, pad, mode=mode), lambda x: TF.pad(x, pad, mode=mode), [_x(shape)])


def test_pad_constant_value_and_float32():
    x = _x((2, 3, 4)).astype(np.float32)
    out = compare(lambda x: F.pad(x, (2, 1, 0, 3), value=-1.5), lambda x: TF.pad(x, (2, 1, 0, 3), value=-1.5),
                  [x], atol=0, rtol=0)
    assert out.dtype == np.float32


@pytest.mark.parametrize("pad, mode, kwargs", [
    ((1,), "constant", {}),                          # odd length
    ((1, 1, 1, 1, 1, 1, 1, 1), "constant", {}),      # more axes than the input has
    ((5, 0), "reflect", {}),                         # reflect pad must be smaller than the axis
    ((6, 0), "circular", {}),                        # wraps more than once
    ((1, 1), "reflect", {"value": 1.0}),             # value only for constant
    ((1, 1), "wrap", {}),                            # unknown mode
    ((1, 1, 1, 1, 1, 1), "reflect", {}),             # reflect of 3 axes on a 3-D input is fine, of 3 on 2-D not
])
def test_pad_refuses_what_torch_refuses(pad, mode, kwargs):
    x = _x((2, 5)) if len(pad) == 6 else _x((1, 2, 5))
    message = raises_like_torch(lambda: F.pad(x, pad, mode=mode, **kwargs),
                                lambda: TF.pad(torch.tensor(x), pad, mode=mode, **kwargs))
    assert message.startswith("pad:")


def test_pad_names_a_bad_pad_argument():
    with pytest.raises(TypeError, match="pad: pad must be a tuple of ints"):
        F.pad(_x((2, 3)), (1.5, 1))
    with pytest.raises(ValueError, match="crops more"):
        F.pad(_x((2, 3)), (-2, -2))


# --------------------------------------------------------------------------------- unfold / fold
UNFOLD_CASES = [  # (input shape, kernel, dilation, padding, stride)
    ((2, 3, 6, 7), 3, 1, 0, 1),
    ((2, 3, 6, 7), (2, 3), (2, 1), (1, 2), (2, 1)),
    ((1, 1, 5, 5), 5, 1, 0, 1),
    ((3, 8, 9), 2, 1, 1, 3),                        # unbatched
]


@pytest.mark.parametrize("shape, k, d, p, s", UNFOLD_CASES)
def test_unfold_and_fold_match_torch(shape, k, d, p, s):
    compare(lambda x: F.unfold(x, k, d, p, s), lambda x: TF.unfold(x, k, d, p, s), [_x(shape)])
    with torch.no_grad():
        cols_shape = tuple(TF.unfold(torch.tensor(_x(shape)), k, d, p, s).shape)
    size = shape[-2:]
    compare(lambda c: F.fold(c, size, k, d, p, s), lambda c: TF.fold(c, size, k, d, p, s), [_x(cols_shape, 1)])


def test_unfold_times_the_flat_weight_is_the_convolution_and_the_modules_agree():
    x, w = _x((2, 3, 7, 6)), _x((4, 3, 3, 3), 1)
    cols = nn.Unfold(3, padding=1, stride=2)(x).numpy()
    y = (w.reshape(4, -1) @ cols).reshape(2, 4, 4, 3)
    np.testing.assert_allclose(y, F.conv2d(x, w, padding=1, stride=2).numpy(), rtol=1e-12, atol=1e-12)
    back = nn.Fold((7, 6), 3, padding=1, stride=2)(cols)
    np.testing.assert_allclose(back.numpy(), TF.fold(torch.tensor(cols), (7, 6), 3, padding=1, stride=2).numpy())


def test_fold_checks_its_block_count_and_rows():
    with pytest.raises(ValueError, match=r"fold: input.shape\[-1\] = 5 must be the number of windows, 9"):
        F.fold(_x((1, 4, 5)), (4, 4), 2)
    with pytest.raises(ValueError, match="multiple of kH\\*kW = 4"):
        F.fold(_x((1, 6, 9)), (4, 4), 2)
    with pytest.raises(ValueError, match="unfold: the kernel"):
        F.unfold(_x((1, 1, 2, 2)), 3)


# ------------------------------------------------------------------------------------ dropout2d
def test_dropout2d_drops_whole_channels_and_scales_the_rest():
    convkit.manual_seed(3)
    x = convkit.tensor(np.ones((8, 16, 5, 5)), requires_grad=True)
    y = F.dropout2d(x, 0.25)
    per_channel = y.numpy().reshape(8, 16, -1)
    assert np.all(per_channel.min(axis=2) == per_channel.max(axis=2))       # one value per feature map
    assert set(np.unique(per_channel)) <= {0.0, 1 / 0.75}
    assert 0 < (per_channel[:, :, 0] == 0).mean() < 0.5
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.numpy())                        # d(sum)/dx = the mask
    layer = nn.Dropout2d(0.25).eval()
    assert layer(x) is x or np.array_equal(layer(x).numpy(), x.numpy())
    compare(lambda x: F.dropout2d(x, 1.0), lambda x: TF.dropout2d(x, 1.0), [_x((2, 3, 4, 4))])
    compare(lambda x: F.dropout2d(x, 0.5, training=False), lambda x: TF.dropout2d(x, 0.5, training=False),
            [_x((2, 3, 4, 4))])


def test_dropout2d_refuses_bad_arguments():
    with pytest.raises(ValueError, match="dropout2d: p must be a probability"):
        F.dropout2d(_x((2, 3, 4, 4)), 1.5)
    with pytest.raises(ValueError, match="dropout2d: input must be 4-D"):
        F.dropout2d(_x((2, 3)), 0.5)


# ---------------------------------------------------------------------------------- interpolate
INTERPOLATE_CASES = [  # (input shape, keyword arguments)
    ((2, 3, 5), dict(scale_factor=2.5)),
    ((2, 3, 5), dict(size=3)),
    ((2, 3, 5), dict(size=7, mode="linear")),
    ((2, 3, 5), dict(size=3, mode="linear", align_corners=True)),
    ((1, 2, 5, 6), dict(scale_factor=2)),
    ((1, 2, 5, 6), dict(size=(9, 4), mode="bilinear")),
    ((1, 2, 5, 6), dict(scale_factor=(1.7, 0.6), mode="bilinear")),
    ((1, 2, 5, 6), dict(size=(11, 13), mode="bilinear", align_corners=True)),
    ((1, 2, 5, 6), dict(scale_factor=1.5, mode="nearest-exact")),
    ((1, 2, 5, 6), dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True)),
    ((1, 2, 3, 4, 5), dict(size=(5, 3, 7), mode="trilinear")),
    ((1, 2, 3, 4, 5), dict(scale_factor=(2, 1, 0.5))),
]


@pytest.mark.parametrize("shape, kwargs", INTERPOLATE_CASES)
def test_interpolate_matches_torch(shape, kwargs):
    compare(lambda x: F.interpolate(x, **kwargs), lambda x: TF.interpolate(x, **kwargs), [_x(shape)])


def test_upsample_module_and_float32_nearest_copies_exactly():
    x = _x((2, 3, 4, 4)).astype(np.float32)
    out = compare(lambda x: nn.Upsample(scale_factor=3)(x), lambda x: torch.nn.Upsample(scale_factor=3)(x), [x],
                  atol=1e-6, rtol=1e-6)  # the gradient sums 9 terms, in another order than torch
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, torch.nn.Upsample(scale_factor=3)(torch.tensor(x)).numpy())
    compare(lambda x: nn.Upsample(size=(7, 9), mode="bilinear")(x),
            lambda x: torch.nn.Upsample(size=(7, 9), mode="bilinear")(x), [x], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(size=4, scale_factor=2), "exactly one of size and scale_factor"),
    (dict(), "exactly one of size and scale_factor"),
    (dict(size=4, mode="bicubic"), "mode must be one of"),
    (dict(size=4, mode="bilinear"), "needs 4-D input"),
    (dict(size=4, align_corners=True), "align_corners can only be set"),
    (dict(size=(4, 4)), "size must be one positive number or 1"),
    (dict(scale_factor=0.1), "empty"),
])
def test_interpolate_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=f"interpolate: .*{match}"):
        F.interpolate(_x((1, 2, 5)), **kwargs)


# ------------------------------------------------------------------------- softmax dtype, stride=()
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_dtype_converts_first_and_its_gradient_flows_back(fn):
    x = _x((3, 5)).astype(np.float32)
    out = compare(lambda x: getattr(F, fn)(x, 1, dtype=np.float64),
                  lambda x: getattr(TF, fn)(x, 1, dtype=torch.float64), [x], atol=1e-7, rtol=1e-6)
    assert out.dtype == np.float64
    with pytest.raises(TypeError, match=f"{fn}: dtype must be a floating-point dtype"):
        getattr(F, fn)(x, 1, dtype=np.int32)


@pytest.mark.parametrize("fn", ["max_pool2d", "avg_pool2d"])
def test_pooling_stride_empty_means_the_kernel_size(fn):
    compare(lambda x: getattr(F, fn)(x, 2, stride=()), lambda x: getattr(TF, fn)(x, 2, stride=()),
            [_x((1, 2, 6, 6))])
    layer = getattr(nn, {"max_pool2d": "MaxPool2d", "avg_pool2d": "AvgPool2d"}[fn])(3, stride=[])
    assert layer(_x((1, 2, 6, 6))).shape == (1, 2, 2, 2)


# ------------------------------------------------------------------ convolve*d 'same' = SciPy's
@pytest.mark.parametrize("k, d", [(2, 1), (3, 1), (4, 1), (5, 1), (2, 3), (4, 2)])
def test_convolve1d_same_is_numpys_and_scipys_centre(k, d):
    x, w = _x(11), _x(k, 1)
    dense = np.zeros(d * (k - 1) + 1)
    dense[::d] = w                                             # the dilated kernel as a dense one
    expected = np.convolve(x, dense, mode="same")              # NumPy's 'same' is SciPy's for n >= k
    got = F.convolve1d(x[None, None], w[None, None], padding="same", dilation=d).numpy()[0, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's note about its own padded copy
@pytest.mark.parametrize("kernel", [(2, 2), (3, 4), (4, 3), (2, 5)])
def test_convolve2d_same_is_the_centre_of_the_full_convolution(kernel):
    x, w = _x((1, 1, 7, 8)), _x((1, 1) + kernel, 1)
    full = F.convolve2d(x, w, padding=tuple(k - 1 for k in kernel)).numpy()
    centre = full[..., (kernel[0] - 1) // 2:(kernel[0] - 1) // 2 + 7, (kernel[1] - 1) // 2:(kernel[1] - 1) // 2 + 8]
    np.testing.assert_allclose(F.convolve2d(x, w, padding="same").numpy(), centre, rtol=1e-12, atol=1e-12)
    # cross-correlation keeps PyTorch's split (the extra element after)
    compare(lambda x, w: F.conv2d(x, w, padding="same"), lambda x, w: TF.conv2d(x, w, padding="same"), [x, w])
