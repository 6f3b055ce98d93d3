"""Primitives on plain ndarrays: each a ``forward`` and its hand-derived ``backward``.

Convention (see ``convkit.autograd``)::

    out, saved = <op>_forward(*arrays, **options)
    grads = <op>_backward(grad_out, saved, needs)   # one per array input, None where not needed
"""
