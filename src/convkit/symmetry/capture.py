"""What a model computes layer by layer: each call of a leaf module during a forward pass, as it finishes.

``run_calls(model, leaves, x, on_call)`` runs ``model(x)`` with a forward
hook on every leaf module (one without children) and hands each call to
``on_call`` as a ``Call`` (name, module, input and output arrays) the
moment the call returns, in the order the model's ``forward`` makes them: a
``Sequential`` gives its layers in order, a branching model (residual sums,
concatenations, functional calls between modules) its calls as they happen.
``on_call`` decides what to keep: ``report`` keeps every call of the
untransformed input and only an error per element of the transformed ones,
so a batch of transformed inputs never holds all its layers' outputs at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..nn.module import Module, Sequential
from .checks import _values
from .diagnosis import describe

__all__ = ["Call", "leaves", "run_calls"]


@dataclass(frozen=True)
class Call:
    """One call of a leaf module during a forward pass: its name, the module, its input and output arrays."""

    name: str
    layer: Module
    x: np.ndarray
    y: np.ndarray


def leaves(model) -> list[tuple[str, Module]]:
    """The modules without children, with dotted names (the model itself when it has none)."""
    if not isinstance(model, Module):
        raise TypeError(f"report: model must be a convkit.nn.Module, got {type(model).__name__}")
    found = [(name, m) for name, m in model.named_modules() if not any(True for _ in m.children())]
    if not found or (found == [("", model)] and isinstance(model, Sequential)):
        raise ValueError("report: model is an empty Sequential; there is no layer to check")
    return found


def run_calls(model: Module, leaves: list[tuple[str, Module]], x: np.ndarray,
              on_call: Callable[[Call], None]) -> None:
    """Run ``model`` on ``x`` and pass each leaf module's call to ``on_call`` as it finishes, in order.

    When the model's output is not the last call's (``forward`` computes after it: a residual sum, say), a
    last call named ``(output)`` holds it, with the last call's output as its input. A forward that
    fails raises ValueError naming the call that failed and the shape it was given; an error raised by
    ``on_call`` propagates as it is.
    """
    started: list[tuple[str, Module, tuple]] = []  # calls begun and not yet finished, innermost last
    last: Call | None = None
    count = 0
    rejected: BaseException | None = None          # what on_call raised

    def starting(name: str):
        def hook(layer, args):
            started.append((name, layer, tuple(np.shape(args[0]))))
        return hook

    def finishing(name: str):
        def hook(layer, args, output):
            nonlocal last, count, rejected
            started.pop()
            last = Call(name, layer, _values(args[0], f"report: the input of {name}"),
                        _values(output, f"report: layer {name}"))
            count += 1
            try:
                on_call(last)
            except BaseException as e:
                rejected = e
                raise
        return hook

    handles = []
    for name, m in leaves:
        name = name or type(m).__name__
        handles += [m.register_forward_pre_hook(starting(name)), m.register_forward_hook(finishing(name))]
    try:
        output = _values(model(x), f"report: {type(model).__name__}")
    except (ValueError, TypeError) as e:
        if e is rejected:
            raise
        if not started:
            raise ValueError(f"report: {type(model).__name__}'s forward failed on an input of shape "
                             f"{tuple(np.shape(x))}: {e}") from e
        name, layer, shape = started[-1]
        raise ValueError(f"report: layer {count} ({name}: {describe(layer)}) failed on an input of shape "
                         f"{shape}: {e}") from e
    finally:
        for handle in handles:
            handle.remove()
    if last is not None and output is not last.y:
        on_call(Call("(output)", model, last.y, output))
