"""mse_loss, nll_loss and cross_entropy against PyTorch over every option, finite differences, bad input."""

import itertools

import numpy as np
import pytest
from oracle import compare, raises_like_torch, torch

import convkit
import convkit.functional as F
import convkit.nn as nn
from convkit.testing.gradcheck import gradcheck

TF = torch.nn.functional
REDUCTIONS = ["mean", "sum", "none"]
# (input shape, class count is axis 1, or axis 0 when unbatched)
SHAPES = [(6, 5), (3, 4, 7), (2, 3, 4, 5), (5,)]


def class_count(shape):
    return shape[0] if len(shape) == 1 else shape[1]


def target_shape(shape):
    return () if len(shape) == 1 else shape[:1] + shape[2:]


def class_targets(shape, seed, ignore=None):
    """Random class indices for inputs of ``shape``; about a quarter set to ``ignore`` (never all, unless unbatched)."""
    r = np.random.default_rng(seed)
    t = r.integers(0, class_count(shape), size=target_shape(shape))
    if ignore is not None and t.ndim:
        t.reshape(-1)[1::4] = ignore
    return t


def weights(shape, seed):
    return np.random.default_rng(seed).uniform(0.2, 2.0, class_count(shape))


def torch_opt(w):
    return None if w is None else torch.tensor(w)


# ------------------------------------------------------------------ mse_loss
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4, 5), ()])
def test_mse_matches_torch_for_input_and_target(reduction, shape):
    r = np.random.default_rng(1)
    compare(lambda a, b: F.mse_loss(a, b, reduction=reduction),
            lambda a, b: TF.mse_loss(a, b, reduction=reduction),
            [r.standard_normal(shape), r.standard_normal(shape)])


# ------------------------------------------------------------------ nll_loss
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 1])
@pytest.mark.parametrize("shape", SHAPES)
def test_nll_matches_torch(reduction, with_weight, ignore_index, shape):
    seed = hash((reduction, with_weight, ignore_index, shape)) % 2 ** 32
    logp = np.random.default_rng(seed).standard_normal(shape) - 2
    t = class_targets(shape, seed, ignore=-100 if ignore_index == -100 else None)
    w = weights(shape, seed) if with_weight else None
    compare(lambda a, b: F.nll_loss(a, b, w, ignore_index=ignore_index, reduction=reduction),
            lambda a, b: TF.nll_loss(a, b, torch_opt(w), ignore_index=ignore_index, reduction=reduction),
            [logp, t])


def test_nll_ignored_items_give_zero_even_for_log_zero():
    """An ignored item whose log-probability is -inf adds 0, as in torch (no 0 * inf = NaN)."""
    logp = np.array([[-0.7, -0.7, -np.inf], [-1.6, -0.2, -np.inf], [-2.3, -1.6, -0.4]])
    t = np.array([0, 2, 2])
    for reduction in REDUCTIONS:
        compare(lambda a, b: F.nll_loss(a, b, ignore_index=2, reduction=reduction),
                lambda a, b: TF.nll_loss(a, b, ignore_index=2, reduction=reduction), [logp, t])


# ------------------------------------------------------- cross_entropy (ids)
CE_CASES = list(itertools.product(REDUCTIONS, [False, True], [None, -100, 2], [0.0, 0.1, 1.0], SHAPES))


@pytest.mark.parametrize("reduction,with_weight,ignore,smoothing,shape", CE_CASES)
def test_cross_entropy_class_indices_match_torch(reduction, with_weight, ignore, smoothing, shape):
    """Every option combination: reductions, class weights, ignore_index (default -100 and a real class),
    label smoothing (0, 0.1, 1) with and without both, 2-D, spatial 1-D/2-D and unbatched inputs."""
    seed = CE_CASES.index((reduction, with_weight, ignore, smoothing, shape))
    x = np.random.default_rng(seed).standard_normal(shape) * 2
    t = class_targets(shape, seed, ignore=ignore if ignore == -100 else None)
    ignore_index = -100 if ignore is None else ignore
    w = weights(shape, seed) if with_weight else None
    opts = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
    compare(lambda a, b: F.cross_entropy(a, b, w, **opts),
            lambda a, b: TF.cross_entropy(a, b, torch_opt(w), **opts), [x, t])


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("with_weight", [False, True])
def test_cross_entropy_is_stable_for_huge_logits(smoothing, with_weight):
    r = np.random.default_rng(3)
    x = r.standard_normal((6, 4)) * 1e4
    w = weights(x.shape, 3) if with_weight else None
    t = r.integers(0, 4, size=6)
    out = compare(lambda a, b: F.cross_entropy(a, b, w, label_smoothing=smoothing),
                  lambda a, b: TF.cross_entropy(a, b, torch_opt(w), label_smoothing=smoothing), [x, t])
    assert np.isfinite(out)
    p = r.dirichlet(np.ones(4), size=6)
    compare(lambda a, b: F.cross_entropy(a, b, w, label_smoothing=smoothing),
            lambda a, b: TF.cross_entropy(a, b, torch_opt(w), label_smoothing=smoothing), [x, p])


def test_cross_entropy_masked_logits_minus_inf():
    """A class masked out with a -inf logit gets probability 0 and gradient 0, as in torch."""
    x = np.array([[1.0, -np.inf, 0.5], [-np.inf, 2.0, 0.1]])
    t = np.array([0, 2])
    for reduction in REDUCTIONS:
        compare(lambda a, b: F.cross_entropy(a, b, reduction=reduction),
                lambda a, b: TF.cross_entropy(a, b, reduction=reduction), [x, t])


def test_cross_entropy_all_ignored_mean_is_nan_like_torch():
    x, t = np.zeros((3, 4)), np.full(3, -100)
    ours = F.cross_entropy(x, t).item()
    assert np.isnan(ours) and np.isnan(TF.cross_entropy(torch.tensor(x), torch.tensor(t)).item())


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64])
def test_cross_entropy_accepts_integer_target_dtypes(dtype):
    x = np.random.default_rng(0).standard_normal((5, 3))
    t = np.array([0, 2, 1, 1, 0])
    ours = F.cross_entropy(x, t.astype(dtype)).item()
    assert ours == pytest.approx(TF.cross_entropy(torch.tensor(x), torch.tensor(t)).item(), rel=1e-12)


# ------------------------------------------------ cross_entropy (probabilities)
PROB_CASES = list(itertools.product(REDUCTIONS, [False, True], [0.0, 0.3], SHAPES))


@pytest.mark.parametrize("reduction,with_weight,smoothing,shape", PROB_CASES)
def test_cross_entropy_probability_targets_match_torch(reduction, with_weight, smoothing, shape):
    """Gradients for both the logits and the (differentiable) probability target."""
    seed = PROB_CASES.index((reduction, with_weight, smoothing, shape))
    r = np.random.default_rng(seed)
    x = r.standard_normal(shape) * 2
    p = np.moveaxis(r.dirichlet(np.ones(class_count(shape)), size=target_shape(shape) or None), -1,
                    0 if len(shape) == 1 else 1)
    w = weights(shape, seed) if with_weight else None
    opts = dict(reduction=reduction, label_smoothing=smoothing)
    compare(lambda a, b: F.cross_entropy(a, b, w, **opts),
            lambda a, b: TF.cross_entropy(a, b, torch_opt(w), **opts), [x, p])


# ----------------------------------------------------------- finite differences
def test_gradcheck_losses():
    r = np.random.default_rng(5)
    x, y = r.standard_normal((3, 4)), r.standard_normal((3, 4))
    t = np.array([1, -100, 3])
    w = np.array([0.5, 1.0, 2.0, 1.5])
    gradcheck(lambda a, b: F.mse_loss(a, b, reduction="sum"), [x, y])
    gradcheck(lambda a: F.nll_loss(a, t, w), [x])
    gradcheck(lambda a: F.cross_entropy(a, t, w, label_smoothing=0.2), [x])
    gradcheck(lambda a: F.cross_entropy(a, t[[0, 2]], reduction="none"), [x[:2]])
    gradcheck(lambda a: F.cross_entropy(a.reshape(1, 2, 2, 3), np.array([[[0, 1, 1], [1, 0, 0]]])), [x])
    gradcheck(lambda a, b: F.cross_entropy(a, b, w, label_smoothing=0.1), [x, np.abs(y)])


# -------------------------------------------------------------------- modules
def test_loss_modules_match_torch_and_carry_weight_buffer():
    r = np.random.default_rng(8)
    x = r.standard_normal((4, 3, 5))
    t = r.integers(0, 3, size=(4, 5))
    w = np.array([0.3, 1.0, 2.0])
    theirs = torch.nn.CrossEntropyLoss(torch.tensor(w), ignore_index=1, reduction="sum", label_smoothing=0.1)
    ours = nn.CrossEntropyLoss(w, ignore_index=1, reduction="sum", label_smoothing=0.1)
    assert repr(ours) == repr(theirs) == "CrossEntropyLoss()"
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    compare(ours, theirs, [x, t])
    compare(nn.NLLLoss(w, reduction="none"), torch.nn.NLLLoss(torch.tensor(w), reduction="none"), [x, t])
    compare(nn.MSELoss(reduction="sum"), torch.nn.MSELoss(reduction="sum"), [x, x[::-1].copy()])
    assert nn.NLLLoss().state_dict() == {}


def test_loss_module_weight_from_list_uses_default_dtype_and_loads_torch_state():
    ours = nn.NLLLoss([1, 2, 3])
    assert ours.weight.dtype == convkit.get_default_dtype()
    ours.load_state_dict({"weight": torch.tensor([0.5, 1.0, 1.5])})
    np.testing.assert_array_equal(ours.weight, np.float32([0.5, 1.0, 1.5]))


# ------------------------------------------------------------------ bad input
def test_bad_reduction():
    x, t = np.zeros((2, 3)), np.array([0, 1])
    msg = raises_like_torch(lambda: F.cross_entropy(x, t, reduction="avg"),
                            lambda: TF.cross_entropy(torch.tensor(x), torch.tensor(t), reduction="avg"))
    assert "reduction must be one of" in msg and "'avg'" in msg
    with pytest.raises(ValueError, match="mse_loss: reduction"):
        F.mse_loss(x, x, reduction="mean ")
    with pytest.raises(ValueError, match="NLLLoss: reduction"):
        nn.NLLLoss(reduction="batchmean")


def test_shape_mismatches_name_both_shapes():
    with pytest.raises(ValueError, match=r"target shape \(3, 1\) differs from input shape \(3,\)"):
        F.mse_loss(np.zeros(3), np.zeros((3, 1)))
    msg = raises_like_torch(lambda: F.cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 3), np.int64)),
                            lambda: TF.cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long)))
    assert "target shape (2, 3)" in msg and "input shape (2, 3, 4)" in msg and "(2, 4)" in msg
    with pytest.raises(ValueError, match=r"nll_loss: target shape \(4,\) does not match input shape \(3, 5\)"):
        F.nll_loss(np.zeros((3, 5)), np.zeros(4, np.int64))
    with pytest.raises(ValueError, match=r"probabilities .* shape \(2, 3\), got \(2, 4\)"):
        F.cross_entropy(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="input must have a class axis"):
        F.cross_entropy(np.zeros(()), np.zeros((), np.int64))


@pytest.mark.parametrize("bad", [3, -1])
def test_class_index_out_of_range(bad):
    x, t = np.zeros((2, 3)), np.array([0, bad])
    msg = raises_like_torch(lambda: F.cross_entropy(x, t), lambda: TF.cross_entropy(torch.tensor(x), torch.tensor(t)))
    assert f"class index {bad}" in msg and "[0, 3)" in msg
    with pytest.raises(ValueError, match=f"nll_loss: target holds class index {bad}"):
        F.nll_loss(x, t)


def test_bad_weight_target_dtype_and_options():
    x, t = np.zeros((2, 3)), np.array([0, 1])
    xt, tt = torch.tensor(x), torch.tensor(t)
    msg = raises_like_torch(lambda: F.cross_entropy(x, t, np.ones(4)),
                            lambda: TF.cross_entropy(xt, tt, torch.ones(4, dtype=torch.float64)))
    assert "weight must have one entry per class, shape (3,)" in msg and "(4,)" in msg
    msg = raises_like_torch(lambda: F.nll_loss(x, t.astype(np.float64)),
                            lambda: TF.nll_loss(xt, tt.double()), ck_exc=TypeError)
    assert "target must hold integer class indices, got dtype float64" in msg
    with pytest.raises(TypeError, match="got dtype bool"):
        F.cross_entropy(x, np.array([True, False]))
    msg = raises_like_torch(lambda: F.cross_entropy(x, t, label_smoothing=1.5),
                            lambda: TF.cross_entropy(xt, tt, label_smoothing=1.5))
    assert "label_smoothing must be in [0, 1], got 1.5" in msg
    with pytest.raises(TypeError, match="ignore_index must be an int, got float"):
        F.nll_loss(x, t, ignore_index=1.0)


def test_mixed_float_dtypes_raise_type_error_naming_both():
    x32, t = np.zeros((2, 3), np.float32), np.array([0, 1])
    msg = raises_like_torch(lambda: F.nll_loss(x32, t, np.ones(3)),
                            lambda: TF.nll_loss(torch.tensor(x32), torch.tensor(t), torch.ones(3, dtype=torch.float64)),
                            ck_exc=TypeError)
    assert "weight has dtype float64 but input has dtype float32" in msg
    with pytest.raises(TypeError, match="target has dtype float64 but input has dtype float32"):
        F.mse_loss(x32, np.zeros((2, 3)))
    with pytest.raises(TypeError, match="target has dtype float64 but input has dtype float32"):
        F.cross_entropy(x32, np.zeros((2, 3)))


# -------------------------------------------------------------------- float32
F32_CASES = {
    "mse_loss": (lambda a, b: F.mse_loss(a, b), lambda a, b: TF.mse_loss(a, b), "float"),
    "nll_loss": (lambda a, b: F.nll_loss(a, b, ignore_index=0),
                 lambda a, b: TF.nll_loss(a, b, ignore_index=0), "index"),
    "cross_entropy": (lambda a, b: F.cross_entropy(a, b, label_smoothing=0.1, reduction="none"),
                      lambda a, b: TF.cross_entropy(a, b, label_smoothing=0.1, reduction="none"), "index"),
    "cross_entropy_prob": (lambda a, b: F.cross_entropy(a, b), lambda a, b: TF.cross_entropy(a, b), "prob"),
}


@pytest.mark.parametrize("name", list(F32_CASES))
def test_float32_matches_torch(name):
    ck, th, kind = F32_CASES[name]
    r = np.random.default_rng(9)
    x = (r.standard_normal((32, 10, 6)) * 3).astype(np.float32)
    if kind == "float":
        t = r.standard_normal(x.shape).astype(np.float32)
    elif kind == "index":
        t = r.integers(0, 10, size=(32, 6))
    else:
        t = np.moveaxis(r.dirichlet(np.ones(10), size=(32, 6)), -1, 1).astype(np.float32)
    out = compare(ck, th, [x, t], atol=2e-6, rtol=2e-5)
    assert out.dtype == np.float32
