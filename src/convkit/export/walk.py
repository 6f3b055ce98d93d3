"""The one walk both exporters run: a model's traced graph, op by op, each handed to the exporter's handler.

``Walk(model, input_size, exporter)`` traces ``model`` on a meta input of
shape ``(1, *input_size)`` (``convkit.trace``: no data, no weights read) and
once more at batch 2, which tells which axes of every value follow the batch
(``batch_axes``): a reshape keeps its batch axis symbolic (``-1``) in the
exported graph, so the export runs at any batch size. ``Walk.run(handlers)``
calls ``handlers[node.op](node)`` for every node in execution order, and
``handlers["empty_call"](call)`` for a leaf module call that ran no op in
eval mode (``Dropout``), so that an exporter to a trainable form can keep it.
An op without a handler is a ValueError naming the op, the node and its
module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..nn.module import Module
from ..ops._args import is_int
from ..trace import Call, Graph, Node, trace

__all__ = ["Walk", "check_input_size"]


def check_input_size(input_size, exporter: str) -> tuple[int, ...]:
    """``input_size`` as a tuple of positive ints (one sample's shape, no batch axis)."""
    if (isinstance(input_size, (str, bytes)) or not isinstance(input_size, Sequence) or not input_size
            or not all(is_int(n) and n >= 1 for n in input_size)):
        raise ValueError(f"{exporter}: input_size must be one sample's shape without the batch axis, such as "
                         f"(3, 224, 224), got {input_size!r}")
    return tuple(int(n) for n in input_size)


class Walk:
    """A model's graph for inputs ``(N, *input_size)``, with the axes that follow the batch (module docstring)."""

    def __init__(self, model: Module, input_size, exporter: str):
        if not isinstance(model, Module):
            raise TypeError(f"{exporter}: model must be a convkit.nn.Module, got {type(model).__name__}")
        self.exporter = exporter
        self.input_size = check_input_size(input_size, exporter)
        self.model = model
        self.graph: Graph = trace(model, (1, *self.input_size))
        twice = trace(model, (2, *self.input_size))
        if [(n.name, n.op) for n in twice.nodes] != [(n.name, n.op) for n in self.graph.nodes]:
            raise ValueError(f"{exporter}: the model's forward runs different ops at batch sizes 1 and 2; an "
                             f"exported graph must be the same for every batch size")
        self._shapes2 = {n.name: n.shape for n in twice.nodes}
        self._leaf_calls = self.graph.layers
        self._empty_calls = {}
        for c in self.graph.calls:
            if len(c.nodes) == 0 and c.depth > 0 and not any(True for _ in c.module.children()):
                self._empty_calls.setdefault(c.nodes.start, []).append(c)

    # ------------------------------------------------------------ queries
    def batch_axes(self, name: str) -> tuple[int, ...]:
        """The axes of value ``name`` whose size follows the batch size (``(0,)`` for most activations)."""
        if name == "input":
            return (0,)
        if self.graph.kind(name) != "node":
            return ()
        one, two = self.graph.node(name).shape, self._shapes2[name]
        return tuple(i for i, (a, b) in enumerate(zip(one, two)) if a != b)

    def shape_with_batch(self, node: Node, shape: Sequence[int]) -> list[int]:
        """``shape`` (traced at batch 1) with the one axis that follows the batch as ``-1``.

        ValueError when several axes follow the batch (the target shape would
        need more than one unknown size).
        """
        axes = self.batch_axes(node.name)
        if len(axes) > 1:
            raise self.refuse(node, f"its output shape {tuple(shape)} has several axes {axes} that grow with "
                                    f"the batch")
        return [-1 if i in axes else int(n) for i, n in enumerate(shape)]

    def leaf_call(self, index: int, node: Node) -> Call | None:
        """The call of a leaf module whose only op is ``node`` (the ``index``-th), or None."""
        call = self._leaf_calls.get(index)
        return call if call is not None and call.name == node.name else None

    def module_of(self, node: Node) -> Module | None:
        """The module whose call ran ``node`` (its ``scope``)."""
        return dict(self.model.named_modules()).get(node.scope)

    def refuse(self, node: Node, why: str) -> ValueError:
        """The ValueError for a node the exporter cannot write: its op, its name and its module."""
        module = self.module_of(node)
        where = f"module {node.scope!r} ({type(module).__name__})" if node.scope else \
            f"the model's own forward ({type(self.model).__name__})"
        return ValueError(f"{self.exporter}: cannot export op {node.op!r} (node {node.name!r}, in {where}): {why}")

    # ------------------------------------------------------------ the walk
    def run(self, handlers: dict[str, Callable]) -> None:
        """Call ``handlers[node.op](index, node)`` for every node, ``handlers["empty_call"](call)`` between."""
        empty = handlers.get("empty_call")
        for index, node in enumerate(self.graph.nodes):
            if empty is not None:
                for call in self._empty_calls.get(index, ()):
                    empty(call)
            handler = handlers.get(node.op)
            if handler is None:
                raise self.refuse(node, f"{self.exporter} has no mapping for it")
            handler(index, node)
        if empty is not None:
            for call in self._empty_calls.get(len(self.graph.nodes), ()):
                empty(call)
