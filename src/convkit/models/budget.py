"""Parameter counts from layer settings, and the budget a model must fit before it is built.

A model named on the command line or in a file is untrusted input: the spec
``fc100000 fc100000 fc10`` asks for about 10**10 weights, 37 GiB of float32.
``build`` and ``from_spec`` therefore count a model's parameters from the
settings its layers will be built with, by arithmetic on Python ints (no
overflow), and refuse a model over ``max_parameters`` before any weight is
allocated.

Counts of the layers the models use (every one with a bias, as built here)::

    Conv2d(c_in, c_out, k)    c_out * c_in * k * k + c_out
    Linear(f_in, f_out)       f_out * f_in + f_out
    BatchNorm(c)              2 * c     (weight and bias; the running statistics are buffers)

>>> linear(400, 120)
48120
>>> check("build", "model 'fc100000 fc100000 fc10'", 10_079_600_010, DEFAULT_MAX_PARAMETERS)  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
ValueError: build: model 'fc100000 fc100000 fc10' has 10,079,600,010 parameters, more than the budget of ...
"""

from __future__ import annotations

from ..ops._args import is_int

__all__ = ["DEFAULT_MAX_PARAMETERS", "conv2d", "linear", "batch_norm", "check"]

# Every built-in model fits with margin: the largest, VGG-19 with batch norm for 1000 classes, has
# 143,678,248 parameters. 200 M float32 parameters take 800 MB, 3.2 GB with their gradients and
# Adam's two moments: a machine that trains VGG has that, while a spec that asks for more is far
# more often a typo (an extra zero in fc<N>) than a model meant to be trained with NumPy.
DEFAULT_MAX_PARAMETERS = 200_000_000


def conv2d(in_channels: int, out_channels: int, kernel: int, bias: bool = True) -> int:
    """Parameters of ``Conv2d(in_channels, out_channels, kernel)``: ``c_out * c_in * k * k`` (``+ c_out`` with bias)."""
    return out_channels * in_channels * kernel * kernel + (out_channels if bias else 0)


def linear(in_features: int, out_features: int) -> int:
    """Parameters of ``Linear(in_features, out_features)`` with bias: ``f_out * f_in + f_out``."""
    return out_features * in_features + out_features


def batch_norm(channels: int) -> int:
    """Parameters of ``BatchNorm1d/2d(channels)``: a weight and a bias per channel."""
    return 2 * channels


def check(op: str, what: str, count: int, max_parameters: int | None) -> None:
    """Refuse ``count`` parameters above ``max_parameters`` (None: no budget).

    Raises:
        TypeError: ``max_parameters`` is neither None nor an int.
        ValueError: ``max_parameters`` < 1, or ``count`` above it; the
            message names ``what``, the count, the budget and how to raise it.
    """
    if max_parameters is None:
        return
    if not is_int(max_parameters):
        raise TypeError(f"{op}: max_parameters must be an int or None, "
                        f"got {type(max_parameters).__name__} {max_parameters!r}")
    if max_parameters < 1:
        raise ValueError(f"{op}: max_parameters must be >= 1 (or None for no budget), got {max_parameters}")
    if count > max_parameters:
        raise ValueError(f"{op}: {what} has {count:,} parameters, more than the budget of "
                         f"max_parameters={max_parameters:,}; to build it anyway, raise the budget: "
                         f"max_parameters=N in Python, --max-parameters N on the command line")
