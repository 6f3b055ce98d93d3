"""``Upsample``: interpolation as a layer (``torch.nn.Upsample``), e.g. before a convolution in a decoder."""

from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from .module import Module

__all__ = ["Upsample"]


class Upsample(Module):
    """Resample ``(N, C, *spatial)`` input to ``size`` or by ``scale_factor`` (``F.interpolate``; no parameters).

    Args:
        size (int | tuple | None): output spatial size.
        scale_factor (float | tuple | None): multiplier of the spatial size (give this or ``size``).
        mode (str): ``'nearest'`` (default), ``'nearest-exact'``, ``'linear'``, ``'bilinear'``, ``'trilinear'``.
        align_corners (bool | None): for the linear modes. Default: None (False).
        recompute_scale_factor (bool | None): coordinates from ``n / size`` instead of ``1 / scale_factor``.
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size = size
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) else scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input) -> Tensor:
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"
