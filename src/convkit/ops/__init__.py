"""Primitives on plain ndarrays: each a ``forward`` and its hand-derived ``backward``, bound once.

Convention (see ``convkit.autograd``)::

    out, saved = <op>_forward(*arrays, **options)
    grads = <op>_backward(grad_out, saved, needs)   # one per array input, None where not needed
    out_meta = <op>_meta(*metas, **options)         # the output's shape and dtype (``ops.meta``)

Each module ends by binding them into one ``Primitive``
(``relu = Primitive("relu", relu_forward, relu_backward, meta.same)``), and the
layers above run that one object: ``autograd.apply(ops.activation.relu, [x])``.
The ``meta`` rule gives the output's ``MetaArray`` from the inputs' shapes
alone: it is what ``convkit.trace`` runs on meta tensors.
"""

from typing import Callable, NamedTuple


class Primitive(NamedTuple):
    """One op: its name (shown in the recorded graph), its forward, its backward and its shape rule."""

    name: str
    forward: Callable
    backward: Callable
    meta: Callable
