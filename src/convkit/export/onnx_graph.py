"""``to_onnx``: a convkit model as an ONNX file, node by node from its traced graph (``walk.Walk``).

The file has one input ``"input"`` of shape ``(N, *input_size)`` with a
symbolic batch axis ``N``, and one output per value ``forward`` returns;
the parameters and buffers it reads are initializers named by their
state_dict keys (``features.0.weight``, ``bn1.running_mean``). Each op maps
to ONNX operators (``HANDLERS``), e.g.

* conv -> ``Conv`` with ``pads = [lo_1.., hi_1..]`` (asymmetric allowed);
  a ``reflect``/``replicate``/``circular`` padding -> ``Pad`` (``reflect``,
  ``edge``, ``wrap``) first; a fused ReLU -> ``Relu``/``LeakyRelu`` after;
* batch_norm (inference) -> ``BatchNormalization`` with the running statistics;
* adaptive average pooling -> ``GlobalAveragePool``, ``AveragePool`` when
  every window has one size and stride (``n % o == 0``), otherwise two
  ``MatMul`` with the window-averaging matrices ``A[i, j] = 1/len_i`` for
  ``j`` in window ``i`` (VGG's 1x1 -> 7x7);
* reshape -> ``Reshape`` whose batch axis is ``-1``.

Opset 17 (ONNX 1.12, 2022: what most runtimes read, ``LayerNormalization``
included); opset 19 only for a model with circular padding, which needs
``Pad(mode="wrap")``. An op without a mapping is a ValueError naming the op,
the node and its module.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import __version__
from .._io import atomic_file
from ..ops.meta import MetaArray
from ..tensor import get_default_dtype
from .extras import require
from .walk import Walk

__all__ = ["to_onnx", "OPSET", "WRAP_OPSET"]

OPSET = 17
WRAP_OPSET = 19  # Pad(mode="wrap")
_PAD_MODES = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge",
              "circular": "wrap"}
_INT64_MIN = np.iinfo(np.int64).min


def to_onnx(model, input_size, path, *, check: bool = True) -> Path:
    """Write ``model`` (in inference mode) as an ONNX file for inputs ``(N, *input_size)``; return ``path``.

    Args:
        model (convkit.nn.Module): the network, with its weights.
        input_size (tuple of ints): one sample's shape, e.g. ``(3, 32, 32)``.
        path: where to write the file (atomically: the old file or the complete new one).
        check (bool): run ``onnx.checker.check_model(path, full_check=True)`` (shape inference
            included) on the written file. Default: True.
    Raises:
        ImportError: onnx is not installed (``pip install 'convkit[export]'``).
        ValueError: an op without an ONNX mapping (named with its node and module), a bad input size.
    """
    onnx = require("onnx", "to_onnx")
    walk = Walk(model, input_size, "to_onnx")
    circular = any(n.options.get("padding_mode", n.options.get("mode")) == "circular" for n in walk.graph.nodes)
    builder = _Builder(walk, onnx, WRAP_OPSET if circular else OPSET)
    walk.run(builder.handlers())
    proto = builder.model()
    path = Path(os.fspath(path))
    with atomic_file(path) as f:
        f.write(proto.SerializeToString())
    if check:
        onnx.checker.check_model(str(path), full_check=True)
    return path


class _Builder:
    """The ONNX graph being written: nodes, initializers, and the values already emitted."""

    def __init__(self, walk: Walk, onnx, opset: int):
        self.walk, self.graph, self.onnx, self.opset = walk, walk.graph, onnx, opset
        self.helper, self.numpy_helper = onnx.helper, onnx.numpy_helper
        self.nodes: list = []
        self.initializers: dict[str, object] = {}
        self.count = 0
        first = next(walk.model.parameters(), None)
        self.dtype = np.dtype(first.dtype) if first is not None else get_default_dtype()

    # ------------------------------------------------------------ helpers
    def value(self, name: str) -> str:
        """The ONNX name of a graph value, adding a parameter, buffer or constant as an initializer."""
        kind = self.graph.kind(name)
        if kind in ("parameter", "buffer", "constant") and name not in self.initializers:
            table = {"parameter": self.graph.parameters, "buffer": self.graph.buffers,
                     "constant": self.graph.constants}[kind]
            data = table[name]
            data = getattr(data, "data", data)
            if isinstance(data, MetaArray):
                raise ValueError(f"to_onnx: {kind} {name!r} holds no values (a meta model, built under "
                                 f"meta_init): build the model with its weights to export it")
            self.initializers[name] = self.numpy_helper.from_array(np.ascontiguousarray(data), name)
        return name

    def const(self, node, label: str, array) -> str:
        """A new initializer ``<node>.<label>`` holding ``array``."""
        name = f"{node.name}.{label}"
        self.initializers[name] = self.numpy_helper.from_array(np.ascontiguousarray(array), name)
        return name

    def ints(self, node, label: str, values) -> str:
        return self.const(node, label, np.asarray(list(values), dtype=np.int64))

    def add(self, op_type: str, inputs, out: str | None = None, **attrs) -> str:
        """Append one ONNX node; return its output's name (``out``, or a fresh name)."""
        self.count += 1
        out = out or f"{op_type.lower()}_{self.count}"
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=f"{op_type}_{self.count}",
                                                **attrs))
        return out

    def rectify(self, node, y: str) -> str:
        """``y`` through the node's fused (leaky) ReLU, named as the node; ``y`` renamed to it otherwise."""
        slope = node.options.get("relu_slope")
        if slope is None:
            return self.add("Identity", [y], node.name)
        if slope == 0:
            return self.add("Relu", [y], node.name)
        return self.add("LeakyRelu", [y], node.name, alpha=float(slope))

    def reduce(self, op_type: str, x: str, node, axes) -> str:
        """``Reduce*`` over ``axes``: an attribute before opset 18 (except ReduceSum), an input from 18."""
        keep = int(bool(node.options.get("keepdims", False)))
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.add(op_type, [x, self.ints(node, "axes", axes)], node.name, keepdims=keep)
        return self.add(op_type, [x], node.name, axes=list(axes), keepdims=keep)

    # ------------------------------------------------------------ ops
    def handlers(self) -> dict:
        unary = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "neg": "Neg", "exp": "Exp", "log": "Log",
                 "sqrt": "Sqrt", "abs": "Abs", "global_avg_pool": "GlobalAveragePool"}
        binary = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "matmul": "MatMul"}
        table = {op: self._unary(t) for op, t in unary.items()}
        table |= {op: self._binary(t) for op, t in binary.items()}
        table |= {op: getattr(self, f"_{op}") for op in (
            "conv", "conv_transpose", "linear", "batch_norm", "instance_norm", "layer_norm", "group_norm",
            "leaky_relu", "softmax", "log_softmax", "pow", "sum", "mean", "max", "reshape", "transpose", "getitem",
            "cast", "cat", "stack", "max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool", "pad",
            "interpolate")}
        return table

    def _unary(self, op_type):
        def emit(index, node):
            self.add(op_type, [self.value(node.inputs[0])], node.name)
        return emit

    def _binary(self, op_type):
        def emit(index, node):
            self.add(op_type, [self.value(v) for v in node.inputs], node.name)
        return emit

    def _conv(self, index, node):
        o = node.options
        x, w, b = node.inputs
        x = self.value(x)
        pads = [lo for lo, _ in o["pads"]] + [hi for _, hi in o["pads"]]
        if o["padding_mode"] != "zeros":
            n = len(o["pads"])
            x = self.add("Pad", [x, self.ints(node, "pads", [0, 0] + pads[:n] + [0, 0] + pads[n:])],
                         mode=_PAD_MODES[o["padding_mode"]])
            pads = [0] * len(pads)
        w = self.value(w)
        k = len(o["stride"])
        if o["flip"]:  # a true convolution: the kernel mirrored along every spatial axis
            w = self.add("Slice", [w, self.ints(node, "flip_starts", [-1] * k),
                                   self.ints(node, "flip_ends", [_INT64_MIN] * k),
                                   self.ints(node, "flip_axes", range(2, 2 + k)),
                                   self.ints(node, "flip_steps", [-1] * k)])
        inputs = [x, w] + ([self.value(b)] if b is not None else [])
        y = self.add("Conv", inputs, strides=list(o["stride"]), pads=pads, dilations=list(o["dilation"]),
                     group=o["groups"], kernel_shape=list(self.graph.shape(node.inputs[1])[2:]))
        self.rectify(node, y)

    def _conv_transpose(self, index, node):
        o = node.options
        x, w, b = node.inputs
        inputs = [self.value(x), self.value(w)] + ([self.value(b)] if b is not None else [])
        pads = [lo for lo, _ in o["pads"]] + [hi for _, hi in o["pads"]]
        self.add("ConvTranspose", inputs, node.name, strides=list(o["stride"]), pads=pads,
                 dilations=list(o["dilation"]), group=o["groups"], output_padding=list(o["output_padding"]),
                 kernel_shape=list(self.graph.shape(node.inputs[1])[2:]))

    def _linear(self, index, node):
        x, w, b = node.inputs
        if len(self.graph.shape(x)) == 2:
            inputs = [self.value(x), self.value(w)] + ([self.value(b)] if b is not None else [])
            self.add("Gemm", inputs, node.name, transB=1)
            return
        y = self.add("MatMul", [self.value(x), self.add("Transpose", [self.value(w)], perm=[1, 0])],
                     None if b is not None else node.name)
        if b is not None:
            self.add("Add", [y, self.value(b)], node.name)

    def _affine(self, node, weight, bias, shape) -> tuple[str, str]:
        """The scale and shift inputs of a normalisation: the parameters, or ones and zeros."""
        scale = self.value(weight) if weight is not None else self.const(node, "scale", np.ones(shape, self.dtype))
        shift = self.value(bias) if bias is not None else self.const(node, "shift", np.zeros(shape, self.dtype))
        return scale, shift

    def _batch_norm(self, index, node):
        o = node.options
        if o["training"] or o["running_mean"] is None:
            raise self.walk.refuse(node, "batch statistics at inference (training=True or no running "
                                         "statistics, track_running_stats=False) have no ONNX mapping")
        x, weight, bias = node.inputs
        scale, shift = self._affine(node, weight, bias, (self.graph.shape(x)[1],))
        y = self.add("BatchNormalization", [self.value(x), scale, shift, self.value(o["running_mean"]),
                                            self.value(o["running_var"])], epsilon=float(o["eps"]))
        self.rectify(node, y)

    def _instance_norm(self, index, node):
        o = node.options
        x, weight, bias = node.inputs
        scale, shift = self._affine(node, weight, bias, (self.graph.shape(x)[1],))
        if o["use_input_stats"]:
            self.add("InstanceNormalization", [self.value(x), scale, shift], node.name, epsilon=float(o["eps"]))
        else:
            self.add("BatchNormalization", [self.value(x), scale, shift, self.value(o["running_mean"]),
                                            self.value(o["running_var"])], node.name, epsilon=float(o["eps"]))

    def _layer_norm(self, index, node):
        o = node.options
        x, weight, bias = node.inputs
        k = o["normalized_ndim"]
        scale, shift = self._affine(node, weight, bias, self.graph.shape(x)[-k:])
        self.add("LayerNormalization", [self.value(x), scale, shift], node.name, axis=-k, epsilon=float(o["eps"]))

    def _group_norm(self, index, node):
        """``(N, C, *s)`` -> ``(N, G, -1)``, instance norm per group, back to the input's shape, then ``w*y + b``."""
        o = node.options
        x, weight, bias = node.inputs
        groups, shape = o["num_groups"], self.graph.shape(x)
        xv = self.value(x)
        y = self.add("Reshape", [xv, self.ints(node, "grouped", [0, groups, -1])])
        y = self.add("InstanceNormalization", [y, self.const(node, "ones", np.ones(groups, self.dtype)),
                                               self.const(node, "zeros", np.zeros(groups, self.dtype))],
                     epsilon=float(o["eps"]))
        y = self.add("Reshape", [y, self.add("Shape", [xv])])
        per_channel = self.ints(node, "per_channel", [shape[1]] + [1] * (len(shape) - 2))
        if weight is not None:
            y = self.add("Mul", [y, self.add("Reshape", [self.value(weight), per_channel])])
        if bias is not None:
            y = self.add("Add", [y, self.add("Reshape", [self.value(bias), per_channel])])
        self.add("Identity", [y], node.name)

    def _leaky_relu(self, index, node):
        self.add("LeakyRelu", [self.value(node.inputs[0])], node.name, alpha=float(node.options["negative_slope"]))

    def _softmax(self, index, node):
        self.add("Softmax", [self.value(node.inputs[0])], node.name, axis=int(node.options["axis"]))

    def _log_softmax(self, index, node):
        self.add("LogSoftmax", [self.value(node.inputs[0])], node.name, axis=int(node.options["axis"]))

    def _pow(self, index, node):
        exponent = self.const(node, "exponent", np.asarray(node.options["exponent"], dtype=node.dtype))
        self.add("Pow", [self.value(node.inputs[0]), exponent], node.name)

    def _axes(self, node) -> list[int]:
        axis, ndim = node.options["axis"], len(self.graph.shape(node.inputs[0]))
        axes = range(ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
        return [a % ndim for a in axes]

    def _sum(self, index, node):
        self.reduce("ReduceSum", self.value(node.inputs[0]), node, self._axes(node))

    def _mean(self, index, node):
        self.reduce("ReduceMean", self.value(node.inputs[0]), node, self._axes(node))

    def _max(self, index, node):
        self.reduce("ReduceMax", self.value(node.inputs[0]), node, self._axes(node))

    def _reshape(self, index, node):
        shape = self.walk.shape_with_batch(node, node.shape)  # the option may hold a -1
        self.add("Reshape", [self.value(node.inputs[0]), self.ints(node, "shape", shape)], node.name)

    def _transpose(self, index, node):
        self.add("Transpose", [self.value(node.inputs[0])], node.name, perm=list(node.options["axes"]))

    def _getitem(self, index, node):
        """Basic indexing (slices and ints, with an ``...``) -> ``Slice``, then ``Squeeze`` of the int axes."""
        shape = self.graph.shape(node.inputs[0])
        key = node.options["index"]
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (len(shape) - len(key) + 1) + key[at + 1:]
        if not all(isinstance(k, slice) or (isinstance(k, (int, np.integer)) and not isinstance(k, bool))
                   for k in key) or len(key) > len(shape):
            raise self.walk.refuse(node, f"index {key!r}: only slices, ints and ... have an ONNX mapping here")
        batch = self.walk.batch_axes(node.inputs[0])
        starts, ends, axes, steps, squeeze = [], [], [], [], []
        for axis, k in enumerate(key):
            if isinstance(k, slice):
                if k == slice(None):
                    continue
                if axis in batch:
                    raise self.walk.refuse(node, f"index {key!r} slices the batch axis")
                start, stop, step = k.indices(shape[axis])
                if step < 0 and stop < 0:
                    stop = _INT64_MIN
            else:
                if axis in batch:
                    raise self.walk.refuse(node, f"index {key!r} picks one sample of the batch")
                start = int(k) % shape[axis]
                stop, step = start + 1, 1
                squeeze.append(axis)
            starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
        y = self.value(node.inputs[0])
        if axes:
            y = self.add("Slice", [y, self.ints(node, "starts", starts), self.ints(node, "ends", ends),
                                   self.ints(node, "axes", axes), self.ints(node, "steps", steps)])
        if squeeze:
            y = self.add("Squeeze", [y, self.ints(node, "squeeze", squeeze)])
        self.add("Identity", [y], node.name)

    def _cast(self, index, node):
        to = self.helper.np_dtype_to_tensor_dtype(np.dtype(node.options["dtype"]))
        self.add("Cast", [self.value(node.inputs[0])], node.name, to=to)

    def _cat(self, index, node):
        self.add("Concat", [self.value(v) for v in node.inputs], node.name, axis=int(node.options["axis"]))

    def _stack(self, index, node):
        axis = int(node.options["axis"]) % len(node.shape)
        at = self.ints(node, "axis", [axis])
        self.add("Concat", [self.add("Unsqueeze", [self.value(v), at]) for v in node.inputs], node.name, axis=axis)

    def _pool_pads(self, padding) -> list[int]:
        return [int(p) for p in padding] * 2

    def _max_pool(self, index, node):
        o = node.options
        self.add("MaxPool", [self.value(node.inputs[0])], node.name, kernel_shape=list(o["kernel"]),
                 strides=list(o["stride"]), pads=self._pool_pads(o["padding"]), dilations=list(o["dilation"]),
                 ceil_mode=int(bool(o["ceil_mode"])))

    def _avg_pool(self, index, node):
        o = node.options
        if o["divisor_override"] is not None:
            raise self.walk.refuse(node, "divisor_override has no ONNX mapping")
        self.add("AveragePool", [self.value(node.inputs[0])], node.name, kernel_shape=list(o["kernel"]),
                 strides=list(o["stride"]), pads=self._pool_pads(o["padding"]),
                 ceil_mode=int(bool(o["ceil_mode"])), count_include_pad=int(bool(o["count_include_pad"])))

    def _uniform_windows(self, node) -> list[int] | None:
        """The window size (= stride) per axis when every input size is a multiple of its output size."""
        spatial, out = self.graph.shape(node.inputs[0])[2:], node.options["output_size"]
        if all(o > 0 and n % o == 0 for n, o in zip(spatial, out)):
            return [n // o for n, o in zip(spatial, out)]
        return None

    def _adaptive_avg_pool(self, index, node):
        x, out = self.value(node.inputs[0]), tuple(node.options["output_size"])
        spatial = self.graph.shape(node.inputs[0])[2:]
        if all(o == 1 for o in out):
            self.add("GlobalAveragePool", [x], node.name)
            return
        kernel = self._uniform_windows(node)
        if kernel is not None:
            self.add("AveragePool", [x], node.name, kernel_shape=kernel, strides=kernel)
            return
        if len(spatial) > 2:
            raise self.walk.refuse(node, f"windows of unequal sizes ({spatial} -> {out}) have an ONNX mapping "
                                         f"for 1-D and 2-D inputs only")
        # y = A_h x A_w^T: each axis a MatMul with its window-averaging matrix
        y = self.add("MatMul", [x, self.const(node, "windows_w", _window_matrix(spatial[-1], out[-1], node.dtype).T)])
        if len(spatial) == 2:
            y = self.add("MatMul", [self.const(node, "windows_h", _window_matrix(spatial[0], out[0], node.dtype)), y])
        self.add("Identity", [y], node.name)

    def _adaptive_max_pool(self, index, node):
        x, out = self.value(node.inputs[0]), tuple(node.options["output_size"])
        if all(o == 1 for o in out):
            self.add("GlobalMaxPool", [x], node.name)
            return
        kernel = self._uniform_windows(node)
        if kernel is None:
            raise self.walk.refuse(node, f"windows of unequal sizes ({self.graph.shape(node.inputs[0])[2:]} -> "
                                         f"{out}) have no ONNX mapping")
        self.add("MaxPool", [x], node.name, kernel_shape=kernel, strides=kernel)

    def _pad(self, index, node):
        o = node.options
        mode = _PAD_MODES[o["mode"]]
        lead = len(node.shape) - len(o["pads"])
        pads = [0] * lead + [lo for lo, _ in o["pads"]] + [0] * lead + [hi for _, hi in o["pads"]]
        inputs = [self.value(node.inputs[0]), self.ints(node, "pads", pads)]
        if mode == "constant":
            inputs.append(self.const(node, "value", np.asarray(o.get("value", 0.0), dtype=node.dtype)))
        self.add("Pad", inputs, node.name, mode=mode)

    def _interpolate(self, index, node):
        """``Resize``: PyTorch's coordinate rules as ONNX's ``coordinate_transformation_mode``s."""
        o = node.options
        mode = o["mode"]
        x = self.value(node.inputs[0])
        if mode == "nearest":
            attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        elif mode == "nearest-exact":
            attrs = dict(mode="nearest", coordinate_transformation_mode="half_pixel",
                         nearest_mode="round_prefer_ceil")
        else:
            attrs = dict(mode="linear", coordinate_transformation_mode="align_corners" if o["align_corners"]
                         else "pytorch_half_pixel")
        if o["scale_factor"] is not None:  # the coordinates use 1/scale_factor, as ONNX's scales do
            scales = np.asarray([1.0, 1.0, *o["scale_factor"]], dtype=np.float32)
            self.add("Resize", [x, "", self.const(node, "scales", scales)], node.name, **attrs)
            return
        lead = self.add("Shape", [x], end=2)
        sizes = self.add("Concat", [lead, self.ints(node, "size", o["size"])], axis=0)
        self.add("Resize", [x, "", "", sizes], node.name, **attrs)

    # ------------------------------------------------------------ the model
    def model(self):
        helper, graph = self.helper, self.graph
        elem = helper.np_dtype_to_tensor_dtype(self.dtype)
        inputs = [helper.make_tensor_value_info("input", elem, ["N", *self.walk.input_size])]
        outputs = []
        for name in graph.outputs:
            shape = graph.shape(name)
            dims = ["N" if i in self.walk.batch_axes(name) else n for i, n in enumerate(shape)]
            dtype = self.dtype if graph.kind(name) == "input" else graph.node(name).dtype
            if name == "input":
                name = self.add("Identity", ["input"], "output")
            outputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(dtype), dims))
        onnx_graph = helper.make_graph(self.nodes, type(self.walk.model).__name__, inputs, outputs,
                                       list(self.initializers.values()))
        opsets = [helper.make_opsetid("", self.opset)]
        return helper.make_model(onnx_graph, opset_imports=opsets, producer_name="convkit",
                                 producer_version=__version__, ir_version=helper.find_min_ir_version_for(opsets))


def _window_matrix(n: int, o: int, dtype) -> np.ndarray:
    """``A (o, n)``: row ``i`` averages adaptive window ``i``, ``[floor(i*n/o), ceil((i+1)*n/o))``."""
    a = np.zeros((o, n), dtype=np.float64)
    for i in range(o):
        start, stop = (i * n) // o, -((-(i + 1) * n) // o)
        a[i, start:stop] = 1.0 / (stop - start)
    return a.astype(dtype)
