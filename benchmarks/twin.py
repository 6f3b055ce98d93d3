"""The PyTorch twin of a convkit ``nn.Sequential``: the same layers, holding the same weights.

``twin(model)`` maps each convkit layer to its ``torch.nn`` namesake with the
same settings (convkit's modules keep PyTorch's argument names and
``state_dict`` keys) and loads ``model.state_dict()``, so both libraries
start a benchmark from identical weights.
"""

from __future__ import annotations

import numpy as np
import torch

from convkit import nn

_SAME_NAME = (nn.ReLU, nn.Flatten, nn.Identity)


def _layer(m) -> torch.nn.Module:
    t = torch.nn
    if isinstance(m, nn.Conv2d):
        return t.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                        m.groups, m.bias is not None, m.padding_mode)
    if isinstance(m, nn.BatchNorm2d):
        return t.BatchNorm2d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
    if isinstance(m, nn.MaxPool2d):
        return t.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode)
    if isinstance(m, nn.Linear):
        return t.Linear(m.in_features, m.out_features, m.bias is not None)
    if isinstance(m, nn.Dropout):
        return t.Dropout(m.p)
    if isinstance(m, _SAME_NAME):
        return getattr(t, type(m).__name__)()
    raise TypeError(f"twin: no PyTorch twin for {type(m).__name__}")


def twin(model: nn.Sequential) -> torch.nn.Sequential:
    """``torch.nn.Sequential`` of the same layers, with ``model``'s parameters and buffers."""
    tm = torch.nn.Sequential(*(_layer(m) for m in model))
    tm.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    return tm
