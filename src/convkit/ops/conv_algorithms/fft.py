"""``fft``: convolution by the convolution theorem, ``numpy.fft.rfftn`` over the spatial axes.

With ``F`` the real DFT over a grid of ``L >= padded`` points per axis (a
5-smooth size, where FFTs are fast), ``w_d`` the kernel dilated by zero
insertion (``w_d[j*d] = w[j]``, length ``d*(k-1)+1``) and ``grad_up`` the
gradient spread over stride ``s`` (``grad_up[y*s] = grad[y]``, zeros between),
each channel pair is a pointwise product in frequency and the channel sums
are matrix products per frequency::

    y[n, o]    = crop_s( F^-1[ sum_c conj(F w_d[o, c]) * F xp[n, c] ] )      (correlation)
    dxp[n, c]  = crop(   F^-1[ sum_o F w_d[o, c] * F grad_up[n, o] ] )       (convolution)
    dw[o, c]   = undilate( F^-1[ sum_n conj(F grad_up[n, o]) * F xp[n, c] ] )

No circular wrap reaches a kept value: every index involved stays below
``padded <= L``.

The passes around the FFTs are the compiled window kernels of
``ops.windows`` with a kernel of one element: ``unfold`` places the input on
the grid (the fused zero padding included: ``x`` lands at offset ``lo``)
and crops a result with stride ``s`` (``y = full[..., y*s]``); its adjoint
``fold_columns`` spreads ``grad`` over stride ``s`` and ``w`` over dilation
``d`` onto a zeroed grid. The cost does not grow with the kernel size (``O(L log L)``
per channel plus ``C_in*C_out`` products per frequency), so it wins for large
kernels (e.g. 15x15) where ``im2col`` pays ``K`` times the input. Rounding
errors are spread evenly over the output (about ``eps * log L`` times the
size of the values), unlike the direct sum.
"""

from __future__ import annotations

import math

import numpy as np

from ..gemm import matmul
from ..windows import fold_columns, unfold
from .base import ConvAlgorithm, ConvProblem


def fast_length(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n``."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def _grid(p: ConvProblem) -> tuple[int, ...]:
    return tuple(fast_length(n) for n in p.padded)


def _axes(p: ConvProblem) -> tuple[int, ...]:
    return tuple(range(2, 2 + len(p.kernel)))


def _ones(p: ConvProblem) -> tuple[int, ...]:
    return (1,) * len(p.kernel)


def _crop(full: np.ndarray, start, step, count) -> np.ndarray:
    """``full[..., start + i*step]`` for ``i < count`` per spatial axis, a new contiguous array."""
    nsp = len(count)
    pads = tuple((-a, (c - 1) * s + 1 + a - n) for a, s, c, n in zip(start, step, count, full.shape[2:]))
    cols = unfold(full, (1,) * nsp, step, (1,) * nsp, pads)
    return cols.reshape(full.shape[:2] + tuple(count))


def _spread(a: np.ndarray, step, grid) -> np.ndarray:
    """A zeroed grid ``(N, C, *grid)`` with ``a[..., i]`` at ``i*step`` (the adjoint of ``_crop``)."""
    nsp = len(grid)
    count = a.shape[2:]
    pads = tuple((0, (c - 1) * s + 1 - n) for s, c, n in zip(step, count, grid))
    cols = np.ascontiguousarray(a).reshape(a.shape[:2] + (1, math.prod(count)))
    return fold_columns(cols, a.shape[:2] + tuple(grid), (1,) * nsp, step, (1,) * nsp, pads)


def _on_grid(x: np.ndarray, p: ConvProblem, grid) -> np.ndarray:
    """``x`` zero-padded onto the grid: ``xp[..., i] = x[..., i - lo]`` (0 outside ``x``), ``(N, C, *grid)``."""
    pads = tuple((lo, g - n - lo) for lo, g, n in zip(p.lows, grid, x.shape[2:]))
    return unfold(x, _ones(p), _ones(p), _ones(p), pads).reshape(x.shape[:2] + tuple(grid))


def _dilated_weight_spectrum(w: np.ndarray, p: ConvProblem, grid) -> np.ndarray:
    """``F w_d`` as ``(G, Og, Cg, Fr)`` (``Fr`` = frequencies of the half-spectrum grid, flattened)."""
    spec = np.fft.rfftn(_spread(w, p.dilation, grid), axes=_axes(p))
    return spec.reshape(p.groups, p.out_channels // p.groups, p.in_channels // p.groups, -1)


def _per_frequency(a: np.ndarray, groups: int) -> np.ndarray:
    """``(N, C, *freq) -> (Fr, G, N, C/G)``: frequencies first, for one matrix product per frequency."""
    n, c = a.shape[:2]
    return np.ascontiguousarray(a.reshape(n, groups, c // groups, -1).transpose(3, 1, 0, 2))


def _from_frequency(a: np.ndarray, freq_shape) -> np.ndarray:
    """``(Fr, G, N, Cg) -> (N, G*Cg, *freq)``."""
    fr, g, n, cg = a.shape
    return np.ascontiguousarray(a.transpose(2, 1, 3, 0)).reshape((n, g * cg) + tuple(freq_shape))


class FFT(ConvAlgorithm):
    """Frequency-domain products: every option; for large kernels."""

    name = "fft"

    def forward(self, xp, w, p):
        grid, axes = _grid(p), _axes(p)
        xf = np.fft.rfftn(_on_grid(xp, p, grid), axes=axes)
        freq_shape = xf.shape[2:]
        wf = np.conj(_dilated_weight_spectrum(w, p, grid))
        wf = np.ascontiguousarray(wf.transpose(3, 0, 2, 1))  # (Fr, G, Cg, Og)
        yf = _from_frequency(matmul(_per_frequency(xf, p.groups), wf), freq_shape)
        full = np.fft.irfftn(yf, s=grid, axes=axes).astype(xp.dtype, copy=False)
        return _crop(full, (0,) * len(grid), p.stride, p.out), xf

    def backward(self, grad, xp, w, p, cache, needs_input, needs_weight):
        grid, axes = _grid(p), _axes(p)
        gf = np.fft.rfftn(_spread(grad, p.stride, grid), axes=axes)
        freq_shape = gf.shape[2:]
        gq = _per_frequency(gf, p.groups)  # (Fr, G, N, Og)
        dxp = dw = None
        if needs_input:
            wf = np.ascontiguousarray(_dilated_weight_spectrum(w, p, grid).transpose(3, 0, 1, 2))  # (Fr, G, Og, Cg)
            full = np.fft.irfftn(_from_frequency(matmul(gq, wf), freq_shape), s=grid, axes=axes)
            dxp = _crop(full.astype(grad.dtype, copy=False), p.lows, _ones(p), p.input)
        if needs_weight:
            xf = cache if cache is not None else np.fft.rfftn(_on_grid(xp, p, grid), axes=axes)
            gh = np.ascontiguousarray(np.conj(gq).transpose(0, 1, 3, 2))  # (Fr, G, Og, N)
            prod = matmul(gh, _per_frequency(xf, p.groups))  # (Fr, G, Og, Cg)
            spec = np.ascontiguousarray(prod.transpose(1, 2, 3, 0))
            spec = spec.reshape((p.out_channels, p.in_channels // p.groups) + freq_shape)
            full = np.fft.irfftn(spec, s=grid, axes=axes).astype(grad.dtype, copy=False)
            dw = _crop(full, (0,) * len(grid), p.dilation, p.kernel)
        return dxp, dw
