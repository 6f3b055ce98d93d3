"""Memory that convkit owns: arrays cut from buffers that are reused once nothing refers to them.

A training step allocates the same arrays every time: unfolded columns,
activations, gradients, scratch. An allocation of more than a few hundred
kB is, in glibc's default setting, fresh memory from the kernel, and the
first write to each 4 KiB page of it costs a page fault (about 2,600 faults,
a quarter of a LeNet-5 step, measured before this module). ``empty`` hands
out arrays whose buffers come from a pool kept by convkit instead, so a
step reuses the pages that the last step touched, whatever the process's
allocator settings.

A buffer is free again when its reference count shows that only the pool
holds it: every array ``empty`` returns is a view whose ``base`` is the
buffer, and NumPy points every further view (slices, reshapes) at that same
base, so as long as any of them lives the buffer is not handed out again.

Buffers are kept per size in bytes (a training loop asks for the same sizes
again); free ones beyond ``LIMIT`` bytes in all are released, least
recently used first. Arrays under ``SMALL`` bytes come from ``np.empty``:
malloc already recycles those.

>>> a = empty((256, 256), np.float32)
>>> b = empty((256, 256), np.float32)     # a is alive: another buffer
>>> a.base is b.base
False
>>> address = a.ctypes.data
>>> del a                                 # a's buffer is free again
>>> empty((256, 256), np.float32).ctypes.data == address
True
"""

from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict

import numpy as np

SMALL = 1 << 16
LIMIT = 1 << 30

_pool: OrderedDict[int, list[np.ndarray]] = OrderedDict()  # nbytes -> buffers, least recently used first
_lock = threading.Lock()



def _count_free_refs() -> int:
    """References to a buffer held only by a list, seen inside a loop over that list (the test below)."""
    for buffer in [np.empty(1, np.uint8)]:
        return sys.getrefcount(buffer)


# A pooled buffer is free when, in a loop over its list, ``sys.getrefcount`` sees this many references.
_FREE_REFS = _count_free_refs()


def _release_free(limit: int) -> None:
    """Drop free buffers, least recently used sizes first, until the pool holds at most ``limit`` bytes."""
    total = sum(size * len(buffers) for size, buffers in _pool.items())
    for size in list(_pool):
        if total <= limit:
            return
        buffers = _pool[size]
        kept = []
        for buffer in buffers:
            if sys.getrefcount(buffer) != _FREE_REFS:
                kept.append(buffer)
        total -= size * (len(buffers) - len(kept))
        if kept:
            _pool[size] = kept
        else:
            del _pool[size]


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, from the pool when it is large."""
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < SMALL:
        return np.empty(shape, dtype)
    with _lock:
        buffers = _pool.setdefault(nbytes, [])
        _pool.move_to_end(nbytes)
        for buffer in buffers:
            if sys.getrefcount(buffer) == _FREE_REFS:
                return buffer.view(dtype).reshape(shape)
        buffer = np.empty(nbytes, np.uint8)
        buffers.append(buffer)
        _release_free(LIMIT)
        return buffer.view(dtype).reshape(shape)


def zeros(shape, dtype) -> np.ndarray:
    """``empty`` filled with zeros."""
    out = empty(shape, dtype)
    out.fill(0)
    return out


def copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` in a pooled buffer (``empty`` + one copying pass)."""
    out = empty(a.shape, a.dtype)
    np.copyto(out, a)
    return out


def pooled_bytes() -> int:
    """Bytes held by the pool, in use or free."""
    with _lock:
        return sum(size * len(buffers) for size, buffers in _pool.items())
