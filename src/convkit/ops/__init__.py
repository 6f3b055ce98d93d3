"""Primitives on plain ndarrays: each a ``forward`` and its hand-derived ``backward``, bound once.

Convention (see ``convkit.autograd``)::

    out, saved = <op>_forward(*arrays, **options)
    grads = <op>_backward(grad_out, saved, needs)   # one per array input, None where not needed

Each module ends by binding every pair into one ``Primitive``
(``relu = Primitive("relu", relu_forward, relu_backward)``), and the layers
above run that one object: ``autograd.apply(ops.activation.relu, [x])``.
"""

from typing import Callable, NamedTuple


class Primitive(NamedTuple):
    """One op: its name (shown in the recorded graph), its forward and its backward."""

    name: str
    forward: Callable
    backward: Callable
