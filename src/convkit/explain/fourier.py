"""The convolution theorem: the same convolution through the FFT, and the padding that makes it linear.

The DFT turns circular convolution into a product, ``ℱ(x ⊛ w) = ℱ(x)·ℱ(w)``.
A length-``n`` DFT therefore wraps the kernel around the end; zero-padding
both operands to ``L ≥ n + k − 1`` (per axis) leaves no room to wrap, and
``ifft(fft(x, L)·fft(w, L))`` is the linear ("full") convolution::

    (x ∗ w)[t] = Σ_j w[j]·x[t − j],   t = 0 … n + k − 2

``'valid'`` keeps ``t = k − 1 … n − 1``, ``'same'`` the ``n`` values from
``t = ⌊(k − 1)/2⌋``, the centre, as SciPy's ``mode='same'`` and convkit's
``convolve*d(padding='same')`` give them. Cross-correlation (PyTorch's ``conv``)
multiplies by the conjugate spectrum instead. The FFTs are NumPy's; every
result is compared with the engine's ``F.convolve*d``/``F.conv*d``.

>>> e = fftconvolve([1, 2, 3], [1, 1])
>>> e.result["output"].round(10)
array([1., 3., 5., 3.])
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .explanation import Explanation, Matrix, Step, fmt, roundoff
from .figures import Frame, Frames, Mark, cell_of
from .operands import as_array, extent, operand_shape, shape_text
from .sums import frame_cells

__all__ = ["fftconvolve"]

MODES = ("full", "valid", "same")


def fftconvolve(input, weight, mode: str = "full") -> Explanation:
    """Explain true convolution of a 1-D or 2-D ``input`` with ``weight`` through the FFT.

    Args:
        input: ``(n,)`` or ``(H, W)``, one channel.
        weight: the kernel, with as many axes as ``input`` and no larger.
        mode (str): ``'full'`` (length ``n + k − 1``), ``'valid'`` (``n − k + 1``) or ``'same'``
            (``n``, PyTorch's split). Default: ``'full'``.

    Returns an ``Explanation`` whose ``result`` is a dict of float64 arrays computed by FFT:
    ``output`` (the ``mode`` crop, equal to ``F.convolve*d`` up to round-off), ``full``,
    ``circular`` (the length-``n`` circular convolution) and ``correlation`` (``F.conv*d``'s
    output without padding).
    """
    op = "fftconvolve"
    x = as_array(input, "input", op)
    w = as_array(weight, "weight", op)
    if x.ndim not in (1, 2):
        raise ValueError(f"{op}: input must be 1-D (n,) or 2-D (H, W), one channel, got shape {x.shape}")
    if w.ndim != x.ndim:
        raise ValueError(f"{op}: weight must have as many axes as the input ({x.ndim}), got shape {w.shape}")
    if any(k > n for k, n in zip(w.shape, x.shape)) or x.size == 0 or w.size == 0:
        raise ValueError(f"{op}: the kernel {shape_text(w.shape)} must not be larger than the input "
                         f"{shape_text(x.shape)}; swap them (convolution is commutative) or use a smaller kernel")
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {MODES}, got {mode!r}")
    nsp = x.ndim
    n, k = x.shape, w.shape
    big = tuple(a + b - 1 for a, b in zip(n, k))
    convolve, correlate = getattr(F, f"convolve{nsp}d"), getattr(F, f"conv{nsp}d")
    xs, ws = x[None], w[None, None]
    full_engine = convolve(xs, ws, padding=tuple(b - 1 for b in k)).numpy()[0]
    circular_engine = convolve(xs, ws, padding=tuple((b - 1, 0) for b in k), padding_mode="circular").numpy()[0]
    circular = np.fft.ifftn(np.fft.fftn(x) * np.fft.fftn(w, s=n, axes=tuple(range(nsp)))).real
    xpad, wpad = np.zeros(big), np.zeros(big)
    xpad[tuple(slice(0, a) for a in n)] = x
    wpad[tuple(slice(0, b) for b in k)] = w
    spec_x, spec_w = np.fft.fftn(xpad), np.fft.fftn(wpad)
    product = spec_x * spec_w
    back = np.fft.ifftn(product)
    full = back.real
    sizes = ", ".join(f"{a} + {b} − 1 = {a + b - 1}" for a, b in zip(n, k))
    steps = [Step(f"The input x ({extent(n)}) and the kernel w ({extent(k)}).", value=(Matrix("x", x), Matrix("w", w))),
             Step(f"Linear (true) convolution, `(x ∗ w)[t] = Σ_j w[j]·x[t − j]`, has {sizes} values per axis "
                  f"(`n + k − 1`); the engine computes it as convolve{nsp}d with "
                  "padding k − 1:", value=Matrix("x ∗ w", full_engine)),
             Step(f"The convolution theorem: the DFT turns CIRCULAR convolution into an element-wise product, "
                  f"`ℱ(x ⊛ w) = ℱ(x)·ℱ(w)`. A {operand_shape(x, 0)} DFT wraps the kernel around the end, so the first "
                  "k − 1 values mix in the tail of x; the engine agrees, with circular padding of k − 1 before:",
                  value=(Matrix("ifft(fft(x)·fft(w, n))", circular), Matrix("circular convolve", circular_engine))),
             Step(f"Zero-padding both to {extent(big)} (at least n + k − 1) leaves the kernel no room to wrap, so "
                  "the circular convolution of the padded arrays is the linear one:",
                  value=(Matrix("x_pad", xpad), Matrix("w_pad", wpad))),
             Step("Their DFTs (complex numbers a+bi):", value=(Matrix("X = fft(x_pad)", spec_x),
                                                              Matrix("W = fft(w_pad)", spec_w))),
             Step("Multiply element by element:", value=Matrix("X·W", product),
                  figure=_product_frames(spec_x, spec_w, product)),
             Step(f"The inverse DFT is the linear convolution; its imaginary parts are round-off (at most "
                  f"{roundoff(np.abs(back.imag).max())}), and it matches the engine's up to round-off (max difference "
                  f"{roundoff(np.abs(full - full_engine).max())}).", value=Matrix("ifft(X·W)", full))]
    lows = tuple(0 if mode == "valid" else b - 1 - (b - 1) // 2 if mode == "same" else b - 1 for b in k)
    starts = tuple(b - 1 - lo for b, lo in zip(k, lows))
    lengths = tuple(a - b + 1 if mode == "valid" else a if mode == "same" else a + b - 1 for a, b in zip(n, k))
    output = full[tuple(slice(s, s + m) for s, m in zip(starts, lengths))]
    if mode != "full":
        engine = convolve(xs, ws, padding=mode).numpy()[0]
        where = ("where the kernel lies entirely inside x" if mode == "valid" else
                 "the centre, as SciPy's mode='same': an even kernel's extra element before")
        steps.append(Step(f"mode='{mode}' keeps {shape_text(lengths)} values from position {per_start(starts)} "
                          f"({where}); convolve{nsp}d with padding='{mode}' gives the same (max difference "
                          f"{roundoff(np.abs(output - engine).max())}).", value=Matrix(f"{mode} crop", output)))
    corr = np.fft.ifftn(spec_x * np.conj(spec_w)).real
    valid = tuple(a - b + 1 for a, b in zip(n, k))
    correlation = corr[tuple(slice(0, m) for m in valid)]
    engine_corr = correlate(xs, ws).numpy()[0]
    steps.append(Step(f"PyTorch's conv{nsp}d is cross-correlation (no flip), `Σ_j w[j]·x[t + j]`: the same product "
                      "with the conjugate spectrum, ifft(X·conj(W)), whose first n − k + 1 values (per axis) are "
                      f"conv{nsp}d's output without padding (max difference "
                      f"{roundoff(np.abs(correlation - engine_corr).max())}).",
                      value=(Matrix("ifft(X·conj(W))", corr), Matrix(f"conv{nsp}d(x, w)", engine_corr))))
    title = (f"fftconvolve: a {operand_shape(x, 0)} input and a {operand_shape(w, 0)} kernel through the FFT, "
             f"mode '{mode}'")
    return Explanation(title, steps, {"output": output, "full": full, "circular": circular, "correlation": correlation})


def _product_frames(spec_x: np.ndarray, spec_w: np.ndarray, product: np.ndarray) -> Frames:
    """One frame per frequency (``sums.frame_cells``): ``X[k]``, ``W[k]`` and their product."""
    stage = (Matrix("X", spec_x), Matrix("W", spec_w), Matrix("X·W", product))
    frames = []
    for k in frame_cells(product.shape):
        at = (cell_of(k),)
        index = ",".join(map(str, k))
        frames.append(Frame(f"(X·W)[{index}] = ({fmt(spec_x[k])})·({fmt(spec_w[k])}) = {fmt(product[k])}",
                            (Mark(0, "window", at), Mark(1, "tap", at), Mark(2, "out", at))))
    return Frames(stage, tuple(frames))


def per_start(starts) -> str:
    """``1`` for one axis, ``(1, 1)`` for two."""
    return str(starts[0]) if len(starts) == 1 else "(" + ", ".join(map(str, starts)) + ")"
