"""The package as a PyTorch user reaches it: every public subpackage from ``import convkit``, lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import convkit


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_subpackages_are_reached_from_the_top_level_and_imported_only_when_used():
    out = _run(
        "import sys, convkit as ck\n"
        "lazy = [n for n in ck.LAZY_SUBPACKAGES if n != 'backends']\n"  # backends: needed by the engine itself
        "print(sorted(n for n in lazy if 'convkit.' + n in sys.modules))\n"
        "print(type(ck.models.build('lenet5')).__name__, ck.explain.conv2d([[1, 2], [3, 4]], [[1]]).result.shape)\n"
        "print('convkit.models' in sys.modules, ck.models is sys.modules['convkit.models'])\n"
    ).splitlines()
    assert out == ["[]", "Sequential (1, 2, 2)", "True True"]


@pytest.mark.parametrize("name", convkit.LAZY_SUBPACKAGES)
def test_every_lazy_subpackage_resolves_and_is_listed(name):
    module = getattr(convkit, name)
    assert module.__name__ == f"convkit.{name}"
    assert name in dir(convkit) and name in convkit.__all__


def test_unknown_attribute_names_the_subpackages():
    with pytest.raises(AttributeError, match="no attribute 'modles'.*models"):
        convkit.modles  # noqa: B018


def test_nn_functional_is_functional_as_in_torch():
    import convkit.nn.functional as F

    assert F is convkit.functional and convkit.nn.functional is convkit.functional
    assert _run("import convkit.nn.functional as F; print(F.__name__)").strip() == "convkit.functional"


def test_the_package_ships_its_type_hints_marker_and_licence():
    from importlib import resources
    from importlib.metadata import metadata

    assert resources.files("convkit").joinpath("py.typed").is_file()
    meta = metadata("convkit")
    assert meta["License-Expression"] == "MIT"
    assert "Typing :: Typed" in meta.get_all("Classifier")
