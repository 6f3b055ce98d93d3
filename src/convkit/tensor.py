"""``Tensor``: an ndarray, its gradient, and the node that made it.

>>> import convkit
>>> x = convkit.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> y = (x * x).sum()
>>> y.backward()
>>> x.grad
array([[2., 4.],
       [6., 8.]], dtype=float32)

dtype rules: Python floats and lists become the default dtype (float32,
see ``set_default_dtype``); an ndarray keeps its dtype, so float64 data
stays float64 (the tests run every op in float64). Integer data stays
integer in ``tensor()``; the functional ops convert it to the default
float dtype where they need floats.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import autograd
from .ops import arithmetic as A
from .ops.meta import MetaArray

_default_dtype = np.dtype(np.float32)


def get_default_dtype() -> np.dtype:
    """The float dtype used for new tensors and parameters (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Set the default float dtype (``np.float32`` or ``np.float64``)."""
    global _default_dtype
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"set_default_dtype: dtype must be float32 or float64, got {dt}")
    _default_dtype = dt


# dtype kinds a Tensor may hold: bool, signed and unsigned integers, floats
_NUMERIC_KINDS = "biuf"


def _check_numeric(arr: np.ndarray, name: str, op: str = "") -> np.ndarray:
    """``arr`` if its dtype is boolean, integer or float; TypeError naming ``name`` for complex, object, strings..."""
    if arr.dtype.kind not in _NUMERIC_KINDS:
        prefix = f"{op}: " if op else ""
        raise TypeError(f"{prefix}{name} must hold real numbers (bool, int or float), got dtype {arr.dtype}"
                        + (" (convkit has no complex tensors)" if arr.dtype.kind == "c" else ""))
    return arr


def _array(data, name: str, op: str) -> np.ndarray:
    """``np.asarray(data)``; nested lists of unequal lengths (NumPy's "inhomogeneous shape") give a
    ValueError naming ``name``."""
    try:
        return np.asarray(data)
    except ValueError:
        prefix = f"{op}: " if op else ""
        raise ValueError(f"{prefix}{name} must be a rectangular array, got nested lists of unequal lengths") from None


def _to_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        _check_numeric(np.empty(0, dtype=dtype), "dtype", "tensor")
        return np.array(_check_numeric(_array(data, "data", "tensor"), "data", "tensor"), dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)):  # NumPy arrays and scalars keep their dtype
        return _check_numeric(np.array(data), "data", "tensor")
    arr = _check_numeric(np.array(_array(data, "data", "tensor")), "data", "tensor")
    if arr.dtype.kind == "f":
        arr = arr.astype(_default_dtype)
    return arr


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Attributes:
        data (np.ndarray): the values.
        grad (np.ndarray | None): accumulated gradient of a leaf after ``backward``.
        requires_grad (bool): whether operations on this tensor are recorded.
    """

    __array_priority__ = 1000  # so ndarray (op) Tensor defers to Tensor's reflected operator
    __slots__ = ("data", "grad", "requires_grad", "_node", "__weakref__")

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad: np.ndarray | None = None
        self._node: autograd.Node | None = None
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"tensor: only floating-point tensors can require grad, got dtype {self.data.dtype}"
            )
        self.requires_grad = bool(requires_grad)

    @classmethod
    def _from_op(cls, data: np.ndarray, node: autograd.Node | None) -> Tensor:
        t = cls.__new__(cls)
        t.data = data if isinstance(data, (np.ndarray, MetaArray)) else np.asarray(data)
        t.grad = None
        t._node = node
        t.requires_grad = node is not None
        return t

    # ----------------------------------------------------------------- basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return self.data.size

    def size(self, dim: int | None = None):
        """The shape, or one of its entries (PyTorch's ``Tensor.size``)."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def __len__(self) -> int:
        return len(self.data)

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def numpy(self) -> np.ndarray:
        """The values as an ndarray (shares memory, like ``torch.Tensor.numpy``); a meta tensor has none."""
        return np.asarray(self.data) if isinstance(self.data, MetaArray) else self.data

    def item(self):
        return self.numpy().item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """A tensor sharing the values, cut from the graph."""
        return Tensor._from_op(self.data, None)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if not self.is_leaf:
            raise RuntimeError("requires_grad_: only leaf tensors can change requires_grad")
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(f"requires_grad_: dtype {self.data.dtype} is not floating point")
        self.requires_grad = bool(flag)
        return self

    def astype(self, dtype) -> Tensor:
        """A copy converted to ``dtype`` (gradient flows back, converted to the source dtype)."""
        dt = np.dtype(dtype)
        return autograd.apply(A.cast, [self], dtype=dt)

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def backward(self, grad=None) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of every leaf it depends on.

        Args:
            grad (ndarray | Tensor | None): d(loss)/d(self); may be omitted
                for a single-element tensor (it is then 1).
        """
        autograd.backward(self, grad)

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        if isinstance(self.data, MetaArray):
            return f"tensor(..., size={self.shape}, dtype={self.dtype}, meta)"
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = f", dtype={self.dtype}" if self.dtype != _default_dtype else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({body}{extra}{grad})"

    # ------------------------------------------------------------ arithmetic
    def _binary(self, other, op, reverse=False):
        other = _lift(other, self.dtype)
        a, b = (other, self) if reverse else (self, other)
        return autograd.apply(op, [a, b])

    def __add__(self, o):
        return self._binary(o, A.add)

    def __radd__(self, o):
        return self._binary(o, A.add, reverse=True)

    def __sub__(self, o):
        return self._binary(o, A.sub)

    def __rsub__(self, o):
        return self._binary(o, A.sub, reverse=True)

    def __mul__(self, o):
        return self._binary(o, A.mul)

    def __rmul__(self, o):
        return self._binary(o, A.mul, reverse=True)

    def __truediv__(self, o):
        return self._binary(o, A.div)

    def __rtruediv__(self, o):
        return self._binary(o, A.div, reverse=True)

    def __matmul__(self, o):
        return self._binary(o, A.matmul)

    def __rmatmul__(self, o):
        return self._binary(o, A.matmul, reverse=True)

    def __rpow__(self, base):
        """``base ** self`` for a constant ``base > 0``: ``exp(self * log(base))``."""
        if not isinstance(base, numbers.Real) or base <= 0:
            raise TypeError(f"number ** Tensor: base must be a positive real number, got {base!r}")
        return (self * float(np.log(base))).exp()

    def __neg__(self):
        return autograd.apply(A.neg, [self])

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        if not isinstance(exponent, numbers.Real):
            raise TypeError(f"Tensor ** : exponent must be a real number, got {type(exponent).__name__}")
        return autograd.apply(A.power, [self], exponent=exponent)

    # Comparisons give boolean tensors outside the graph.
    def _compare(self, o, fn):
        return Tensor._from_op(fn(self.data, o.data if isinstance(o, Tensor) else o), None)

    def __eq__(self, o):  # noqa: D105 - element-wise, as in NumPy and PyTorch
        return self._compare(o, np.equal)

    def __ne__(self, o):
        return self._compare(o, np.not_equal)

    def __lt__(self, o):
        return self._compare(o, np.less)

    def __le__(self, o):
        return self._compare(o, np.less_equal)

    def __gt__(self, o):
        return self._compare(o, np.greater)

    def __ge__(self, o):
        return self._compare(o, np.greater_equal)

    __hash__ = object.__hash__

    # ----------------------------------------------------- element-wise math
    def exp(self) -> Tensor:
        return autograd.apply(A.exp, [self])

    def log(self) -> Tensor:
        return autograd.apply(A.log, [self])

    def sqrt(self) -> Tensor:
        return autograd.apply(A.sqrt, [self])

    def abs(self) -> Tensor:
        return autograd.apply(A.absolute, [self])

    def relu(self) -> Tensor:
        from .functional import relu

        return relu(self)

    # ------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim: bool = False) -> Tensor:
        return autograd.apply(A.reduce_sum, [self], axis=_axis(dim), keepdims=keepdim)

    def mean(self, dim=None, keepdim: bool = False) -> Tensor:
        return autograd.apply(A.reduce_mean, [self], axis=_axis(dim), keepdims=keepdim)

    def max(self, dim=None, keepdim: bool = False) -> Tensor:
        """Maximum over ``dim`` (values only; use ``argmax`` for positions)."""
        return autograd.apply(A.reduce_max, [self], axis=_axis(dim), keepdims=keepdim)

    def argmax(self, dim=None, keepdim: bool = False) -> Tensor:
        return Tensor._from_op(np.argmax(self.data, axis=dim, keepdims=keepdim), None)

    # --------------------------------------------------------------- shapes
    def reshape(self, *shape) -> Tensor:
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return autograd.apply(A.reshape, [self], shape=tuple(shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge axes ``start_dim..end_dim`` into one (``torch.flatten``)."""
        from .functional import flatten

        return flatten(self, start_dim, end_dim)

    def permute(self, *axes) -> Tensor:
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return autograd.apply(A.transpose, [self],
                              axes=tuple(a % self.ndim for a in axes))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(axes)

    @property
    def T(self) -> Tensor:
        return self.permute(tuple(reversed(range(self.ndim))))

    def __getitem__(self, index) -> Tensor:
        index = _plain_index(index)
        return autograd.apply(A.getitem, [self], index=index)


def _axis(dim):
    if dim is None or isinstance(dim, int):
        return dim
    return tuple(dim)


def _plain_index(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _lift(value, dtype) -> Tensor:
    """Turn a scalar or array operand into a Tensor; Python scalars take the other operand's dtype."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Number):
        return Tensor._from_op(np.asarray(value, dtype=dtype if dtype.kind == "f" else None), None)
    return Tensor._from_op(np.asarray(value), None)


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Create a leaf ``Tensor`` holding a copy of ``data``.

    Args:
        data: array-like (list, scalar, ndarray or Tensor).
        requires_grad (bool): record operations for ``backward``. Default: False.
        dtype: NumPy dtype. Default: the data's own (floats from Python lists
            become the default dtype, float32).
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(x, *, name: str = "input", op: str = "", float_only: bool = True) -> Tensor:
    """Accept a Tensor or array-like as a functional-op operand.

    Arrays are wrapped without copying; integer and boolean data are
    converted to the default float dtype when ``float_only``. Complex,
    object, string and other non-numeric arrays raise TypeError naming
    ``name`` (casting would silently drop imaginary parts or fail obscurely).
    """
    if isinstance(x, Tensor):
        t = x
    elif isinstance(x, (np.ndarray, numbers.Number, list, tuple)):
        t = Tensor._from_op(_check_numeric(_array(x, name, op), name, op), None)
    else:
        prefix = f"{op}: " if op else ""
        raise TypeError(f"{prefix}{name} must be a Tensor or ndarray, got {type(x).__name__}")
    if float_only and t.data.dtype.kind not in "f":
        t = Tensor._from_op(t.data.astype(_default_dtype), None)
    return t
