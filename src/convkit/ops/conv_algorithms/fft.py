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
``padded <= L``. The cost does not grow with the kernel size (``O(L log L)``
per channel plus ``C_in*C_out`` products per frequency), so it wins for large
kernels (e.g. 15x15) where ``im2col`` pays ``K`` times the input. Rounding
errors are spread evenly over the output (about ``eps * log L`` times the
size of the values), unlike the direct sum.
"""

from __future__ import annotations

import numpy as np

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


def _dilated_weight_spectrum(w: np.ndarray, p: ConvProblem, grid) -> np.ndarray:
    """``F w_d`` as ``(G, Og, Cg, Fr)`` (``Fr`` = frequencies of the half-spectrum grid, flattened)."""
    reach = tuple(d * (k - 1) + 1 for k, d in zip(p.kernel, p.dilation))
    wd = np.zeros(w.shape[:2] + reach, dtype=w.dtype)
    wd[(Ellipsis,) + tuple(slice(None, None, d) for d in p.dilation)] = w
    spec = np.fft.rfftn(wd, s=grid, axes=_axes(p))
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
        xf = np.fft.rfftn(xp, s=grid, axes=axes)
        freq_shape = xf.shape[2:]
        wf = np.conj(_dilated_weight_spectrum(w, p, grid))
        wf = np.ascontiguousarray(wf.transpose(3, 0, 2, 1))  # (Fr, G, Cg, Og)
        yf = _from_frequency(np.matmul(_per_frequency(xf, p.groups), wf), freq_shape)
        full = np.fft.irfftn(yf, s=grid, axes=axes)
        crop = (Ellipsis,) + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(p.out, p.stride))
        return np.ascontiguousarray(full[crop], dtype=xp.dtype), xf

    def backward(self, grad, xp, w, p, cache, needs_input, needs_weight):
        grid, axes = _grid(p), _axes(p)
        up = np.zeros(grad.shape[:2] + grid, dtype=grad.dtype)
        up[(Ellipsis,) + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(p.out, p.stride))] = grad
        gf = np.fft.rfftn(up, s=grid, axes=axes)
        freq_shape = gf.shape[2:]
        gq = _per_frequency(gf, p.groups)  # (Fr, G, N, Og)
        dxp = dw = None
        if needs_input:
            wf = np.ascontiguousarray(_dilated_weight_spectrum(w, p, grid).transpose(3, 0, 1, 2))  # (Fr, G, Og, Cg)
            full = np.fft.irfftn(_from_frequency(np.matmul(gq, wf), freq_shape), s=grid, axes=axes)
            dxp = np.ascontiguousarray(full[(Ellipsis,) + tuple(slice(0, n) for n in p.padded)], dtype=grad.dtype)
        if needs_weight:
            xf = cache if cache is not None else np.fft.rfftn(xp, s=grid, axes=axes)
            gh = np.ascontiguousarray(np.conj(gq).transpose(0, 1, 3, 2))  # (Fr, G, Og, N)
            prod = np.matmul(gh, _per_frequency(xf, p.groups))  # (Fr, G, Og, Cg)
            spec = np.ascontiguousarray(prod.transpose(1, 2, 3, 0))
            spec = spec.reshape((p.out_channels, p.in_channels // p.groups) + freq_shape)
            full = np.fft.irfftn(spec, s=grid, axes=axes)
            dw = np.ascontiguousarray(
                full[(Ellipsis,) + tuple(slice(0, d * (k - 1) + 1, d) for k, d in zip(p.kernel, p.dilation))],
                dtype=grad.dtype)
        return dxp, dw
