"""``direct``: the convolution sums as compiled loops, with no unfolded copy of the input.

With zero padding fused (positions outside ``x`` read 0, ``i = y*s + j*d - lo``),
``c`` an input channel of output channel ``o``'s group ``g`` (``c = g*Cg + c'``)::

    y[n, o, y]      = sum_{c' < Cg} sum_j w[o, c', j] * x[n, c, y*s + j*d - lo]
    dx[n, c, i]     = sum_{o in g} sum_{(y, j): y*s + j*d - lo = i} grad[n, o, y] * w[o, c', j]
    dw[o, c', j]    = sum_n sum_y grad[n, o, y] * x[n, c, y*s + j*d - lo]

Three kernels on three canonical spatial axes. Each sample's input planes
are first copied into zeroed scratch planes of the padded size (the fused
zero padding), so no inner loop tests bounds; at stride 1 an output plane
is one run on the padded grid, ``acc[q] += w * xs[q + shift_j]`` over
``(o2 - 1)*m3 + o3`` values (the entries between rows are cropped), else one
run per output row. Inner loops go over 1-D slices from 0 (they vectorise):

* forward, parallel over ``(n, g)``: the group's input planes padded once,
  then each output plane accumulated over the group's channels and the
  kernel offsets (float32 sums of ``Cg*K`` terms) and cropped into ``y``;
* input gradient, parallel over ``(n, g)``: every gradient plane, spread
  onto the padded grid, added onto the input planes its offsets reach
  (scratch planes of the padded size, whose interior is ``dx``);
* weight gradient, parallel over ``(o, c')``: per kernel offset a row of
  float64 partial sums over the batch and the output rows, summed at the end.

The work is the convolution's multiply-adds and nothing else: no columns,
no GEMM, no padded copy of the batch (one plane at a time, in cache). It
suits what GEMMs do badly: depthwise convolutions (``groups == C_in``),
where ``im2col`` would run ``G`` matrix products of one row each, and few
channels (LeNet's first layer).
"""

from __future__ import annotations

import numpy as np

from .. import workspace
from ..jit import kernel, prange
from ..windows import canonical, three
from .base import ConvAlgorithm, ConvProblem


@kernel
def _pad_plane(src, dst, base, n1, n2, n3, m1, m2, m3, lo1, lo2, lo3):
    """``dst[base:base + m1*m2*m3] = 0``, then the plane ``src (n1*n2*n3,)`` at offset ``lo`` inside it."""
    for t in range(m1 * m2 * m3):
        dst[base + t] = 0
    for i1 in range(n1):
        for i2 in range(n2):
            row = base + ((lo1 + i1) * m2 + lo2 + i2) * m3 + lo3
            first = (i1 * n2 + i2) * n3
            for t in range(n3):
                dst[row + t] = src[first + t]


@kernel(parallel=True)
def _forward(x, w, y, groups, m1, m2, m3, s1, s2, s3, d1, d2, d3, lo1, lo2, lo3):
    """``y[n, o, y] = sum_{c', j} w[o, c', j] * xp[n, g*Cg + c', y*s + j*d]``, ``xp`` padded plane by plane."""
    samples, channels, n1, n2, n3 = x.shape
    outs, cg, k1, k2, k3 = w.shape
    o1, o2, o3 = y.shape[2], y.shape[3], y.shape[4]
    og = outs // groups
    plane, padded = n1 * n2 * n3, m1 * m2 * m3
    unit = s2 == 1 and s3 == 1
    span = (o2 - 1) * m3 + o3  # an output plane's flat extent on the padded grid
    xf, wf, yf = x.reshape(x.size), w.reshape(w.size), y.reshape(y.size)
    for item in prange(samples * groups):
        n = item // groups
        grp = item - n * groups
        xs = np.empty(cg * padded, dtype=x.dtype)
        for c in range(cg):
            _pad_plane(xf[(n * channels + grp * cg + c) * plane:], xs, c * padded, n1, n2, n3, m1, m2, m3,
                       lo1, lo2, lo3)
        acc = np.empty(o2 * m3, dtype=y.dtype)
        total = acc[:span]
        for o in range(grp * og, (grp + 1) * og):
            for y1 in range(o1):
                for t in range(o2 * m3):
                    acc[t] = 0
                for c in range(cg):
                    for j1 in range(k1):
                        base = c * padded + (y1 * s1 + j1 * d1) * m2 * m3
                        for j2 in range(k2):
                            for j3 in range(k3):
                                wv = wf[((o * cg + c) * k1 + j1) * k2 * k3 + j2 * k3 + j3]
                                if unit:
                                    src = base + j2 * d2 * m3 + j3 * d3
                                    whole = xs[src:src + span]
                                    for q in range(span):
                                        total[q] += wv * whole[q]
                                else:
                                    for y2 in range(o2):
                                        src = base + (y2 * s2 + j2 * d2) * m3 + j3 * d3
                                        part = acc[y2 * m3:y2 * m3 + o3]
                                        spaced = xs[src:src + (o3 - 1) * s3 + 1:s3]
                                        for t in range(o3):
                                            part[t] += wv * spaced[t]
                out = ((n * outs + o) * o1 + y1) * o2 * o3
                for y2 in range(o2):
                    for t in range(o3):
                        yf[out + y2 * o3 + t] = acc[y2 * m3 + t]


@kernel(parallel=True)
def _input_grad(g, w, dx, groups, m1, m2, m3, s1, s2, s3, d1, d2, d3, lo1, lo2, lo3):
    """``dxp[n, c, y*s + j*d] += g[n, o, y] * w[o, c', j]`` on padded scratch planes, ``dx`` their interior."""
    samples, channels, n1, n2, n3 = dx.shape
    outs, cg, k1, k2, k3 = w.shape
    o1, o2, o3 = g.shape[2], g.shape[3], g.shape[4]
    og = outs // groups
    plane, padded = n1 * n2 * n3, m1 * m2 * m3
    unit = s2 == 1 and s3 == 1
    span = (o2 - 1) * m3 + o3
    gf, wf, df = g.reshape(g.size), w.reshape(w.size), dx.reshape(dx.size)
    for item in prange(samples * groups):
        n = item // groups
        grp = item - n * groups
        dxs = np.zeros(cg * padded, dtype=dx.dtype)
        gfull = np.zeros(o2 * m3, dtype=g.dtype)  # a gradient plane on the padded grid, 0 between rows
        gspan = gfull[:span]
        for o in range(grp * og, (grp + 1) * og):
            for y1 in range(o1):
                first = ((n * outs + o) * o1 + y1) * o2 * o3
                for y2 in range(o2):
                    for t in range(o3):
                        gfull[y2 * m3 + t] = gf[first + y2 * o3 + t]
                for c in range(cg):
                    for j1 in range(k1):
                        base = c * padded + (y1 * s1 + j1 * d1) * m2 * m3
                        for j2 in range(k2):
                            for j3 in range(k3):
                                wv = wf[((o * cg + c) * k1 + j1) * k2 * k3 + j2 * k3 + j3]
                                if unit:
                                    dst = base + j2 * d2 * m3 + j3 * d3
                                    whole = dxs[dst:dst + span]
                                    for q in range(span):
                                        whole[q] += wv * gspan[q]
                                else:
                                    for y2 in range(o2):
                                        dst = base + (y2 * s2 + j2 * d2) * m3 + j3 * d3
                                        spaced = dxs[dst:dst + (o3 - 1) * s3 + 1:s3]
                                        part = gfull[y2 * m3:y2 * m3 + o3]
                                        for t in range(o3):
                                            spaced[t] += wv * part[t]
        for c in range(cg):
            out = (n * channels + grp * cg + c) * plane
            for i1 in range(n1):
                for i2 in range(n2):
                    src = c * padded + ((lo1 + i1) * m2 + lo2 + i2) * m3 + lo3
                    dst = out + (i1 * n2 + i2) * n3
                    for t in range(n3):
                        df[dst + t] = dxs[src + t]


@kernel(parallel=True)
def _weight_grad(g, x, dw, groups, m1, m2, m3, s1, s2, s3, d1, d2, d3, lo1, lo2, lo3):
    """``dw[o, c', j] = sum_{n, y} g[n, o, y] * xp[n, g*Cg + c', y*s + j*d]`` (float64 row sums)."""
    samples, channels, n1, n2, n3 = x.shape
    outs, cg, k1, k2, k3 = dw.shape
    o1, o2, o3 = g.shape[2], g.shape[3], g.shape[4]
    og = outs // groups
    taps = k1 * k2 * k3
    plane, padded = n1 * n2 * n3, m1 * m2 * m3
    gf, xf, dwf = g.reshape(g.size), x.reshape(x.size), dw.reshape(dw.size)
    for item in prange(outs * cg):
        o = item // cg
        cl = item - o * cg
        c = (o // og) * cg + cl
        xs = np.empty(padded, dtype=x.dtype)
        acc = np.zeros(taps * o3, dtype=np.float64)
        for n in range(samples):
            _pad_plane(xf[(n * channels + c) * plane:], xs, 0, n1, n2, n3, m1, m2, m3, lo1, lo2, lo3)
            for y1 in range(o1):
                for y2 in range(o2):
                    grow = ((n * outs + o) * o1 + y1) * o2 * o3 + y2 * o3
                    grad = gf[grow:grow + o3]
                    j = 0
                    for j1 in range(k1):
                        for j2 in range(k2):
                            row = ((y1 * s1 + j1 * d1) * m2 + y2 * s2 + j2 * d2) * m3
                            for j3 in range(k3):
                                src = row + j3 * d3
                                part = acc[j * o3:(j + 1) * o3]
                                if s3 == 1:
                                    whole = xs[src:src + o3]
                                    for t in range(o3):
                                        part[t] += np.float64(grad[t]) * whole[t]
                                else:
                                    spaced = xs[src:src + (o3 - 1) * s3 + 1:s3]
                                    for t in range(o3):
                                        part[t] += np.float64(grad[t]) * spaced[t]
                                j += 1
        for j in range(taps):
            total = 0.0
            for t in range(o3):
                total += acc[j * o3 + t]
            dwf[item * taps + j] = total


def _geometry(p: ConvProblem) -> tuple[int, ...]:
    return (p.groups,) + three(p.padded, 1) + three(p.stride, 1) + three(p.dilation, 1) + three(p.lows, 0)


def _weight(w: np.ndarray, nsp: int) -> np.ndarray:
    return canonical(w, nsp)


class Direct(ConvAlgorithm):
    """Compiled direct loops: every option; for depthwise convolutions and few channels."""

    name = "direct"

    def forward(self, xp, w, p):
        nsp = len(p.kernel)
        y = workspace.empty((p.batch, p.out_channels) + p.out, p.dtype)
        _forward(canonical(xp, nsp), _weight(w, nsp), y.reshape(y.shape[:2] + three(p.out, 1)), *_geometry(p))
        return y, None

    def backward(self, grad, xp, w, p, cache, needs_input, needs_weight):
        nsp = len(p.kernel)
        gc = canonical(grad, nsp)
        wc = _weight(w, nsp)
        dxp = dw = None
        if needs_input:
            dxp = workspace.empty(p.input_shape, grad.dtype)
            _input_grad(gc, wc, dxp.reshape(dxp.shape[:2] + three(p.input, 1)), *_geometry(p))
        if needs_weight:
            dw = np.empty(wc.shape, grad.dtype)
            _weight_grad(gc, canonical(xp, nsp), dw, *_geometry(p))
            dw = dw.reshape(w.shape)
        return dxp, dw
