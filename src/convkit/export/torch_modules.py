"""Torch modules of ``to_torch``'s tree (this module imports torch: import it only where torch is wanted)."""

from __future__ import annotations

import torch

__all__ = ["Container"]


class Container(torch.nn.Module):
    """The place of a convkit module without a torch layer (a residual block, the model itself) in the tree:
    its children, parameters and buffers, under their names. The enclosing ``GraphModule``'s forward runs them;
    its own ``forward`` only raises (it is there so that ``torch.jit.script`` compiles the tree)."""

    def __init__(self, origin: str):
        super().__init__()
        self.origin = origin

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this module is a part of the exported model: call the model (the GraphModule)")

    def extra_repr(self) -> str:
        return f"from convkit {self.origin}"
