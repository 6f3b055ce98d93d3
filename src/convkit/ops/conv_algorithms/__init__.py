"""Convolution algorithms behind one ``algorithm=`` keyword.

=============  ===========================================================  ==============================
name           method                                                       runs
=============  ===========================================================  ==============================
``im2col``     unfold windows into columns + BLAS GEMM (``im2col.py``)     every option
``winograd``   minimal filtering F(2x2, 3x3) (``winograd.py``)              2-D, 3x3, stride 1, dilation 1
``winograd4``  minimal filtering F(4x4, 3x3) (``winograd.py``)              2-D, 3x3, stride 1, dilation 1
``fft``        convolution theorem with ``numpy.fft.rfftn`` (``fft.py``)    every option
``direct``     compiled direct loops over the kernel taps (``direct.py``)   every option
``auto``       a rule per problem, or a timed choice (``auto.py``)          every option
=============  ===========================================================  ==============================
"""

from .base import ConvAlgorithm, ConvProblem, conv_problem
from .direct import Direct
from .fft import FFT
from .im2col import Im2col
from .winograd import Winograd

ALGORITHMS: dict[str, ConvAlgorithm] = {
    a.name: a for a in (Im2col(), Winograd(2), Winograd(4), FFT(), Direct())
}

__all__ = ["ALGORITHMS", "ConvAlgorithm", "ConvProblem", "conv_problem"]
