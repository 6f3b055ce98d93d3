"""How the command line names a model: a built-in name, a spec string, ``FILE.py:FACTORY`` or a trained file.

``load_model`` is shared by ``convkit summary`` and ``convkit symmetry``:

* a built-in name or a spec string: ``convkit.models.build``, sized before
  any weight is allocated (``max_parameters``);
* ``FILE.py:FACTORY``: the user's own module, ``FACTORY()`` called (their
  code runs: any error it raises is reported in one line);
* a ``.safetensors`` model or checkpoint written by ``convkit train``: the
  model it names, built for ``input_size`` and its classes, with its
  trained weights.

Every failure is a ``ValueError`` whose message names the argument.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["load_model"]


def load_model(model: str, input_size: tuple[int, ...], num_classes: int | None, max_parameters: int):
    """The model named by ``model`` (module docstring), for inputs of ``input_size`` ``(C, H, W)``."""
    path, sep, factory = model.rpartition(":")
    if sep and path.endswith(".py"):
        return _from_file(Path(path), factory)
    if model.endswith(".safetensors"):
        return _trained(Path(model), input_size, max_parameters)
    from ..models import build

    return build(model, input_size=input_size, num_classes=num_classes, max_parameters=max_parameters)


def _trained(path: Path, input_size: tuple[int, ...], max_parameters: int):
    """The model of a file written by ``convkit train``, with its weights."""
    from ..models import build
    from ..train import load_checkpoint

    if not path.is_file():
        raise ValueError(f"MODEL {path}: no such file")
    checkpoint = load_checkpoint(path)
    spec, classes = checkpoint.config.get("model"), checkpoint.config.get("classes")
    if not isinstance(spec, str) or not isinstance(classes, list):
        raise ValueError(f"MODEL {path}: the file does not name its model and classes (config fields 'model' and "
                         f"'classes'); give a file written by convkit train")
    net = build(spec, input_size=input_size, num_classes=len(classes), max_parameters=max_parameters)
    checkpoint.restore(net)
    return net


def _from_file(path: Path, factory: str):
    from ..nn import Module

    if not path.is_file():
        raise ValueError(f"MODEL {path}:{factory}: no such file {str(path)!r}")
    if not factory.isidentifier():
        raise ValueError(f"MODEL {path}:{factory}: after the ':' comes the name of a function in the file, "
                         f"got {factory!r}")
    spec = importlib.util.spec_from_file_location(f"convkit_cli_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        build = getattr(module, factory, None)
        if not callable(build):
            raise ValueError(f"{path} defines no function {factory}()")
        model = build()
    except Exception as err:  # the user's own code: report it in one line, whatever it raised
        raise ValueError(f"MODEL {path}:{factory}: {type(err).__name__}: {err}") from None
    if not isinstance(model, Module):
        raise ValueError(f"MODEL {path}:{factory}: {factory}() returned {type(model).__name__}, "
                         f"not a convkit.nn.Module")
    return model
