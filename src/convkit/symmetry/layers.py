"""Layers made symmetric by construction.

* ``SymmetricConv2d``: a ``Conv2d`` whose kernel is tied to be invariant
  under a group of flips/rotations. It keeps a free kernel ``weight`` (so a
  ``Conv2d`` ``state_dict`` loads) and convolves with its group average
  ``symmetric_weight = mean over g of g▷weight``, so gradients reach every
  free entry. With symmetric padding it is equivariant to that group:
  ``conv(g▷x) == g▷conv(x)``.
* ``GroupAveraged(model, G)``: ``mean over g of model(g▷x)``, invariant to G
  for any model (``G`` must be a group: ``g * h`` runs over ``G`` as ``g`` does).
* ``GroupPooled(model, G)``: pools ``model(x)`` over its orbit,
  ``reduce over g of g▷model(x)``, one forward pass; invariant to G when
  ``model`` is G-equivariant (it turns an equivariant network into an
  invariant one, as group pooling does in group-equivariant CNNs).

>>> import numpy as np
>>> from convkit.symmetry import SymmetricConv2d, Rot90
>>> conv = SymmetricConv2d(1, 4, 3, symmetry="c4", padding=1)
>>> w = conv.symmetric_weight.data
>>> bool(np.allclose(Rot90(1)(w), w))
True
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..nn.conv import Conv2d
from ..nn.module import Module
from ..tensor import Tensor
from ..tensor import tensor as to_tensor
from .actions import Flip, Identity, Rot90
from .groups import C4, D4, Flips, Group

__all__ = ["SymmetricConv2d", "GroupAveraged", "GroupPooled", "KERNEL_SYMMETRIES"]

KERNEL_SYMMETRIES = {
    "flip_h": Group([Identity(), Flip("h")], name="flip_h"),
    "flip_w": Group([Identity(), Flip("w")], name="flip_w"),
    "flips": Flips,
    "c2": Group([Identity(), Rot90(2)], name="C2"),
    "c4": C4,
    "d4": D4,
}
"""The kernel symmetries ``SymmetricConv2d`` accepts by name."""


def _orbit_index(group: Group, shape, what: str) -> np.ndarray:
    """``(len(group), H*W)``: row ``i`` lists, per pixel, the flat pixel that ``group[i]`` reads it from."""
    rows = []
    for g in group:
        if not g.circular:
            raise ValueError(f"{what}: {g!r} is a zero-filled shift, not a permutation of the pixels")
        g.check_fits(shape, what)
        rows.append(g.source_index(*shape[-2:]).ravel())
    return np.stack(rows)


def _orbit(y: Tensor, index: np.ndarray) -> Tensor:
    """``(..., len(group), H, W)``: every ``g▷y`` side by side, gathered in one indexing op."""
    *lead, h, w = y.shape
    return y.reshape(tuple(lead) + (h * w,))[..., index].reshape(tuple(lead) + (len(index), h, w))


def _as_group(group, what: str) -> Group:
    if isinstance(group, Group):
        return group
    raise TypeError(f"{what}: group must be a Group (C4, D4, Flips, Shifts(h, w), ...), got {type(group).__name__}")


class SymmetricConv2d(Conv2d):
    """``Conv2d`` whose kernel is averaged over a group of flips/rotations in every forward pass.

    ``weight`` holds a free kernel; the convolution uses
    ``symmetric_weight = (1/|G|) Σ_g g▷weight`` (each ``(kH, kW)`` slice
    transformed), which ``g▷`` leaves unchanged for every ``g`` in ``G``.
    Together with padding that is the same on both sides (odd kernels with
    ``padding=k//2``; not ``'same'`` with an even kernel) and a stride whose
    windows cover the input evenly, the layer is G-equivariant. Averaging
    shrinks the kernel's initial spread by up to ``sqrt(|G|)``.

    Args:
        in_channels, out_channels, kernel_size: as ``Conv2d``.
        symmetry (str or Group): ``'flip_h'``, ``'flip_w'``, ``'flips'``, ``'c2'``,
            ``'c4'`` or ``'d4'`` (``KERNEL_SYMMETRIES``), or a Group of
            rotations/reflections. Rotations by 90° need a square kernel. Default: ``'d4'``.
        stride, padding, dilation, groups, bias, padding_mode, dtype: as ``Conv2d``.

    Shape: as ``Conv2d``: ``(N, C_in, H, W)`` -> ``(N, C_out, H_out, W_out)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, symmetry="d4", stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros", dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, dtype)
        if isinstance(symmetry, str):
            if symmetry not in KERNEL_SYMMETRIES:
                raise ValueError(
                    f"SymmetricConv2d: symmetry must be one of {', '.join(KERNEL_SYMMETRIES)} or a Group, "
                    f"got {symmetry!r}"
                )
            group = KERNEL_SYMMETRIES[symmetry]
        else:
            group = _as_group(symmetry, "SymmetricConv2d")
        if any(g.shift != (0, 0) for g in group):
            raise ValueError(f"SymmetricConv2d: symmetry must hold rotations and reflections only, got {group!r}")
        kh, kw = self.kernel_size
        if kh != kw and any(g.rotation % 2 for g in group):
            raise ValueError(
                f"SymmetricConv2d: symmetry {group.name} has quarter turns, which need a square kernel, "
                f"got kernel_size={self.kernel_size}"
            )
        self.symmetry = group
        self._index = _orbit_index(group, self.kernel_size, "SymmetricConv2d")

    @property
    def symmetric_weight(self) -> Tensor:
        """The kernel used: the average of ``g▷weight`` over the symmetry group (gradients reach ``weight``)."""
        return _orbit(self.weight, self._index).mean(dim=2)

    def forward(self, input) -> Tensor:
        return F.conv2d(input, self.symmetric_weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups, padding_mode=self.padding_mode)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, symmetry={self.symmetry.name}"


class GroupAveraged(Module):
    """``model`` averaged over a group of input transformations: ``(1/|G|) Σ_g model(g▷x)``.

    Exactly invariant (up to round-off) for any ``model``, because
    ``{g * h : g in G} = G`` for every ``h`` in a group. Costs ``|G|``
    forward passes.

    Args:
        model (callable): a Module (or function) on ``(N, C, H, W)`` inputs.
        group (Group): a group of actions fitting the input (check ``group.is_closed()``).

    Shape: input ``(N, C, H, W)``; output: the model's.
    """

    def __init__(self, model, group: Group):
        super().__init__()
        if not callable(model):
            raise TypeError(f"GroupAveraged: model must be callable (a Module), got {type(model).__name__}")
        self.model = model
        self.group = _as_group(group, "GroupAveraged")

    def forward(self, input) -> Tensor:
        total = None
        for g in self.group:
            y = self.model(g(input))
            total = y if total is None else total + y
        return total / len(self.group)

    def extra_repr(self) -> str:
        return f"group={self.group.name}"


class GroupPooled(Module):
    """Pool ``model(x)`` over its orbit under a group: ``reduce over g of g▷model(x)``.

    If ``model`` is equivariant to ``group`` with the same action on its
    output (``model(g▷x) == g▷model(x)``, e.g. stride-1 circular convolutions
    for shifts, or ``SymmetricConv2d`` layers for rotations), the result is
    invariant: ``GroupPooled(model, G)(g▷x) == GroupPooled(model, G)(x)``.
    One forward pass, then one gather of the ``|G|`` transformed outputs.

    Args:
        model (callable): a Module (or function) whose output is ``(..., H, W)``.
        group (Group): circular actions fitting the output's map.
        reduction (str): ``'mean'`` or ``'max'`` over the orbit. Default: ``'mean'``.

    Shape: the model's output shape.
    """

    def __init__(self, model, group: Group, reduction: str = "mean"):
        super().__init__()
        if not callable(model):
            raise TypeError(f"GroupPooled: model must be callable (a Module), got {type(model).__name__}")
        if reduction not in ("mean", "max"):
            raise ValueError(f"GroupPooled: reduction must be 'mean' or 'max', got {reduction!r}")
        self.model = model
        self.group = _as_group(group, "GroupPooled")
        self.reduction = reduction

    def forward(self, input) -> Tensor:
        y = self.model(input)
        if not isinstance(y, Tensor):
            y = to_tensor(y)
        orbit = _orbit(y, _orbit_index(self.group, y.shape, "GroupPooled: the model's output"))
        return orbit.mean(dim=-3) if self.reduction == "mean" else orbit.max(dim=-3)

    def extra_repr(self) -> str:
        return f"group={self.group.name}, reduction={self.reduction}"
