"""``direct``: shift-and-accumulate over kernel offsets, with no unfolded copy of the input.

For each kernel offset ``j`` the input positions it reads, ``xp[..., y*s + j*d]``,
form one shifted view; the output gathers one matrix product per offset::

    y[n, g] = sum_j W_j[g] @ X_j[n, g]     W_j[g] = w[g*Og:(g+1)*Og, :, j] (Og, Cg),
                                           X_j[n, g] = xp[n, g*Cg:(g+1)*Cg, j*d + s*(0..o-1)] (Cg, P)
    dw[:, :, j] = sum_n grad[n, g] @ X_j[n, g]^T        dX_j[n, g] = W_j[g]^T @ grad[n, g]

and ``dxp`` adds every ``dX_j`` back onto the view it was read from.

With stride 1 the views need no copy at all: on the input flattened over
its padded spatial grid, ``X_j`` is the contiguous range starting at
``shift_j = sum_a j_a*d_a*pitch_a`` (``pitch_a = prod(padded[a+1:])``), and
the products run on a "full-grid" output of ``Lq = sum_a (o_a-1)*pitch_a + 1``
columns whose entries off the ``o`` grid are cropped (forward) or zero
(backward). Its memory is the output's, never ``K`` times the input's; it
suits few channels or 1x1 kernels, where ``im2col``'s copy is most of the work.
"""

from __future__ import annotations

import math

import numpy as np

from .base import ConvAlgorithm, ConvProblem, offsets, tap_slices


def _pitches(shape) -> tuple[int, ...]:
    return tuple(math.prod(shape[a + 1:]) for a in range(len(shape)))


def _full_grid(p: ConvProblem):
    """``(shifts, Lq, grid)``: per-offset flat shifts, the full-grid length and its padded shape."""
    pitch = _pitches(p.padded)
    shifts = [sum(j * d * q for j, d, q in zip(off, p.dilation, pitch)) for off in offsets(p.kernel)]
    lq = sum((o - 1) * q for o, q in zip(p.out, pitch)) + 1
    grid = (p.out[0],) + p.padded[1:]
    return shifts, lq, grid


def _on_grid(p: ConvProblem) -> tuple[slice, ...]:
    """Slices of the full grid ``(o_0, *padded[1:])`` that hold the output ``o``."""
    return tuple(slice(0, o) for o in p.out)


def _weights(w: np.ndarray, p: ConvProblem) -> np.ndarray:
    """``(K, G, Og, Cg)``: ``[q, g] = W_j[g]`` for the ``q``-th offset."""
    g = p.groups
    return np.ascontiguousarray(np.moveaxis(w.reshape(g, p.out_channels // g, p.in_channels // g, p.taps), -1, 0))


class Direct(ConvAlgorithm):
    """Shift-and-accumulate: every option; contiguous shifted views (no copies) at stride 1."""

    name = "direct"

    def forward(self, xp, w, p):
        n, g = p.batch, p.groups
        wq = _weights(w, p)
        src = xp.reshape((n, g, p.in_channels // g) + p.padded)
        if all(s == 1 for s in p.stride):
            shifts, lq, grid = _full_grid(p)
            flat = src.reshape(n, g, p.in_channels // g, -1)
            full = np.zeros((n, g, p.out_channels // g, math.prod(grid)), dtype=xp.dtype)
            acc = full[..., :lq]
            for q, shift in enumerate(shifts):
                acc += np.matmul(wq[q], flat[..., shift:shift + lq])
            y = full.reshape((n, p.out_channels) + grid)[(Ellipsis,) + _on_grid(p)]
            return np.ascontiguousarray(y), None
        y = np.zeros((n, g, p.out_channels // g, p.positions), dtype=xp.dtype)
        for q, off in enumerate(offsets(p.kernel)):
            view = src[(Ellipsis,) + tap_slices(off, p.stride, p.dilation, p.out)]
            y += np.matmul(wq[q], view.reshape(n, g, p.in_channels // g, p.positions))
        return y.reshape((n, p.out_channels) + p.out), None

    def backward(self, grad, xp, w, p, cache, needs_input, needs_weight):
        n, g = p.batch, p.groups
        cg, og = p.in_channels // g, p.out_channels // g
        # Contiguous W_j^T: numpy leaves BLAS for a transposed operand broadcast over the batch.
        wqt = np.ascontiguousarray(_weights(w, p).swapaxes(-1, -2)) if needs_input else None
        dw = np.empty((p.taps, g, og, cg), dtype=grad.dtype) if needs_weight else None
        src = None if xp is None else xp.reshape((n, g, cg) + p.padded)
        dxp = np.zeros((n, g, cg) + p.padded, dtype=grad.dtype) if needs_input else None
        if all(s == 1 for s in p.stride):
            shifts, lq, grid = _full_grid(p)
            gfull = np.zeros((n, p.out_channels) + grid, dtype=grad.dtype)
            gfull[(Ellipsis,) + _on_grid(p)] = grad
            gf = gfull.reshape(n, g, og, -1)[..., :lq]
            dflat = None if dxp is None else dxp.reshape(n, g, cg, -1)
            flat = None if src is None else src.reshape(n, g, cg, -1)
            for q, shift in enumerate(shifts):
                if needs_weight:
                    np.sum(np.matmul(gf, flat[..., shift:shift + lq].swapaxes(-1, -2)), axis=0, out=dw[q])
                if needs_input:
                    dflat[..., shift:shift + lq] += np.matmul(wqt[q], gf)
        else:
            gg = grad.reshape(n, g, og, p.positions)
            for q, off in enumerate(offsets(p.kernel)):
                taps = (Ellipsis,) + tap_slices(off, p.stride, p.dilation, p.out)
                if needs_weight:
                    view = src[taps].reshape(n, g, cg, p.positions)
                    np.sum(np.matmul(gg, view.swapaxes(-1, -2)), axis=0, out=dw[q])
                if needs_input:
                    dxp[taps] += np.matmul(wqt[q], gg).reshape(dxp[taps].shape)
        if dw is not None:
            dw = np.moveaxis(dw, 0, -1).reshape((p.out_channels, cg) + p.kernel)
        if dxp is not None:
            dxp = dxp.reshape((n, p.in_channels) + p.padded)
        return dxp, dw
