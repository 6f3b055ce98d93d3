"""Finite-difference gradient checks that need no oracle.

``numerical_grad`` estimates ``d(sum(f(x) * g))/dx`` by central differences,
``(L(x + eps e_i) - L(x - eps e_i)) / (2 eps)`` per element, in float64;
``gradcheck`` compares it with the gradient convkit's backward produces.
Keep inputs away from kinks (ReLU at 0, pooling ties): there the
one-sided derivatives differ and no finite difference is meaningful.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..tensor import Tensor


def numerical_grad(f: Callable[..., Tensor], inputs: Sequence[np.ndarray], cotangent: np.ndarray,
                   index: int, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of ``sum(f(*inputs) * cotangent)`` w.r.t. ``inputs[index]``."""
    xs = [np.array(a, dtype=np.float64) for a in inputs]
    x = xs[index]
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        hi = float(np.sum(np.asarray(f(*[Tensor(a) for a in xs]).data) * cotangent))
        flat[i] = orig - eps
        lo = float(np.sum(np.asarray(f(*[Tensor(a) for a in xs]).data) * cotangent))
        flat[i] = orig
        gflat[i] = (hi - lo) / (2 * eps)
    return grad


def gradcheck(f: Callable[..., Tensor], inputs: Sequence[np.ndarray], *, eps: float = 1e-6,
              atol: float = 1e-6, rtol: float = 1e-5, seed: int = 0) -> None:
    """Assert that convkit's gradients of ``f`` match central differences for every input.

    A random cotangent (never all ones, which hides sign and flip errors)
    is backpropagated through ``f`` in float64. Raises ``AssertionError``
    naming the input and the largest difference.
    """
    rng = np.random.default_rng(seed)
    xs = [np.array(a, dtype=np.float64) for a in inputs]
    ts = [Tensor(a, requires_grad=True) for a in xs]
    out = f(*ts)
    cot = rng.standard_normal(out.shape)
    out.backward(cot)
    for i, t in enumerate(ts):
        num = numerical_grad(f, xs, cot, i, eps)
        got = t.grad if t.grad is not None else np.zeros_like(num)
        if not np.allclose(got, num, atol=atol, rtol=rtol):
            err = np.max(np.abs(got - num))
            raise AssertionError(
                f"gradcheck: input {i} (shape {xs[i].shape}): max |analytic - numerical| = {err:.3e}\n"
                f"analytic:\n{got}\nnumerical:\n{num}"
            )
