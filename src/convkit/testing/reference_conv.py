"""Literal loop implementations of the convolution sums, for tests only.

Slow and obviously correct: every output element is the textbook sum,
written out with one loop per index. The fast im2col path in
``convkit.ops.conv`` / ``convkit.ops.conv_transpose`` is tested against
these on small random cases, independently of PyTorch. Padding goes
through ``np.pad`` here (not ``convkit.ops.padding``), so the padding
modes are checked too.
"""

from __future__ import annotations

import itertools

import numpy as np

_NP_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def conv_reference(x, w, b=None, *, stride, pads, dilation, groups=1, padding_mode="zeros", flip=False):
    """``out[n, o, y] = b[o] + sum_{c, j} w[o, c, j'] * xp[n, g*Cg + c, y*s + j*d]``.

    ``j' = j`` for correlation, ``j' = K-1-j`` for true convolution (``flip``);
    ``g = o // (C_out/groups)``. Shapes as ``ops.conv.conv_forward``.
    """
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads], mode=_NP_MODE[padding_mode])
    kernel = w.shape[2:]
    out_shape = tuple((n - d * (k - 1) - 1) // s + 1
                      for n, k, s, d in zip(xp.shape[2:], kernel, stride, dilation))
    c_out, cg = w.shape[:2]
    og = c_out // groups
    out = np.zeros((x.shape[0], c_out) + out_shape, dtype=x.dtype)
    for n in range(x.shape[0]):
        for o in range(c_out):
            g = o // og
            for y in itertools.product(*(range(m) for m in out_shape)):
                total = 0.0 if b is None else b[o]
                for c in range(cg):
                    for j in itertools.product(*(range(k) for k in kernel)):
                        jw = tuple(k - 1 - i for i, k in zip(j, kernel)) if flip else j
                        pos = tuple(yi * s + ji * d for yi, ji, s, d in zip(y, j, stride, dilation))
                        total += w[(o, c) + jw] * xp[(n, g * cg + c) + pos]
                out[(n, o) + y] = total
    return out


def conv_transpose_reference(x, w, b=None, *, stride, pads, output_padding, dilation, groups=1):
    """Scatter form: ``full[n, g*Og + q, y*s + j*d] += x[n, c, y] * w[c, q, j]``, then crop.

    ``out[n, o, i] = b[o] + full[n, o, p_lo + i]``, ``0 <= i < o``, with
    ``o = (n-1)*s - p_lo - p_hi + d*(k-1) + output_padding + 1``.
    """
    kernel = w.shape[2:]
    c_in, og = w.shape[:2]
    cg = c_in // groups
    out_shape = tuple((n - 1) * s - lo - hi + d * (k - 1) + op + 1
                      for n, k, s, (lo, hi), op, d in zip(x.shape[2:], kernel, stride, pads,
                                                          output_padding, dilation))
    full_shape = tuple(o + lo + hi for o, (lo, hi) in zip(out_shape, pads))
    full = np.zeros((x.shape[0], og * groups) + full_shape, dtype=x.dtype)
    for n in range(x.shape[0]):
        for c in range(c_in):
            g = c // cg
            for y in itertools.product(*(range(m) for m in x.shape[2:])):
                for q in range(og):
                    for j in itertools.product(*(range(k) for k in kernel)):
                        pos = tuple(yi * s + ji * d for yi, ji, s, d in zip(y, j, stride, dilation))
                        full[(n, g * og + q) + pos] += x[(n, c) + y] * w[(c, q) + j]
    crop = tuple(slice(lo, lo + o) for o, (lo, _) in zip(out_shape, pads))
    out = full[(slice(None), slice(None)) + crop].copy()
    if b is not None:
        out += b.reshape((1, -1) + (1,) * len(kernel))
    return out
