"""Worked explanations: every computation of a CNN shown step by step, with the engine's numbers.

Each function returns an ``Explanation``: ordered steps, each a short
sentence, its formulas with the numbers substituted and the value it
produces. ``print(e)`` renders plain text, ``e.to_markdown()`` Markdown,
``e.to_latex()`` LaTeX, ``e.to_html()`` a self-contained interactive page
(also what Jupyter shows) that animates each step's ``figure`` (the window
sliding, the products and running sums: ``convkit.explain.figures``).
``e.result`` holds the final value(s), computed by ``convkit.functional``
and the engine's autograd, so the numbers shown are the numbers convkit
computes.

==========================================  ==================================================
topic                                       functions
==========================================  ==================================================
output size and receptive field per layer   ``output_size``, ``receptive_field``
cross-correlation / convolution as sums     ``conv1d``, ``conv2d``, ``convolve1d``, ``convolve2d``
as a matrix product (im2col, Toeplitz)      ``im2col``
gradients (sum, Xᵀ·∂L/∂O, full correlation) ``conv1d_grad``, ``conv2d_grad``
pooling, forward and backward               ``max_pool1d``, ``max_pool2d``, ``avg_pool1d``, ``avg_pool2d``
transposed convolution as stamps            ``conv_transpose1d``, ``conv_transpose2d``
batch normalisation                         ``batch_norm``
convolution theorem (FFT)                   ``fftconvolve``
==========================================  ==================================================

Arguments follow ``convkit.functional``; inputs are one example without a
batch axis (``(H, W)`` is one channel). Results too large to write out cell
by cell show a few cells and say so; matrices too large to print are
summarised in one line.

>>> import convkit.explain as explain
>>> e = explain.conv2d([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]])
>>> e.result.tolist()
[[[-4.0, -4.0], [-4.0, -4.0]]]
"""

from .batchnorm import batch_norm
from .correlation import conv1d, conv2d, convolve1d, convolve2d
from .explanation import Explanation, Matrix, Step, Table
from .fourier import fftconvolve
from .gradients import conv1d_grad, conv2d_grad
from .matrix import im2col
from .pooling import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from .sizes import output_size, receptive_field
from .transposed import conv_transpose1d, conv_transpose2d

__all__ = [
    "Explanation", "Step", "Matrix", "Table",
    "output_size", "receptive_field",
    "conv1d", "conv2d", "convolve1d", "convolve2d", "im2col", "conv1d_grad", "conv2d_grad",
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
    "conv_transpose1d", "conv_transpose2d", "batch_norm", "fftconvolve",
]
