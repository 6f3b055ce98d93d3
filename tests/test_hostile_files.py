"""Untrusted input cannot make convkit allocate more than it legitimately describes (issue 15, item 3).

* model names and spec strings are sized before any weight is allocated;
* IDX files (raw or gzip) are read no further than their header implies;
* safetensors files are validated whole before a tensor is allocated.

The property-based tests (hypothesis) feed arbitrary and mutated input:
each either loads correctly or raises ValueError / TypeError, and what it
returns is never larger than the file.
"""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import convkit.nn as nn
from convkit import models
from convkit.models import budget
from convkit.models.spec import spec_parameters

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def n_params(net):
    return sum(p.numel() for p in net.parameters())


# ----------------------------------------------------------------- model sizes

@pytest.fixture
def no_init(monkeypatch):
    """Weights left as np.empty (untouched pages): a full VGG is then built in milliseconds, not seconds."""
    for cls in (nn.Linear, nn.Conv2d):
        monkeypatch.setattr(cls, "reset_parameters", lambda self: None)
    for name in ("kaiming_normal_", "normal_"):   # VGG's own initialisation of the large weights
        monkeypatch.setattr(nn.init, name, lambda *args, **kwargs: None)


@pytest.mark.parametrize("name", [line.split(": ", 1)[0] for line in models.available()])
@pytest.mark.parametrize("in_channels, num_classes", [(1, 10), (3, 1000), (2, 1)])
def test_parameter_count_of_every_builtin_equals_the_built_model(no_init, name, in_channels, num_classes):
    side = 32 if name.startswith("vgg") else 28
    size = (in_channels, side, side)
    assert models.parameter_count(name, size, num_classes) == n_params(models.build(name, size, num_classes))


def test_the_default_budget_admits_every_builtin_with_margin():
    names = [line.split(": ", 1)[0] for line in models.available()]
    largest = max(models.parameter_count(name, (3, 28, 28) if name in ("lenet5", "convnet") else (3, 224, 224),
                                         1000) for name in names)
    assert largest == 143_678_248   # VGG-19 with batch norm
    assert largest * 1.3 < budget.DEFAULT_MAX_PARAMETERS


def test_a_builtin_over_the_budget_is_refused_before_it_is_built(monkeypatch):
    monkeypatch.setattr(models.vgg, "VGG", lambda *args, **kwargs: pytest.fail("VGG was built"))
    with pytest.raises(ValueError) as info:
        models.build("vgg11", (3, 32, 32), num_classes=100_000)
    assert str(info.value).startswith(f"build: model 'vgg11' has "
                                      f"{models.parameter_count('vgg11', (3, 32, 32), 100_000):,} parameters, "
                                      f"more than the budget of max_parameters=200,000,000")
    assert "--max-parameters N" in str(info.value)
    with pytest.raises(ValueError, match="build: model 'lenet5' has 61,706 parameters, more than the budget of "
                                         "max_parameters=61,705"):
        models.build("lenet5", max_parameters=61_705)


def test_build_passes_its_budget_to_a_spec():
    assert n_params(models.build("fc10", max_parameters=7850)) == 7850
    with pytest.raises(ValueError, match="spec 'fc10' has 7,850 parameters, more than the budget of "
                                         "max_parameters=7,849"):
        models.build("fc10", max_parameters=7849)
    with pytest.raises(ValueError, match="10,079,600,010 parameters"):
        models.build("fc100000 fc100000 fc10")


def test_parameter_count_rejects_what_build_rejects():
    with pytest.raises(ValueError, match="parameter_count: unknown model 'lenet6'"):
        models.parameter_count("lenet6")
    with pytest.raises(ValueError, match="parameter_count: vgg16 needs inputs of at least 32x32"):
        models.parameter_count("vgg16")
    with pytest.raises(TypeError, match="parameter_count: model must be a str"):
        models.parameter_count(None)


SPEC_ALPHABET = st.sampled_from(["conv", "C", "pool", "P", "A", "avgpool", "maxpool", "fc", "bn", "gap", "relu",
                                 "lrelu", "tanh", "sigmoid", "dropout", "flatten", "id", "-", "s", "p", "d",
                                 "same", "valid", ".", "0", "1", "2", "3", "5", "9", "99999", " ", "\t", "x", "é"])


@FAST
@given(st.one_of(st.text(max_size=40), st.lists(SPEC_ALPHABET, max_size=14).map("".join)),
       st.tuples(st.integers(1, 4), st.integers(1, 12), st.integers(1, 12)))
def test_any_string_is_sized_or_refused_with_a_value_error(spec, size):
    try:
        count = spec_parameters(spec, size)
    except ValueError as err:
        assert str(err).startswith(("spec: ", "spec_parameters: spec is empty")), str(err)
        return
    assert count >= 0
    if count <= 100_000:   # small enough to build: the count is the real one
        assert n_params(models.from_spec(spec, size)) == count
    else:
        with pytest.raises(ValueError, match="more than the budget"):
            models.from_spec(spec, size, max_parameters=100_000)
