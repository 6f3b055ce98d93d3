"""Reverse-mode automatic differentiation over hand-derived primitives.

A primitive (``convkit.ops.Primitive``) binds a pair of functions on plain
ndarrays once, under its name::

    out, saved = op.forward(*arrays, **options)
    grads = op.backward(grad_out, saved, needs)   # one entry per array input

``needs`` is a tuple of booleans, one per array input, saying which input
gradients are wanted; a backward may return ``None`` for the others (and
should, when skipping them saves work). ``apply`` runs a primitive on
Tensors and, when a gradient may be needed, records a ``Node`` that holds
the backward closure and the parent Tensors. ``Tensor.backward`` walks the
recorded graph in reverse topological order (iteratively, so deep graphs do
not hit Python's recursion limit) and accumulates gradients into the
``.grad`` of leaf tensors with ``+=``, as PyTorch does: calling backward
twice on the same graph adds the gradients twice.

Inputs holding a ``MetaArray`` (meta tensors: a shape and a dtype, no data)
run the primitive's ``meta`` rule instead of its forward. While
``convkit.trace`` records (``recorder`` set), every application is also
reported to it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .ops import workspace
from .ops.meta import MetaArray

if TYPE_CHECKING:
    from .ops import Primitive
    from .tensor import Tensor

_grad_enabled = True
recorder = None  # the convkit.trace recorder while a trace runs, else None


def is_grad_enabled() -> bool:
    """Whether operations currently record a graph for backward."""
    return _grad_enabled


class no_grad:
    """Context manager (and decorator) that turns graph recording off.

    >>> import convkit
    >>> w = convkit.tensor([1.0], requires_grad=True)
    >>> with convkit.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """

    def __enter__(self) -> None:
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = False

    def __exit__(self, *exc) -> None:
        global _grad_enabled
        _grad_enabled = self._prev

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper


class Node:
    """One recorded primitive application: how to send ``grad_out`` to the parents."""

    __slots__ = ("name", "backward", "saved", "parents", "needs")

    def __init__(self, name: str, backward: Callable, saved: Any,
                 parents: tuple[Tensor | None, ...], needs: tuple[bool, ...]):
        self.name = name
        self.backward = backward
        self.saved = saved
        self.parents = parents
        self.needs = needs

    def __repr__(self) -> str:
        return f"<Node {self.name}>"


def apply_with_saved(op: Primitive, inputs: Sequence[Tensor | None], **options) -> tuple[Tensor, Any]:
    """Run ``op.forward`` on the arrays of ``inputs`` and record ``op.backward``.

    Returns the output Tensor and the primitive's ``saved`` object (some
    functional wrappers read extra, non-differentiable results from it,
    such as max-pooling indices).
    """
    from .tensor import Tensor

    arrays = [None if t is None else t.data for t in inputs]
    meta = any(type(a) is MetaArray for a in arrays)
    out, saved = (op.meta(*arrays, **options), None) if meta else op.forward(*arrays, **options)
    needs = tuple(t is not None and t.requires_grad for t in inputs)
    record = _grad_enabled and not meta and any(needs)
    node = Node(op.name, op.backward, saved, tuple(inputs), needs) if record else None
    result = Tensor._from_op(out, node)
    if recorder is not None:
        recorder.op(op, inputs, options, result)
    return result, saved


def apply(op: Primitive, inputs: Sequence[Tensor | None], **options) -> Tensor:
    """``apply_with_saved`` without the saved object: the common case."""
    return apply_with_saved(op, inputs, **options)[0]


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors reachable from ``root`` through recorded nodes, root first."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        if t._node is not None:
            for p in t._node.parents:
                if p is not None and p.requires_grad and id(p) not in visited:
                    stack.append((p, False))
    order.reverse()
    return order


def backward(root: Tensor, grad: np.ndarray | None = None) -> None:
    """Accumulate d(root)/d(leaf) * grad into every reachable leaf's ``.grad``."""
    if not root.requires_grad:
        raise RuntimeError("backward: tensor does not require grad and has no graph")
    if grad is None:
        if root.data.size != 1:
            raise ValueError(
                f"backward: grad can be omitted only for a single-element tensor, "
                f"got shape {root.shape}; pass grad= with that shape"
            )
        grad = np.ones_like(root.data)
    else:
        grad = np.asarray(getattr(grad, "data", grad), dtype=root.dtype)
        if grad.shape != root.shape:
            raise ValueError(f"backward: grad has shape {grad.shape}, expected {root.shape}")
    grads: dict[int, np.ndarray] = {id(root): grad}
    for t in _topological_order(root):
        g = grads.pop(id(t), None)
        if g is None:
            continue
        node = t._node
        if node is None:  # a leaf
            t.grad = workspace.copy(g) if t.grad is None else t.grad + g
            continue
        parent_grads = node.backward(g, node.saved, node.needs)
        for p, need, pg in zip(node.parents, node.needs, parent_grads):
            if not need or pg is None:
                continue
            if pg.shape != p.shape:
                raise RuntimeError(
                    f"{node.name} backward returned a gradient of shape {pg.shape} "
                    f"for an input of shape {p.shape}"
                )
            if pg.dtype != p.dtype:
                pg = pg.astype(p.dtype, copy=False)
            key = id(p)
            grads[key] = pg if key not in grads else grads[key] + pg
