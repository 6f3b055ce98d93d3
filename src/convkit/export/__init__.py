"""Export convkit models to ONNX and PyTorch, and import PyTorch modules.

* ``to_onnx(model, input_size, path)``: an ONNX file (opset 17; 19 where a
  circular padding needs ``Pad(mode="wrap")``) whose input ``"input"`` has
  a symbolic batch axis ``N``; checked with ``onnx.checker``.
* ``to_torch(model, input_size)``: a ``torch.fx.GraphModule`` with the same
  state_dict keys and the same outputs, to train with PyTorch at scale.
* ``from_torch(module)``: the convkit equivalent of a torch module tree of
  supported layers (custom forwards through ``torch.fx``), weights copied.

onnx, onnxruntime and torch are optional (``pip install 'convkit[export]'``
for onnx and onnxruntime; torch from PyTorch's own index): ``import
convkit.export`` imports none of them, each function imports what it needs
when called and says what to install when it is missing.
"""

from __future__ import annotations

__all__ = ["to_onnx", "to_torch", "from_torch"]


def to_onnx(model, input_size, path, *, check: bool = True):
    """Write ``model`` as an ONNX file at ``path`` for inputs ``(N, *input_size)``; return the path.

    See ``convkit.export.onnx_graph.to_onnx``.
    """
    from .onnx_graph import to_onnx as export

    return export(model, input_size, path, check=check)


def to_torch(model, input_size):
    """The ``torch.fx.GraphModule`` equivalent to ``model`` (same state_dict keys, same outputs).

    See ``convkit.export.torch_graph.to_torch``.
    """
    from .torch_graph import to_torch as export

    return export(model, input_size)


def from_torch(module):
    """The convkit module equivalent to the torch ``module``, weights copied.

    See ``convkit.export.torch_import.from_torch``.
    """
    from .torch_import import from_torch as convert

    return convert(module)
