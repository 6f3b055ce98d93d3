"""How ``symmetry.report`` runs: the compiled comparison, the default sample, memory, and calls that change."""

import importlib
import json
import weakref

import numpy as np
import pytest

import convkit
import convkit.nn as nn
from convkit.cli import main
from convkit.symmetry import D4, Flip, Rot90, Shift, Shifts, check, report
from convkit.symmetry.checks import element_error
from convkit.symmetry.differences import max_abs_difference

F64 = np.float64
report_module = importlib.import_module("convkit.symmetry.report")   # the package's `report` is the function
ACTIONS = [Shift(0, 0), Shift(3, -5), Shift(2, 3, circular=False), Shift(-1, 4, circular=False),
           Rot90(1) * Flip("w") * Shift(2, 1), *D4]


@pytest.fixture(autouse=True)
def seeded():
    convkit.manual_seed(0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("g", ACTIONS, ids=repr)
def test_max_abs_difference_is_numpy_on_the_transformed_array(g, dtype):
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((2, 3, 9, 9)).astype(dtype) for _ in range(2))
    expected = np.max(np.abs(a.astype(F64) - g(b).astype(F64)))
    assert max_abs_difference(a.reshape(6, 81), b.reshape(6, 81), g.source_index(9, 9).ravel()) == expected


def test_max_abs_difference_propagates_nan_stops_above_a_bound_and_takes_empty_arrays():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((64, 1000)), rng.standard_normal((64, 1000))   # large enough for the threads
    src = Shift(0, 7).source_index(1, 1000).ravel()
    full = max_abs_difference(a, b, src)
    assert full == np.max(np.abs(a - b[:, src]))
    assert max_abs_difference(a, b, src, stop_above=full) == full          # never above: the exact maximum
    assert full >= max_abs_difference(a, b, src, stop_above=0.5) > 0.5     # above: some value above the bound
    a[40, 3] = np.nan
    assert np.isnan(max_abs_difference(a, b, src))
    assert max_abs_difference(a[:0], b[:0], src) == 0.0


def test_element_error_is_the_smallest_over_the_nearest_output_shifts():
    """Shifts that the stride does not divide: the early stop of the later targets leaves the minimum exact."""
    rng = np.random.default_rng(3)
    y, y_g = rng.standard_normal((1, 4, 6, 6)), rng.standard_normal((1, 4, 6, 6))
    for g in (Shift(3, 5), Shift(1, 0), Shift(5, 2)):
        error, note = element_error(y, y_g, g, (2, 2), 2.0)
        (dy, dx) = g.shift
        targets = {(cy, cx) for cy in (dy // 2, -(-dy // 2)) for cx in (dx // 2, -(-dx // 2))}
        expected = min(np.max(np.abs(y_g - Shift(cy, cx).wrapped(6, 6)(y))) for cy, cx in targets) / 2.0
        assert error == expected and note == f"shift {g.shift} is not a multiple of the output stride (2, 2)"


def test_rows_equal_check_of_each_prefix():
    """Each row's error is what ``check`` measures on the model cut after that layer, element by element."""
    layers = [nn.Conv2d(1, 3, 3, padding=1, padding_mode="circular", dtype=F64), nn.ReLU(),
              nn.Conv2d(3, 3, 3, padding=1, dtype=F64), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(27, 2, dtype=F64)]
    net = nn.Sequential(*layers)
    group = Shifts(6, 6)
    rep = report(net, group, (1, 6, 6), batch_size=5)
    x = np.random.default_rng(0).standard_normal((1, 1, 6, 6))
    for i, row in enumerate(rep.rows):
        prefix = nn.Sequential(*layers[:i + 1])
        expected = check(prefix, group, x, invariant=row.kind == "invariance")
        assert row.max_error == pytest.approx(expected.max_error, rel=1e-12)    # a batch of 5 vs one at a time
        assert row.failing == len(expected.failures)


def test_auto_sample_follows_the_compare_budget(monkeypatch):
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular", dtype=F64), nn.ReLU())
    values = 2 * 16 * 16 * 2 + 16 * 16      # the input, the conv's output, the ReLU's output (its input is shared)
    assert report(net, Shifts(16, 16), (1, 16, 16)).checked == 256                 # small: every element
    monkeypatch.setattr(report_module, "COMPARED", 150 * values)
    rep = report(net, Shifts(16, 16), (1, 16, 16))
    assert (rep.checked, rep.sampled) == (150, True)
    assert "(256 elements, 150 sampled at random)" in str(rep)
    assert "150 of the 256 elements sampled: with 95 % confidence at most 2.0% of the group fails" in str(rep)
    monkeypatch.setattr(report_module, "COMPARED", 1)
    assert report(net, Shifts(16, 16), (1, 16, 16)).checked == report_module.MIN_SAMPLES
    assert report(net, Shifts(16, 16), (1, 16, 16), samples=200).checked == 200     # a number is a number
    assert report(net, Shifts(16, 16), (1, 16, 16), samples=None).checked == 256


def test_default_sample_of_the_command_line(monkeypatch, capsys):
    monkeypatch.setattr(report_module, "COMPARED", 1)
    assert main(["symmetry", "conv3-2p1 relu gap", "--input", "1x12x12", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["group_size"], result["checked"]) == (144, report_module.MIN_SAMPLES)
    assert main(["symmetry", "conv3-2p1 relu gap", "--input", "1x12x12", "--samples", "auto", "--format",
                 "json"]) == 0
    assert json.loads(capsys.readouterr().out)["checked"] == report_module.MIN_SAMPLES


def test_a_batch_does_not_keep_every_layers_output():
    """Errors are taken as each call returns: while a batch of transformed inputs runs, the outputs of the
    calls before the previous one are gone (keeping them all grew with the depth)."""
    made, alive = [], []

    class Probe(nn.Module):
        def forward(self, x):
            y = x * 1.0
            if y.shape[0] > 1:      # a batch of transformed inputs (the untransformed pass is kept on purpose)
                alive.append(sum(ref() is not None for ref in made))
                made.append(weakref.ref(y.data))
            return y

    layers = [Probe()]
    for _ in range(6):
        layers += [nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular", dtype=F64), Probe()]
    rep = report(nn.Sequential(nn.Conv2d(1, 2, 1, dtype=F64), *layers), Shifts(4, 4), (1, 4, 4), batch_size=8)
    assert rep.holds and len(alive) == 2 * 7
    assert max(alive) <= 1, alive      # at most the previous probe's output: the current call's input


def test_a_forward_whose_calls_depend_on_the_input_is_rejected():
    class Branching(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.ReLU(), nn.Tanh()

        def forward(self, x):
            return self.a(x) if float(x.data[0, 0, 0, 0]) > 0 else self.b(x)

    class Fewer(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.ReLU(), nn.Tanh()

        def forward(self, x):
            y = self.a(x)
            return self.b(y) if float(x.data[0, 0, 0, 0]) > 0 else y

    for model in (Branching(), Fewer()):
        x0 = np.random.default_rng(0).standard_normal((1, 1, 4, 4))
        assert x0[0, 0, 0, 0] > 0 > Shift(1, 0)(x0)[0, 0, 0, 0]    # the shift changes the branch
        with pytest.raises(ValueError, match="forward calls other modules for a transformed input"):
            report(model, [Shift(1, 0)], (1, 4, 4))
