"""``winograd`` / ``winograd4``: Winograd's minimal filtering F(m x m, 3 x 3) (Lavin & Gray, 2016).

For 3x3 kernels, stride 1, dilation 1, in 2-D. The output is cut into
``m x m`` tiles; tile ``t`` reads an ``a x a`` input tile ``d_t`` (``a = m + 2``,
neighbouring tiles overlap by 2) and, per channel pair, ::

    y_t = A^T [ (G w G^T) * (B^T d_t B) ] A          (* element-wise)

so ``m^2`` outputs cost ``a^2`` multiplications instead of ``9 m^2``:
2.25 times fewer for F(2x2, 3x3) (``winograd``), 4 times fewer for
F(4x4, 3x3) (``winograd4``). Over channels the element-wise products become
``a^2`` independent GEMMs (one per transformed position ``xi``)::

    U[xi] = (G w G^T)[xi]  (C_out, Cg)      V[xi] = (B^T d B)[xi]  (Cg, N*L)
    M[xi] = U[xi] @ V[xi]                   y = A^T M A, tile by tile

Gradients are the exact adjoints of these linear maps, sharing the
transformed gradient ``Gm = A grad_t A^T``::

    dU[xi] = Gm[xi] @ V[xi]^T    dw = G^T dU G          (summed over tiles and batch)
    dV[xi] = U[xi]^T @ Gm[xi]    dxp = sum over tiles of B dV B^T (overlaps add)

The tile passes are compiled kernels, parallel over ``(n, c)`` planes
(``L = th*(tw + 1)`` tiles per sample: one junk tile ends every row of
tiles, see the comment above ``_mix``):

* input: the plane copied into a zeroed scratch plane (the fused zero
  padding, and zeros past the input so that the last tiles are whole),
  then ``B^T d B`` of every tile into ``V``;
* output: ``A^T M A`` of every tile, written into ``y`` (cropped to ``out``);
* gradient: ``A g A^T`` of every output tile of ``grad`` (0 past ``out``) into ``Gm``;
* input gradient: ``B dV B^T`` of every tile added onto a scratch plane
  (neighbouring tiles overlap by 2), whose interior is ``dx``.

Each two-sided transform is two passes of row combinations with the
transform's nonzero entries, in the order of the formula and in the dtype
of the data. The element-wise products stay the batched GEMMs above, and
the filter transforms (``C_out*Cg`` tiles) stay in NumPy, in float64.

Accuracy: the transforms add and subtract values of mixed sizes, so the
float32 error grows with the tile: against float64, the relative error of
``winograd`` stays near that of ``im2col`` (about 1e-6 of the output
scale) and that of ``winograd4`` is a few times larger (about 1e-5, mostly
from the 1/6 and 1/24 entries of ``G`` and the 8s of ``A``). In float64
both are exact to about 1e-13 relative.
"""

from __future__ import annotations

import numpy as np

from .. import workspace
from ..gemm import matmul
from ..jit import kernel, prange
from .base import ConvAlgorithm, ConvProblem

CACHE_BYTES = 64 << 20

# F(2x2, 3x3), interpolation points 0, 1, -1, infinity.
_F2 = {
    "BT": [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    "G": [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
    "AT": [[1, 1, 1, 0], [0, 1, -1, -1]],
}
# F(4x4, 3x3), interpolation points 0, 1, -1, 2, -2, infinity.
_F4 = {
    "BT": [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
           [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    "G": [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
          [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
    "AT": [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
}


# The tile passes. A two-sided transform ``L d R^T`` of every tile is two one-sided passes, each a
# set of row combinations ``out_k = sum_i L[k, i] * in_i`` (``_mix``, at most 5 terms, in the order of
# ``i``, in the data's dtype), where ``in_i`` / ``out_k`` hold one entry of *every* tile of a plane:
# a run over the tile grid ``(ty, tx)``, flattened as ``ty*(tw + 1) + tx`` (one junk tile per row of
# tiles, so that the runs are contiguous: ``L = th*(tw + 1)`` tiles per sample, in ``V``, ``M``, ``Gm``
# too; the junk tiles of ``Gm`` are 0, so they add nothing to ``dw`` or ``dx``). Input and input
# gradient planes are kept "de-interleaved" in both axes: position ``(r, q)`` at block
# ``(r % m, q % m)``, row ``r // m``, column ``q // m``, so that entry ``(i, j)`` of every tile is
# one contiguous run starting at ``_at(i, j)``. Every loop is then contiguous, long and simple: it
# vectorises.
@kernel
def _mix(dst, d, src, terms, o0, o1, o2, o3, o4, c0, c1, c2, c3, c4, count, add):
    """``dst[d + q] (+)= c0*src[o0 + q] + ... (terms of them)`` for ``q < count`` (``+=`` if ``add``).

    On 1-D views of the runs (made once per call), each case one simple loop: the form LLVM vectorises.
    """
    out = dst[d:d + count]
    s0 = src[o0:o0 + count]
    if terms == 1:
        if add:
            for q in range(count):
                out[q] += c0 * s0[q]
        else:
            for q in range(count):
                out[q] = c0 * s0[q]
        return
    s1 = src[o1:o1 + count]
    if terms == 2:
        if add:
            for q in range(count):
                out[q] += c0 * s0[q] + c1 * s1[q]
        else:
            for q in range(count):
                out[q] = c0 * s0[q] + c1 * s1[q]
        return
    s2 = src[o2:o2 + count]
    if terms == 3:
        if add:
            for q in range(count):
                out[q] += c0 * s0[q] + c1 * s1[q] + c2 * s2[q]
        else:
            for q in range(count):
                out[q] = c0 * s0[q] + c1 * s1[q] + c2 * s2[q]
        return
    s3 = src[o3:o3 + count]
    if terms == 4:
        if add:
            for q in range(count):
                out[q] += c0 * s0[q] + c1 * s1[q] + c2 * s2[q] + c3 * s3[q]
        else:
            for q in range(count):
                out[q] = c0 * s0[q] + c1 * s1[q] + c2 * s2[q] + c3 * s3[q]
        return
    s4 = src[o4:o4 + count]
    if add:
        for q in range(count):
            out[q] += c0 * s0[q] + c1 * s1[q] + c2 * s2[q] + c3 * s3[q] + c4 * s4[q]
    else:
        for q in range(count):
            out[q] = c0 * s0[q] + c1 * s1[q] + c2 * s2[q] + c3 * s3[q] + c4 * s4[q]


@kernel
def _at(m, block, cb, i, j):
    """Start of the run of tile entry ``(i, j)`` in a de-interleaved plane (blocks of ``block``, rows of ``cb``)."""
    return ((i % m) * m + j % m) * block + (i // m) * cb + j // m


@kernel
def _combine(dst, d, src, bases, stride, nnz, idx, coef, row, count, add):
    """Row ``row`` of a transform table: ``dst[d:d+count] (+)= sum_t coef[row, t] * src[bases + idx[row, t]*stride:]``."""
    i0, i1, i2, i3, i4 = idx[row, 0], idx[row, 1], idx[row, 2], idx[row, 3], idx[row, 4]
    _mix(dst, d, src, nnz[row], bases + i0 * stride, bases + i1 * stride, bases + i2 * stride, bases + i3 * stride,
         bases + i4 * stride, coef[row, 0], coef[row, 1], coef[row, 2], coef[row, 3], coef[row, 4], count, add)


@kernel
def _deinterleave(src, s0, count, dst, d0, m, block, lo):
    """``dst[d0 + (q % m)*block + q // m] = src[s0 + j]`` for ``q = lo + j``, ``j < count`` (one row)."""
    for res in range(m):
        j0 = (res - lo) % m
        if j0 >= count:
            continue
        n = (count - j0 + m - 1) // m
        first = d0 + res * block + (lo + j0) // m
        out = dst[first:first + n]
        part = src[s0 + j0:s0 + j0 + (n - 1) * m + 1:m]
        for t in range(n):
            out[t] = part[t]


@kernel
def _interleave(src, d0, m, block, lo, dst, s0, count):
    """``dst[s0 + j] = src[d0 + (q % m)*block + q // m]`` for ``q = lo + j``, ``j < count`` (one row)."""
    for res in range(m):
        j0 = (res - lo) % m
        if j0 >= count:
            continue
        n = (count - j0 + m - 1) // m
        first = d0 + res * block + (lo + j0) // m
        part = src[first:first + n]
        out = dst[s0 + j0:s0 + j0 + (n - 1) * m + 1:m]
        for t in range(n):
            out[t] = part[t]


@kernel(parallel=True)
def _input_tiles(x, v, m, th, tw, lo1, lo2, nnz, idx, coef):
    """``V[(k, l), c, n*L + t] = (B^T d_t B)[k, l]``, ``d_t`` the ``a x a`` tile at ``(ty*m - lo1, tx*m - lo2)`` of
    ``x[n, c]`` (0 outside ``x``); ``x (N, C, H, W)``, ``v (a*a, C, N*L)``; ``B^T`` as the table ``nnz, idx, coef``."""
    samples, channels, height, width = x.shape
    a = m + 2
    cb = tw + 1
    run = th * cb
    block = (th + 2) * cb
    nl = samples * run
    xf, vf = x.reshape(x.size), v.reshape(v.size)
    rows, cols = min(height, th * m + 2 - lo1), min(width, tw * m + 2 - lo2)
    for item in prange(samples * channels):
        n = item // channels
        c = item - n * channels
        plane = np.zeros(m * m * block + cb, dtype=x.dtype)
        first = item * height * width
        for i in range(rows):
            r = lo1 + i
            _deinterleave(xf, first + i * width, cols, plane, (r % m) * m * block + (r // m) * cb, m, block, lo2)
        half = np.empty(a * a * run, dtype=x.dtype)  # [k, j]: B^T down tile column j
        for k in range(a):
            for j in range(a):
                i0, i1, i2, i3, i4 = idx[k, 0], idx[k, 1], idx[k, 2], idx[k, 3], idx[k, 4]
                _mix(half, (k * a + j) * run, plane, nnz[k], _at(m, block, cb, i0, j), _at(m, block, cb, i1, j),
                     _at(m, block, cb, i2, j), _at(m, block, cb, i3, j), _at(m, block, cb, i4, j),
                     coef[k, 0], coef[k, 1], coef[k, 2], coef[k, 3], coef[k, 4], run, False)
        for k in range(a):  # then along each tile row, into V
            for l in range(a):
                _combine(vf, ((k * a + l) * channels + c) * nl + n * run, half, k * a * run, run, nnz, idx, coef, l,
                         run, False)


@kernel(parallel=True)
def _output_tiles(mt, y, m, th, tw, nnz, idx, coef):
    """``y[n, o, ty*m + i, tx*m + j] = (A^T M_t A)[i, j]`` inside ``y``; ``mt (a*a, C_out, N*L)``; ``A^T`` as a table."""
    samples, outs, height, width = y.shape
    a = m + 2
    cb = tw + 1
    run = th * cb
    nl = samples * run
    mf, yf = mt.reshape(mt.size), y.reshape(y.size)
    for item in prange(samples * outs):
        n = item // outs
        o = item - n * outs
        half = np.empty(a * m * run, dtype=y.dtype)  # [k, j]: A^T along tile row k
        done = np.empty(m * m * run, dtype=y.dtype)  # [i, j]
        for k in range(a):
            for j in range(m):
                _combine(half, (k * m + j) * run, mf, (k * a * outs + o) * nl + n * run, outs * nl, nnz, idx, coef,
                         j, run, False)
        for i in range(m):  # then down tile column j
            for j in range(m):
                _combine(done, (i * m + j) * run, half, j * run, m * run, nnz, idx, coef, i, run, False)
        first = item * height * width
        for ty in range(th):
            for i in range(min(m, height - ty * m)):  # entry (i, j) of the tiles holds columns tx*m + j
                _interleave(done, i * m * run + ty * cb, m, run, 0, yf, first + (ty * m + i) * width, width)


@kernel(parallel=True)
def _grad_tiles(g, gm, m, th, tw, nnz, idx, coef):
    """``Gm[(k, l), o, n*L + t] = (A g_t A^T)[k, l]``, ``g_t`` the ``m x m`` tile of ``g[n, o]`` (0 past its end,
    and in the junk tiles); ``A`` as a table."""
    samples, outs, height, width = g.shape
    a = m + 2
    cb = tw + 1
    run = th * cb
    nl = samples * run
    gf, gmf = g.reshape(g.size), gm.reshape(gm.size)
    for item in prange(samples * outs):
        n = item // outs
        o = item - n * outs
        tiles = np.zeros(m * m * run, dtype=g.dtype)  # [i, j]: entry (i, j) of every tile
        first = item * height * width
        for ty in range(th):
            for i in range(min(m, height - ty * m)):
                _deinterleave(gf, first + (ty * m + i) * width, width, tiles, i * m * run + ty * cb, m, run, 0)
        half = np.empty(a * m * run, dtype=g.dtype)  # [k, j]: A down tile column j
        for k in range(a):
            for j in range(m):
                _combine(half, (k * m + j) * run, tiles, j * run, m * run, nnz, idx, coef, k, run, False)
        for k in range(a):  # then along each tile row, into Gm
            for l in range(a):
                _combine(gmf, ((k * a + l) * outs + o) * nl + n * run, half, k * m * run, run, nnz, idx, coef, l,
                         run, False)


@kernel(parallel=True)
def _scatter_tiles(dv, dx, m, th, tw, lo1, lo2, nnz, idx, coef):
    """``dx[n, c]`` = interior (at ``lo``) of the sum over tiles of ``B dV_t B^T`` placed at ``(ty*m, tx*m)``;
    ``B`` as a table."""
    samples, channels, height, width = dx.shape
    a = m + 2
    cb = tw + 1
    run = th * cb
    block = (th + 2) * cb
    nl = samples * run
    dvf, dxf = dv.reshape(dv.size), dx.reshape(dx.size)
    for item in prange(samples * channels):
        n = item // channels
        c = item - n * channels
        half = np.empty(a * a * run, dtype=dx.dtype)  # [k, j]: B along tile row k
        for k in range(a):
            for j in range(a):
                _combine(half, (k * a + j) * run, dvf, (k * a * channels + c) * nl + n * run, channels * nl, nnz, idx,
                         coef, j, run, False)
        plane = np.zeros(m * m * block + cb, dtype=dx.dtype)
        for i in range(a):  # then B down tile column j, added onto the plane (neighbouring tiles overlap by 2)
            for j in range(a):
                _combine(plane, _at(m, block, cb, i, j), half, j * run, a * run, nnz, idx, coef, i, run, True)
        first = item * height * width
        for i in range(height):
            r = lo1 + i
            _interleave(plane, (r % m) * m * block + (r // m) * cb, m, block, lo2, dxf, first + i * width, width)


def _table(matrix: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(nnz, idx, coef)`` of a transform: per row the count, columns and values of its nonzero entries (<= 5)."""
    rows = matrix.shape[0]
    nnz = np.zeros(rows, np.int64)
    idx = np.zeros((rows, 5), np.int64)
    coef = np.zeros((rows, 5), dtype)
    for r in range(rows):
        cols = np.flatnonzero(matrix[r])
        nnz[r] = len(cols)
        idx[r, :len(cols)] = cols
        coef[r, :len(cols)] = matrix[r, cols]
    return nnz, idx, coef


class Winograd(ConvAlgorithm):
    """F(m x m, 3 x 3) for ``m`` = 2 (``winograd``) or 4 (``winograd4``)."""

    def __init__(self, m: int):
        self.m = m
        self.a = m + 2
        self.name = "winograd" if m == 2 else f"winograd{m}"
        table = {2: _F2, 4: _F4}[m]
        bt, self._g, at = (np.array(table[k], dtype=np.float64) for k in ("BT", "G", "AT"))
        self._gkron = np.kron(self._g, self._g)  # (a*a, 9): vec(G w G^T) = (G (x) G) vec(w)
        self._matrices = {"BT": bt, "B": bt.T, "AT": at, "A": at.T}
        self._tables: dict[tuple[str, np.dtype], tuple] = {}

    def _transform(self, name: str, dtype) -> tuple:
        key = (name, np.dtype(dtype))
        if key not in self._tables:
            self._tables[key] = _table(self._matrices[name], dtype)
        return self._tables[key]

    def unsupported(self, p: ConvProblem) -> str | None:
        got = f"got {len(p.kernel)}-D, kernel {p.kernel}, stride {p.stride}, dilation {p.dilation}"
        if len(p.kernel) != 2 or p.kernel != (3, 3) or p.stride != (1, 1) or p.dilation != (1, 1):
            return f"it needs a 2-D 3x3 kernel with stride 1 and dilation 1 ({got})"
        return None

    def _tiles(self, p: ConvProblem) -> tuple[int, int]:
        return tuple(-(-o // self.m) for o in p.out)

    def _columns(self, p: ConvProblem) -> int:
        """``N*L``: tiles of the batch, a junk tile at the end of every row of tiles included."""
        th, tw = self._tiles(p)
        return p.batch * th * (tw + 1)

    def _filter(self, w: np.ndarray, p: ConvProblem) -> np.ndarray:
        """``U (a*a, G, Og, Cg)`` = ``G w G^T`` per channel pair (computed in float64)."""
        u = self._gkron @ w.reshape(-1, 9).astype(np.float64).T  # (a*a, C_out*Cg)
        return u.astype(w.dtype).reshape(self.a * self.a, p.groups, p.out_channels // p.groups, -1)

    def _input(self, x: np.ndarray, p: ConvProblem) -> np.ndarray:
        """``V (a*a, G, Cg, N*L)`` = ``B^T d B`` for every input tile ``d`` (tiles overlap by 2)."""
        th, tw = self._tiles(p)
        v = workspace.empty((self.a * self.a, p.in_channels, self._columns(p)), p.dtype)
        _input_tiles(np.ascontiguousarray(x), v, self.m, th, tw, *p.lows, *self._transform("BT", p.dtype))
        return v.reshape(self.a * self.a, p.groups, p.in_channels // p.groups, -1)

    def forward(self, xp, w, p):
        th, tw = self._tiles(p)
        v = self._input(xp, p)
        mt = workspace.empty((self.a * self.a, p.groups, p.out_channels // p.groups, v.shape[-1]), p.dtype)
        matmul(self._filter(w, p), v, out=mt)
        y = workspace.empty((p.batch, p.out_channels) + p.out, p.dtype)
        _output_tiles(mt, y, self.m, th, tw, *self._transform("AT", p.dtype))
        return y, (v if v.nbytes <= CACHE_BYTES else None)

    def backward(self, grad, xp, w, p, cache, needs_input, needs_weight):
        a = self.a
        th, tw = self._tiles(p)
        gm = workspace.empty((a * a, p.out_channels, self._columns(p)), grad.dtype)
        _grad_tiles(np.ascontiguousarray(grad), gm, self.m, th, tw, *self._transform("A", grad.dtype))
        gm = gm.reshape(a * a, p.groups, p.out_channels // p.groups, -1)
        dxp = dw = None
        if needs_weight:
            v = cache if cache is not None else self._input(xp, p)
            du = matmul(gm, v.swapaxes(-1, -2)).reshape(a * a, -1)  # (a*a, C_out*Cg)
            dw = (self._gkron.T @ du.astype(np.float64)).T.astype(grad.dtype)
            dw = np.ascontiguousarray(dw).reshape((p.out_channels, p.in_channels // p.groups, 3, 3))
        if needs_input:
            dv = workspace.empty((a * a, p.groups, p.in_channels // p.groups, gm.shape[-1]), grad.dtype)
            matmul(np.ascontiguousarray(self._filter(w, p).swapaxes(-1, -2)), gm, out=dv)  # (a*a, G, Cg, N*L)
            dxp = workspace.empty(p.input_shape, grad.dtype)
            _scatter_tiles(dv, dxp, self.m, th, tw, *p.lows, *self._transform("B", grad.dtype))
        return dxp, dw
