"""``winograd`` / ``winograd4``: Winograd's minimal filtering F(m x m, 3 x 3) (Lavin & Gray, 2016).

For 3x3 kernels, stride 1, dilation 1, in 2-D. The output is cut into
``m x m`` tiles; tile ``t`` reads an ``a x a`` input tile ``d_t`` (``a = m + 2``,
neighbouring tiles overlap by 2) and, per channel pair, ::

    y_t = A^T [ (G w G^T) * (B^T d_t B) ] A          (* element-wise)

so ``m^2`` outputs cost ``a^2`` multiplications instead of ``9 m^2``:
2.25 times fewer for F(2x2, 3x3) (``winograd``), 4 times fewer for
F(4x4, 3x3) (``winograd4``). Over channels the element-wise products become
``a^2`` independent GEMMs (one per transformed position ``xi``)::

    U[xi] = (G w G^T)[xi]  (C_out, Cg)      V[xi] = (B^T d B)[xi]  (Cg, N*T)
    M[xi] = U[xi] @ V[xi]                   y = A^T M A, tile by tile

Gradients are the exact adjoints of these linear maps, sharing the
transformed gradient ``Gm = A grad_t A^T``::

    dU[xi] = Gm[xi] @ V[xi]^T    dw = G^T dU G          (summed over tiles and batch)
    dV[xi] = U[xi]^T @ Gm[xi]    dxp = sum over tiles of B dV B^T (overlaps add)

Accuracy: the transforms add and subtract values of mixed sizes, so the
float32 error grows with the tile: against float64, the relative error of
``winograd`` stays near that of ``im2col`` (about 1e-6 of the output
scale) and that of ``winograd4`` is a few times larger (about 1e-5, mostly
from the 1/6 and 1/24 entries of ``G`` and the 8s of ``A``). In float64
both are exact to about 1e-13 relative.
"""

from __future__ import annotations

import numpy as np

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


class Winograd(ConvAlgorithm):
    """F(m x m, 3 x 3) for ``m`` = 2 (``winograd``) or 4 (``winograd4``).

    Each two-sided transform ``L d R^T`` of ``a x a`` tiles is one GEMM with
    the Kronecker product ``L (x) R`` on tiles flattened to ``a*a`` rows,
    so the transforms run in BLAS (threaded) rather than in element-wise passes.
    """

    def __init__(self, m: int):
        self.m = m
        self.a = m + 2
        self.name = "winograd" if m == 2 else f"winograd{m}"
        table = {2: _F2, 4: _F4}[m]
        bt, g, at = (np.array(table[k], dtype=np.float64) for k in ("BT", "G", "AT"))
        self._kron = {"B": np.kron(bt, bt), "G": np.kron(g, g), "A": np.kron(at, at)}  # (a*a, a*a) (a*a, 9) (m*m, a*a)
        self._cast: dict[tuple[str, np.dtype], np.ndarray] = {}

    def unsupported(self, p: ConvProblem) -> str | None:
        got = f"got {len(p.kernel)}-D, kernel {p.kernel}, stride {p.stride}, dilation {p.dilation}"
        if len(p.kernel) != 2 or p.kernel != (3, 3) or p.stride != (1, 1) or p.dilation != (1, 1):
            return f"it needs a 2-D 3x3 kernel with stride 1 and dilation 1 ({got})"
        return None

    def _mat(self, name: str, dtype) -> np.ndarray:
        key = (name, np.dtype(dtype))
        if key not in self._cast:
            self._cast[key] = self._kron[name].astype(dtype)
        return self._cast[key]

    def _tiles(self, p: ConvProblem) -> tuple[int, int]:
        return tuple(-(-o // self.m) for o in p.out)

    def _filter(self, w: np.ndarray, p: ConvProblem) -> np.ndarray:
        """``U (a*a, G, Og, Cg)`` = ``G w G^T`` per channel pair (computed in float64)."""
        u = self._kron["G"] @ w.reshape(-1, 9).astype(np.float64).T  # (a*a, C_out*Cg)
        return u.astype(w.dtype).reshape(self.a * self.a, p.groups, p.out_channels // p.groups, -1)

    def _input(self, xp: np.ndarray, p: ConvProblem) -> np.ndarray:
        """``V (a*a, G, Cg, N*T)`` = ``B^T d B`` for every input tile ``d`` (tiles overlap by 2)."""
        m, a = self.m, self.a
        th, tw = self._tiles(p)
        n, c = xp.shape[:2]
        need = (th * m + 2, tw * m + 2)
        if need != tuple(xp.shape[2:]):  # extend by zeros so the last tiles are whole
            xe = np.zeros((n, c) + need, dtype=xp.dtype)
            xe[:, :, :p.padded[0], :p.padded[1]] = xp
            xp = xe
        s = xp.strides
        tiles = np.lib.stride_tricks.as_strided(
            xp, shape=(a, a, c, n, th, tw), strides=(s[2], s[3], s[1], s[0], m * s[2], m * s[3]), writeable=False)
        v = self._mat("B", xp.dtype) @ tiles.reshape(a * a, -1)  # the reshape gathers the tiles (one copy)
        return v.reshape(a * a, p.groups, c // p.groups, n * th * tw)

    def _grad(self, grad: np.ndarray, p: ConvProblem) -> np.ndarray:
        """``Gm (a*a, G, Og, N*T)`` = ``A g_t A^T`` for every output tile ``g_t`` (zero beyond the output)."""
        m, a = self.m, self.a
        th, tw = self._tiles(p)
        n, o = grad.shape[:2]
        if (th * m, tw * m) != tuple(p.out):
            ge = np.zeros((n, o, th * m, tw * m), dtype=grad.dtype)
            ge[:, :, :p.out[0], :p.out[1]] = grad
            grad = ge
        tiles = grad.reshape(n, o, th, m, tw, m).transpose(3, 5, 1, 0, 2, 4).reshape(m * m, -1)  # one copy
        gm = self._mat("A", grad.dtype).T @ tiles
        return gm.reshape(a * a, p.groups, o // p.groups, n * th * tw)

    def forward(self, xp, w, p):
        m, a = self.m, self.a
        th, tw = self._tiles(p)
        v = self._input(xp, p)
        mt = np.matmul(self._filter(w, p), v)  # (a*a, G, Og, N*T)
        yt = (self._mat("A", xp.dtype) @ mt.reshape(a * a, -1)).reshape(m, m, p.out_channels, p.batch, th, tw)
        tiled = yt.transpose(3, 2, 4, 0, 5, 1)  # (N, C_out, th, m, tw, m)
        if (th * m, tw * m) == tuple(p.out):
            y = np.empty((p.batch, p.out_channels) + p.out, dtype=xp.dtype)
            y.reshape(tiled.shape)[...] = tiled
        else:
            y = np.ascontiguousarray(tiled.reshape(p.batch, p.out_channels, th * m, tw * m)[:, :, :p.out[0], :p.out[1]])
        return y, (v if v.nbytes <= CACHE_BYTES else None)

    def backward(self, grad, xp, w, p, cache, needs_input, needs_weight):
        m, a = self.m, self.a
        th, tw = self._tiles(p)
        gm = self._grad(grad, p)
        dxp = dw = None
        if needs_weight:
            v = cache if cache is not None else self._input(xp, p)
            du = np.matmul(gm, v.swapaxes(-1, -2)).reshape(a * a, -1)  # (a*a, C_out*Cg)
            dw = (self._kron["G"].T @ du.astype(np.float64)).T.astype(grad.dtype)
            dw = np.ascontiguousarray(dw).reshape((p.out_channels, p.in_channels // p.groups, 3, 3))
        if needs_input:
            dv = np.matmul(np.ascontiguousarray(self._filter(w, p).swapaxes(-1, -2)), gm)  # (a*a, G, Cg, N*T)
            dd = (self._mat("B", grad.dtype).T @ dv.reshape(a * a, -1)).reshape(a, a, p.in_channels, p.batch, th, tw)
            dd = dd.transpose(3, 2, 4, 0, 5, 1)  # (N, C, th, i, tw, j)
            # Tile (ty, tx) covers rows ty*m + i, i < a = m + 2: its first m rows and columns are its own,
            # the last two spill into the next tile's first two. One copy, then three additions.
            dxe = np.zeros((p.batch, p.in_channels, th + 1, m, tw + 1, m), dtype=grad.dtype)
            dxe[:, :, :th, :, :tw, :] = dd[:, :, :, :m, :, :m]
            dxe[:, :, :th, :, 1:, :2] += dd[:, :, :, :m, :, m:]
            dxe[:, :, 1:, :2, :tw, :] += dd[:, :, :, m:, :, :m]
            dxe[:, :, 1:, :2, 1:, :2] += dd[:, :, :, m:, :, m:]
            dxe = dxe.reshape(p.batch, p.in_channels, (th + 1) * m, (tw + 1) * m)
            dxp = np.ascontiguousarray(dxe[:, :, :p.padded[0], :p.padded[1]])
        return dxp, dw
