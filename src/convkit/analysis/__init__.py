"""Architecture arithmetic: output shapes, receptive fields, parameters, MACs and memory, without running anything.

* ``summary(model, input_size)``: a ``Summary`` with one ``Row`` per executed
  layer and a torchinfo-like table (``str``), Markdown, dict and JSON;
* ``convkit.analysis.arithmetic``: the formulas one axis at a time
  (``conv_output_size``, ``pool_output_size``, ``conv_transpose_output_size``,
  ``same_padding``, ``receptive_field``, ``padding_for``, ``output_padding_for``).
"""

from .arithmetic import (conv_output_size, conv_transpose_output_size, output_padding_for, padding_for,
                         pool_output_size, receptive_field, same_padding)
from .summary import Row, Summary, summary

__all__ = ["summary", "Summary", "Row", "conv_output_size", "pool_output_size", "conv_transpose_output_size",
           "same_padding", "receptive_field", "padding_for", "output_padding_for"]
