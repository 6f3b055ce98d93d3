"""Group actions (Shift, Flip, Rot90, Identity) and the finite groups C4, D4, Flips, Shifts.

The actions are checked against NumPy and torch (roll, flip, rot90); the
group laws (closure, associativity, identity, inverses) are checked on
every group the package defines, and composition against applying one
action after the other.
"""

import itertools

import numpy as np
import pytest
import torch

import convkit
from convkit.symmetry import (C4, D4, Action, Flip, Flips, Group, Identity, Rot90, Shift, Shifts,
                              from_name)

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 6, 6))
# A sample of the dihedral-times-translation group: every point part with a few shifts.
SAMPLE = [Action(k, f, v) for k in range(4) for f in (False, True) for v in ((0, 0), (1, -2), (-3, 1), (2, 2))]


# ------------------------------------------------------------------ actions
def test_actions_match_numpy_and_torch():
    t = torch.from_numpy(X)
    cases = [
        (Shift(1, 2), np.roll(X, (1, 2), axis=(-2, -1)), torch.roll(t, (1, 2), dims=(-2, -1))),
        (Shift(-2, 0), np.roll(X, -2, axis=-2), torch.roll(t, -2, dims=-2)),
        (Flip("h"), X[..., ::-1, :], torch.flip(t, dims=(-2,))),
        (Flip(-1), X[..., ::-1], torch.flip(t, dims=(-1,))),
        (Rot90(1), np.rot90(X, 1, axes=(-2, -1)), torch.rot90(t, 1, dims=(-2, -1))),
        (Rot90(3), np.rot90(X, 3, axes=(-2, -1)), torch.rot90(t, 3, dims=(-2, -1))),
        (Identity(), X, t),
    ]
    for g, expected, from_torch in cases:
        np.testing.assert_array_equal(g(X), expected)
        np.testing.assert_array_equal(g(X), from_torch.numpy())


def test_zero_filled_shift_fills_the_vacated_rows_and_columns():
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(Shift(1, -1, circular=False)(x),
                                  [[0, 0, 0, 0], [1, 2, 3, 0], [5, 6, 7, 0]])
    np.testing.assert_array_equal(Shift(0, 1)(x)[0], [3, 0, 1, 2])


def test_diagonal_reflections_are_transposes():
    np.testing.assert_array_equal((Rot90(1) * Flip("w"))(X), X.swapaxes(-1, -2))
    np.testing.assert_array_equal((Rot90(3) * Flip("w"))(X), X[..., ::-1, ::-1].swapaxes(-1, -2))


def test_tensor_in_tensor_out_and_gradient_is_the_inverse_action():
    x = convkit.tensor(X, requires_grad=True)
    g = Shift(1, 2) * Rot90(1) * Flip("w")
    y = g(x)
    assert isinstance(y, convkit.Tensor) and y.dtype == np.float64
    np.testing.assert_array_equal(y.data, g(X))
    upstream = RNG.standard_normal(y.shape)
    y.backward(upstream)
    np.testing.assert_array_equal(x.grad, g.inverse()(upstream))


def test_zero_filled_shift_gradient_is_masked():
    x = convkit.tensor(X, requires_grad=True)
    Shift(2, 0, circular=False)(x).sum().backward()
    expected = np.ones_like(X)
    expected[..., 4:, :] = 0  # the last two rows are shifted out
    np.testing.assert_array_equal(x.grad, expected)


def test_array_result_is_a_new_array():
    x = X.copy()
    y = Identity()(x)
    y[...] = 0
    np.testing.assert_array_equal(x, X)


def test_float32_and_integer_data_keep_their_dtype():
    assert Rot90(1)(X.astype(np.float32)).dtype == np.float32
    assert Shift(1, 0, circular=False)(np.arange(16).reshape(4, 4)).dtype.kind == "i"


# -------------------------------------------------------------- group laws
def test_composition_is_applying_one_after_the_other():
    for a, b in itertools.product(SAMPLE, repeat=2):
        np.testing.assert_array_equal((a * b).wrapped(6, 6)(X), a(b(X)))


def test_composition_is_associative():
    for a, b, c in itertools.product(SAMPLE[::3], repeat=3):
        assert (a * b) * c == a * (b * c)


def test_identity_and_inverses():
    for g in SAMPLE:
        assert g * Identity() == Identity() * g == g
        assert g * g.inverse() == Identity() == g.inverse() * g
        np.testing.assert_array_equal(g.inverse().wrapped(6, 6)(g(X)), X)


def test_equality_is_structural_on_the_canonical_form():
    assert Flip("h") * Flip("w") == Rot90(2)
    assert Rot90(4) == Rot90(0) == Identity() == Shift(0, 0) == Shift(0, 0, circular=False)
    assert Flip("w") * Flip("w") == Identity()
    assert Flip("w") * Rot90(1) == Rot90(-1) * Flip("w")
    assert Rot90(1) * Shift(1, 2) == Shift(-2, 1) * Rot90(1)
    assert Flip("w") * Shift(1, 2) == Shift(1, -2) * Flip("w")
    assert Shift(1, 0) != Shift(1, 0, circular=False)
    assert Rot90(1) ** 4 == Identity() and Rot90(1) ** -1 == Rot90(3)
    assert len({Rot90(2), Flip("h") * Flip("w"), Rot90(-2)}) == 1
    assert Rot90(1) != "Rot90(1)"


def test_repr_is_the_canonical_form():
    assert repr(Flip("h") * Flip("w")) == "Rot90(2)"
    assert repr(Flip("h")) == "Flip('h')"
    assert repr(Shift(1, 2) * Rot90(1) * Flip("w")) == "Shift(1, 2) * Rot90(1) * Flip('w')"
    assert repr(Shift(0, 3, circular=False)) == "Shift(0, 3, circular=False)"
    assert repr(Shift(2, -1).inverse()) == "Shift(-2, 1)"


def test_zero_filled_shifts_compose_only_in_one_direction_and_have_no_inverse():
    a, b = Shift(1, -1, circular=False), Shift(2, 0, circular=False)
    assert a * b == Shift(3, -1, circular=False)
    np.testing.assert_array_equal((a * b)(X), a(b(X)))
    np.testing.assert_array_equal((Rot90(1) * a)(X), Rot90(1)(a(X)))
    with pytest.raises(ValueError, match="zero-filled shift has no inverse"):
        a.inverse()
    with pytest.raises(ValueError, match="opposite directions"):
        a * Shift(-1, 0, circular=False)
    with pytest.raises(ValueError, match="circular and a zero-filled"):
        Shift(1, 0) * a


def test_wrapped_and_downsampled():
    assert Shift(7, -1).wrapped(6, 6) == Shift(1, 5)
    assert Shift(7, 0, circular=False).wrapped(6, 6) == Shift(7, 0, circular=False)
    assert (Shift(4, -2) * Flip("h")).downsampled(2) == Shift(2, -1) * Flip("h")
    assert Shift(6, 3).downsampled((3, 1)) == Shift(2, 3)
    with pytest.raises(ValueError, match=r"shift \(1, 0\) is not a multiple of the stride \(2, 2\)"):
        Shift(1, 0).downsampled(2)
    with pytest.raises(ValueError, match="stride must be"):
        Shift(2, 0).downsampled(0)


def test_actions_that_do_not_fit_the_data_are_rejected():
    with pytest.raises(ValueError, match=r"quarter turn needs a square map.*4x6.*\(1, 1, 4, 6\)"):
        Rot90(1)(np.zeros((1, 1, 4, 6)))
    assert Rot90(2)(np.zeros((1, 1, 4, 6))).shape == (1, 1, 4, 6)  # a half turn keeps the shape
    with pytest.raises(ValueError, match=r"shift \(6, 0\) does not fit the 6x6 map.*wrapped"):
        Shift(6, 0)(X)
    with pytest.raises(ValueError, match="every value would be shifted out"):
        Shift(0, -9, circular=False)(X)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        Flip("w")(np.zeros(5))
    with pytest.raises(TypeError, match="ndarray or a Tensor, got list"):
        Flip("w")([[1.0, 2.0]])


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="axis must be 'h', 'w', -2 or -1, got 'x'"):
        Flip("x")
    with pytest.raises(ValueError, match="got 2"):
        Flip(2)
    with pytest.raises(TypeError, match="k must be an int, got float 1.5"):
        Rot90(1.5)
    with pytest.raises(TypeError, match="dy must be an int"):
        Shift("1", 0)
    with pytest.raises(TypeError, match="shift must be a pair"):
        Action(shift=(1, 2, 3))
    with pytest.raises(TypeError, match="n must be an int"):
        Rot90(1) ** 0.5


# ------------------------------------------------------------------- groups
GROUPS = [C4, D4, Flips, Shifts(3, 4), Shifts(4, 6, stride=2), Shifts(6, 6, stride=(3, 2))]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_group_laws(group):
    members = set(group)
    assert Identity() in members
    for a in group:
        assert group.reduce(a.inverse()) in members
        for b in group:
            assert group.reduce(a * b) in members                      # closure
    for a, b, c in itertools.islice(itertools.product(group, repeat=3), 0, None, 7):
        assert (a * b) * c == a * (b * c)                              # associativity (sampled)
    assert group.is_closed()


def test_group_orders_and_subgroups():
    assert (len(C4), len(D4), len(Flips), len(Shifts(28, 28)), len(Shifts(28, 28, stride=2))) == (4, 8, 4, 784, 196)
    assert all(g in D4 for g in C4) and all(g in D4 for g in Flips)
    assert not all(g in C4 for g in D4)
    assert all(g in Shifts(4, 6) for g in Shifts(4, 6, stride=2))
    assert Shift(5, 0) * Shift(3, 0) in Shifts(4, 4, stride=2)       # (8, 0) is (0, 0) on a 4x4 grid


def test_group_elements_act_as_distinct_maps():
    """D4 acts faithfully: its eight elements give eight different images of a generic map."""
    images = {g(X).tobytes() for g in D4}
    assert len(images) == 8


def test_a_subset_need_not_be_a_group():
    subset = Shifts(4, 4, shifts=[(1, 0), (0, 1)])
    assert len(subset) == 3 and subset.name == "Shifts(4, 4, 3 given)"
    assert not subset.is_closed()
    assert Group([Identity(), Shift(1, 0, circular=False)]).is_closed() is False


def test_group_repr_and_from_name():
    assert repr(C4) == "C4: 4 elements [Identity(), Rot90(1), Rot90(2), Rot90(3)]"
    assert "(776 more)" in repr(Shifts(28, 28))
    assert from_name("d4", 5, 5) is D4
    assert from_name("shifts", 3, 5).name == "Shifts(3, 5)"
    with pytest.raises(ValueError, match="from_name: name must be one of shifts, flips, c4, d4, got 'c8'"):
        from_name("c8", 5, 5)


def test_bad_group_arguments():
    with pytest.raises(ValueError, match=r"stride \(2, 2\) must divide the grid \(5, 4\)"):
        Shifts(5, 4, stride=2)
    with pytest.raises(ValueError, match="either stride"):
        Shifts(4, 4, stride=2, shifts=[(1, 1)])
    with pytest.raises(ValueError, match="h must be a positive int, got 0"):
        Shifts(0, 4)
    with pytest.raises(TypeError, match="element 1 must be an Action, got str"):
        Group([Identity(), "Rot90(1)"])
    with pytest.raises(TypeError, match=r"each shift must be a pair of ints \(dy, dx\), got 3"):
        Shifts(4, 4, shifts=[3])
    with pytest.raises(ValueError, match="at least one element"):
        Group([])
