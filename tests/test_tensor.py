"""Tensor arithmetic, indexing, shapes, reductions and backward semantics against torch."""

from __future__ import annotations

import numpy as np
import pytest
from oracle import compare, torch

import convkit
from convkit.testing.gradcheck import gradcheck

RNG = np.random.default_rng(1234)


def randn(*shape):
    return RNG.standard_normal(shape)


def positive(*shape):
    return np.abs(RNG.standard_normal(shape)) + 0.5


BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((5,), (1,)), ((), (2, 3)),
                    ((2, 3), ()), ((1, 3, 1), (2, 1, 4))]
BINARY = {
    "add": (lambda a, b: a + b, randn),
    "sub": (lambda a, b: a - b, randn),
    "mul": (lambda a, b: a * b, randn),
    "div": (lambda a, b: a / b, positive),
}


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("sa,sb", BROADCAST_SHAPES)
def test_binary_broadcasting(op, sa, sb):
    fn, make_b = BINARY[op]
    compare(fn, fn, [randn(*sa), make_b(*sb)])


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1.5, 1, 0, 2.7])
def test_pow(exponent):
    fn = lambda a: a ** exponent  # noqa: E731
    compare(fn, fn, [positive(3, 4)])


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                                   ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
                                   ((4,), (2, 4, 5)), ((2, 3, 4), (4,)), ((3, 4), (2, 4, 5))])
def test_matmul(sa, sb):
    fn = lambda a, b: a @ b  # noqa: E731
    compare(fn, fn, [randn(*sa), randn(*sb)])


REFLECTED = {
    "radd": lambda c, t: c + t,
    "rsub": lambda c, t: c - t,
    "rmul": lambda c, t: c * t,
    "rdiv": lambda c, t: c / t,
}


@pytest.mark.parametrize("op", REFLECTED)
@pytest.mark.parametrize("const", ["scalar", "ndarray"])
def test_reflected_ops(op, const):
    fn = REFLECTED[op]
    c = 1.7 if const == "scalar" else randn(2, 1)
    th_c = c if const == "scalar" else torch.tensor(c)
    compare(lambda t: fn(c, t), lambda t: fn(th_c, t), [positive(2, 3)])


def test_reflected_matmul_with_ndarray():
    c = randn(2, 3)
    out = compare(lambda t: c @ t, lambda t: torch.tensor(c) @ t, [randn(3, 4)])
    assert out.shape == (2, 4)


def test_operands_mixed_in_one_expression():
    fn = lambda a, b: (2.0 - a) * (b / 3.0) + 1.0 / (a * a + 1.0) - (-b)  # noqa: E731
    compare(fn, fn, [randn(3, 4), randn(4)])


@pytest.mark.parametrize("name,make", [("exp", randn), ("log", positive), ("sqrt", positive), ("abs", randn)])
def test_unary(name, make):
    compare(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), [make(3, 5)])


def test_neg_and_pos():
    compare(lambda t: -(+t), lambda t: -(+t), [randn(4)])


INDICES = [
    np.s_[1:3],
    np.s_[::2, 2],
    np.s_[..., 1:],
    np.s_[None, 0, :, -1],
    np.s_[np.array([0, 2, 0, 0])],            # repeats: gradients add up
    np.s_[np.array([1, 1]), np.array([3, 3])],
    np.s_[:, np.array([[0, 1], [1, 0]])],
    np.s_[-1],
    (slice(0, 3, 2), slice(None)),
]


@pytest.mark.parametrize("index", INDICES, ids=range(len(INDICES)))
def test_indexing(index):
    th_index = tuple(torch.tensor(i) if isinstance(i, np.ndarray) else i for i in index) \
        if isinstance(index, tuple) else (torch.tensor(index) if isinstance(index, np.ndarray) else index)
    compare(lambda t: t[index], lambda t: t[th_index], [randn(3, 4, 2)])


def test_boolean_mask_indexing():
    x = randn(3, 4)
    mask = x > 0
    compare(lambda t: t[mask], lambda t: t[torch.tensor(mask)], [x])


def test_index_with_a_tensor():
    idx = np.array([2, 0, 2])
    compare(lambda t: t[convkit.tensor(idx)], lambda t: t[torch.tensor(idx)], [randn(3, 2)])


def test_repeated_integer_index_gradient_adds():
    x = convkit.tensor(np.zeros(3), requires_grad=True)
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


SHAPE_OPS = [
    ("reshape", lambda t: t.reshape(6, 4), lambda t: t.reshape(6, 4)),
    ("reshape_tuple", lambda t: t.reshape((4, -1)), lambda t: t.reshape((4, -1))),
    ("view", lambda t: t.view(2, 12), lambda t: t.view(2, 12)),
    ("permute", lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1)),
    ("permute_neg", lambda t: t.permute((-1, 1, 0)), lambda t: t.permute((-1, 1, 0))),
    ("transpose", lambda t: t.transpose(0, 2), lambda t: t.transpose(0, 2)),
    ("transpose_neg", lambda t: t.transpose(-1, -2), lambda t: t.transpose(-1, -2)),
    ("flatten", lambda t: t.flatten(), lambda t: t.flatten()),
    ("flatten_1", lambda t: t.flatten(1), lambda t: t.flatten(1)),
    ("flatten_0_1", lambda t: t.flatten(0, 1), lambda t: t.flatten(0, 1)),
    ("flatten_neg", lambda t: t.flatten(-2, -1), lambda t: t.flatten(-2, -1)),
    ("T2d", lambda t: t.reshape(6, 4).T, lambda t: t.reshape(6, 4).T),
]


@pytest.mark.parametrize("name,ck_fn,th_fn", SHAPE_OPS, ids=[s[0] for s in SHAPE_OPS])
def test_shape_ops(name, ck_fn, th_fn):
    compare(ck_fn, th_fn, [randn(2, 3, 4)])


def test_flatten_of_a_scalar_gives_one_element():
    compare(lambda t: t.flatten(), lambda t: t.flatten(), [np.array(2.5)])


REDUCTIONS = [(None, False), (0, False), (1, True), (-1, False), ((0, 2), False), ((0, -1), True), ((1,), True)]


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@pytest.mark.parametrize("dim,keepdim", REDUCTIONS)
def test_reductions(name, dim, keepdim):
    def th_fn(t):
        if dim is None:
            return getattr(t, "amax" if name == "max" else name)()
        return getattr(t, "amax" if name == "max" else name)(dim=dim, keepdim=keepdim)

    compare(lambda t: getattr(t, name)(dim=dim, keepdim=keepdim), th_fn, [randn(2, 3, 4)])


def test_max_ties_share_the_gradient_like_amax():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    compare(lambda t: t.max(dim=1), lambda t: t.amax(dim=1), [x])
    compare(lambda t: t.max(), lambda t: t.amax(), [x])


def test_gradcheck_composite():
    def f(a, b):
        return ((a @ b) * a[:, :1] - (b.sum(dim=0) / 3.0)).exp().mean(dim=1) ** 2

    gradcheck(f, [randn(3, 2), randn(2, 4)])


def test_gradcheck_indexing_and_shapes():
    def f(a):
        picked = a.permute(1, 0, 2).reshape(4, 3)[np.array([0, 3, 3])]
        return picked[::-1].transpose(0, 1).flatten() * a.max()

    gradcheck(f, [randn(2, 2, 3)])


def test_float32_ops_against_torch():
    errors = []
    a, b, c = (RNG.standard_normal(s).astype(np.float32) for s in [(3, 4), (4,), (4, 5)])
    def reduce(x, y, z, zmax):
        return ((x + y) ** 2).sum(dim=1, keepdim=True) * x.mean() + zmax[:3, None]

    pairs = [(lambda x, y, z: (x * y - y / (x * x + 1.0)) @ z,) * 2,
             (lambda x, y, z: reduce(x, y, z, z.max(dim=0)), lambda x, y, z: reduce(x, y, z, z.amax(dim=0)))]
    for ck_fn, th_fn in pairs:
        ck = [convkit.tensor(v, requires_grad=True) for v in (a, b, c)]
        th = [torch.tensor(v, requires_grad=True) for v in (a, b, c)]
        out_ck = ck_fn(*ck)
        out_th = th_fn(*th)
        assert out_ck.dtype == np.float32
        cot = RNG.standard_normal(out_ck.shape).astype(np.float32)
        out_ck.backward(cot)
        out_th.backward(torch.tensor(cot))
        errors.append(np.max(np.abs(out_ck.data - out_th.detach().numpy())))
        for x, y in zip(ck, th):
            assert x.grad.dtype == np.float32
            errors.append(np.max(np.abs(x.grad - y.grad.numpy())))
    assert max(errors) < 1e-5


# ------------------------------------------------------------------ backward semantics
def test_leaf_gradients_accumulate_and_backward_twice_doubles():
    x = convkit.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, [2.0, 4.0])
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [7.0, 11.0])


def test_shared_subexpression_gradients_add():
    x = convkit.tensor([3.0], requires_grad=True)
    h = x * x
    (h + h * x).sum().backward()  # d/dx (x^2 + x^3) = 2x + 3x^2
    np.testing.assert_allclose(x.grad, [6.0 + 27.0])


def test_non_scalar_backward_needs_grad():
    y = convkit.tensor([1.0, 2.0], requires_grad=True) * 2.0
    with pytest.raises(ValueError, match="grad can be omitted only for a single-element tensor"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(3,\), expected \(2,\)"):
        y.backward(np.ones(3))
    y.backward(convkit.tensor([1.0, 1.0]))  # a Tensor is accepted as grad


def test_backward_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        convkit.tensor([1.0]).sum().backward()


def test_no_grad_context_and_decorator():
    w = convkit.tensor([1.0], requires_grad=True)
    with convkit.no_grad():
        assert not convkit.is_grad_enabled()
        y = w * 2.0
    assert convkit.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf

    @convkit.no_grad()
    def f(t):
        return t * 3.0

    assert not f(w).requires_grad
    assert convkit.is_grad_enabled()
    with convkit.no_grad():
        with convkit.no_grad():
            pass
        assert not convkit.is_grad_enabled()


def test_requires_grad_propagation():
    a = convkit.tensor([1.0, 2.0], requires_grad=True)
    b = convkit.tensor([3.0, 4.0])
    assert (a + b).requires_grad and not (b * b).requires_grad
    out = a * b
    assert not out.is_leaf and a.is_leaf
    out.sum().backward()
    assert b.grad is None
    np.testing.assert_allclose(a.grad, [3.0, 4.0])


def test_detach_shares_values_and_cuts_the_graph():
    a = convkit.tensor([1.0, 2.0], requires_grad=True)
    d = (a * 2.0).detach()
    assert not d.requires_grad and d.is_leaf
    y = (a * d).sum()
    y.backward()
    np.testing.assert_allclose(a.grad, [2.0, 4.0])  # d is a constant
    e = a.detach()
    e.data[0] = 10.0
    assert a.data[0] == 10.0


def test_requires_grad_rules():
    with pytest.raises(TypeError, match="floating-point"):
        convkit.tensor([1, 2], requires_grad=True)
    y = convkit.tensor([1.0], requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    x = convkit.tensor([1.0]).requires_grad_()
    assert x.requires_grad


def test_deep_chain_backward_has_no_recursion_error():
    x = convkit.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0])


def test_astype_gradient_returns_in_source_dtype():
    x = convkit.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [2.0, 4.0])
    assert x.double().float().dtype == np.float32


def test_comparisons_are_outside_the_graph():
    a = convkit.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for out, expected in [(a > 1.5, [False, True, True]), (a <= 2.0, [True, True, False]),
                          (a == a, [True, True, True]), (a != 2.0, [True, False, True]),
                          (a < convkit.tensor([2.0, 2.0, 2.0]), [True, False, False]),
                          (a >= 3.0, [False, False, True])]:
        assert out.dtype == np.bool_ and not out.requires_grad
        np.testing.assert_array_equal(out.data, expected)
    assert a.argmax().item() == 2 and not a.argmax().requires_grad


# ------------------------------------------------------------------ conversions and dtypes
def test_numpy_interop():
    t = convkit.tensor([[1.0, 2.0]])
    arr = np.asarray(t)
    assert arr is t.data and arr.dtype == np.float32
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert t.numpy() is t.data
    assert t.tolist() == [[1.0, 2.0]] and convkit.tensor(3.5).item() == 3.5
    assert t.shape == (1, 2) and t.size() == (1, 2) and t.size(1) == 2
    assert t.ndim == t.dim() == 2 and t.numel() == 2 and len(t) == 1


def test_dtype_rules():
    assert convkit.tensor([1.0, 2.0]).dtype == np.float32
    assert convkit.tensor(2.0).dtype == np.float32
    assert convkit.tensor(np.zeros(2)).dtype == np.float64
    assert convkit.tensor(np.zeros(2, dtype=np.float32)).dtype == np.float32
    assert convkit.tensor([1, 2]).dtype.kind == "i"
    assert convkit.tensor(np.float64(2.5)).dtype == np.float64  # NumPy scalars keep their dtype, as in torch
    assert convkit.tensor(np.float32(2.5)).dtype == np.float32
    assert convkit.tensor([1, 2], dtype=np.float64).dtype == np.float64
    f32 = convkit.tensor([1.0, 2.0])
    f64 = convkit.tensor(np.array([1.0, 2.0]))
    for scalar in (2, 2.5, np.float64(2.5)):
        assert (f32 * scalar).dtype == np.float32 and (scalar - f32).dtype == np.float32
        assert (f64 / scalar).dtype == np.float64
    assert (f32 ** 2).dtype == np.float32
    assert (convkit.tensor([1, 2]) * 3).dtype.kind == "i"
    assert (f32 + f64).dtype == np.float64  # as torch's type promotion


def test_default_dtype_switch():
    convkit.set_default_dtype(np.float64)
    try:
        assert convkit.tensor([1.0]).dtype == np.float64
        assert convkit.get_default_dtype() == np.float64
    finally:
        convkit.set_default_dtype(np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        convkit.set_default_dtype(np.int32)


def test_tensor_copies_its_data():
    arr = np.zeros(2)
    t = convkit.tensor(arr)
    arr[0] = 1.0
    assert t.data[0] == 0.0
    assert convkit.tensor(t).data is not t.data


def test_pow_exponent_must_be_a_number():
    with pytest.raises(TypeError, match="exponent must be a real number"):
        convkit.tensor([1.0]) ** convkit.tensor([2.0])


def test_repr():
    assert repr(convkit.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(convkit.tensor(np.array([1.0]), requires_grad=True)) == \
        "tensor([1.], dtype=float64, requires_grad=True)"
