"""Symmetries of CNNs: group actions on NCHW data, equivariance checks, reports and symmetric layers.

* ``actions``: ``Shift``, ``Flip``, ``Rot90``, ``Identity`` acting on the
  last two axes of arrays and Tensors, composing (``*``) and inverting like
  group elements, with a canonical form so that equality is structural.
* ``groups``: ``C4``, ``D4``, ``Flips`` and ``Shifts(h, w)``.
* ``checks``: ``equivariance_error``, ``invariance_error`` and ``check``
  over a whole group.
* ``report``: where, layer by layer, a model keeps or breaks a symmetry,
  and why (also ``convkit symmetry`` on the command line); it runs on
  ``capture`` (each layer call's arrays, through forward hooks),
  ``differences`` (the compiled comparison), ``diagnosis`` (the reasons)
  and ``results`` (the table).
* ``layers``: ``SymmetricConv2d`` (kernel tied to a flip/rotation group),
  ``GroupAveraged`` and ``GroupPooled`` (invariant by construction).

>>> import numpy as np
>>> import convkit.nn as nn
>>> from convkit import symmetry
>>> conv = nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular", dtype=np.float64)
>>> x = np.random.default_rng(0).standard_normal((1, 1, 6, 6))
>>> symmetry.check(conv, symmetry.Shifts(6, 6), x).passed
True
>>> symmetry.check(conv, symmetry.C4, x).passed    # a random kernel is not rotation-symmetric
False
"""

from .actions import Action, Flip, Identity, Rot90, Shift
from .checks import DEFAULT_TOLERANCES, CheckResult, check, default_tolerance, equivariance_error, invariance_error
from .groups import C4, D4, GROUP_NAMES, Flips, Group, Shifts, from_name
from .layers import KERNEL_SYMMETRIES, GroupAveraged, GroupPooled, SymmetricConv2d
from .report import LayerReport, SymmetryReport, report

__all__ = [
    "Action", "Identity", "Shift", "Flip", "Rot90",
    "Group", "Shifts", "C4", "D4", "Flips", "GROUP_NAMES", "from_name",
    "equivariance_error", "invariance_error", "check", "CheckResult", "DEFAULT_TOLERANCES", "default_tolerance",
    "report", "SymmetryReport", "LayerReport",
    "SymmetricConv2d", "GroupAveraged", "GroupPooled", "KERNEL_SYMMETRIES",
]
