"""What ``run.py`` measures: each case builds the same float32 data for convkit and PyTorch and
returns one zero-argument call per library.

* conv2d forward (no graph) and forward + backward (gradients of input,
  weight and bias for a fixed random upstream gradient), convkit on its
  ``auto`` choice (or a forced algorithm), torch on its default CPU path:
  the classic layers (LeNet, ResNet, VGG, a stem, a large kernel) and the
  shapes users bring that nobody tuned for (3x3 stride 2, 1x1, depthwise);
* conv_transpose2d 4x4 stride 2 (DCGAN's upsampling) forward + backward;
* max_pool2d 2x2 and 3x3/2 with padding (overlapping windows), batch_norm
  (training mode, affine) at two shapes, forward + backward;
* one training step (forward, cross-entropy, backward, Adam update) of
  LeNet-5 and of the batch-norm ``convnet`` at batch 128, the steps
  ``convkit train`` repeats; torch runs the twin model (``twin.py``) from
  convkit's initial weights.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

import convkit
import convkit.functional as F
from convkit.models import convnet, lenet5
from twin import twin

# (label, input shape, out channels, kernel, stride, padding, groups)
CONV_CASES = [
    ("LeNet C1 (128,1,28,28) -> 6 k5 p2", (128, 1, 28, 28), 6, 5, 1, 2, 1),
    ("LeNet C3 (128,6,14,14) -> 16 k5", (128, 6, 14, 14), 16, 5, 1, 0, 1),
    ("3x3 s2 (32,32,32,32) -> 64 p1", (32, 32, 32, 32), 64, 3, 2, 1, 1),
    ("1x1 (32,64,28,28) -> 128", (32, 64, 28, 28), 128, 1, 1, 0, 1),
    ("depthwise 3x3 (32,64,56,56) g64 p1", (32, 64, 56, 56), 64, 3, 1, 1, 64),
    ("3x3 (16,128,28,28) -> 128 p1", (16, 128, 28, 28), 128, 3, 1, 1, 1),
    ("ResNet (32,64,56,56) -> 64 k3 p1", (32, 64, 56, 56), 64, 3, 1, 1, 1),
    ("VGG (8,256,56,56) -> 256 k3 p1", (8, 256, 56, 56), 256, 3, 1, 1, 1),
    ("stem (32,3,224,224) -> 64 k7 s2 p3", (32, 3, 224, 224), 64, 7, 2, 3, 1),
    ("large kernel (8,16,128,128) -> 16 k15 p7", (8, 16, 128, 128), 16, 15, 1, 7, 1),
]
QUICK_CONV = {0, 1, 2, 4}

Calls = dict[str, Callable[[], object]]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def conv_data(shape, cout: int, k: int, stride: int, padding: int, groups: int = 1, seed: int = 0):
    """Float32 input, weight (scaled like torch's init), bias and an upstream gradient of the output's shape."""
    rng = _rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    cin = shape[1] // groups
    w = (rng.standard_normal((cout, cin, k, k), dtype=np.float32) / np.sqrt(cin * k * k))
    b = rng.standard_normal(cout, dtype=np.float32)
    out = tuple((n + 2 * padding - k) // stride + 1 for n in shape[2:])
    g = rng.standard_normal((shape[0], cout) + out, dtype=np.float32)
    return x, w.astype(np.float32), b, g


def conv_forward(shape, cout, k, stride, padding, groups=1, algorithm: str = "auto") -> Calls:
    x, w, b, _ = conv_data(shape, cout, k, stride, padding, groups)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))

    def ck():
        with convkit.no_grad():
            return F.conv2d(x, w, b, stride, padding, 1, groups, algorithm=algorithm)

    def th():
        with torch.no_grad():
            return torch.nn.functional.conv2d(tx, tw, tb, stride, padding, 1, groups)

    return {"convkit": ck, "torch": th}


def conv_train(shape, cout, k, stride, padding, groups=1, algorithm: str = "auto") -> Calls:
    x, w, b, g = conv_data(shape, cout, k, stride, padding, groups)
    cx, cw, cb = (convkit.tensor(a, requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tg = torch.from_numpy(g)

    def ck():
        for t in (cx, cw, cb):
            t.grad = None
        F.conv2d(cx, cw, cb, stride, padding, 1, groups, algorithm=algorithm).backward(g)

    def th():
        for t in (tx, tw, tb):
            t.grad = None
        torch.nn.functional.conv2d(tx, tw, tb, stride, padding, 1, groups).backward(tg)

    return {"convkit": ck, "torch": th}


def conv_transpose_train(shape=(64, 128, 16, 16), cout: int = 64, k: int = 4, stride: int = 2,
                         padding: int = 1) -> Calls:
    """DCGAN's upsampling layer: a 4x4 stride-2 transposed convolution doubling each side."""
    rng = _rng(5)
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((shape[1], cout, k, k), dtype=np.float32) / np.float32(np.sqrt(cout * k * k))
    b = rng.standard_normal(cout, dtype=np.float32)
    out = tuple((n - 1) * stride - 2 * padding + k for n in shape[2:])
    g = rng.standard_normal((shape[0], cout) + out, dtype=np.float32)
    cx, cw, cb = (convkit.tensor(a, requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tg = torch.from_numpy(g)

    def ck():
        for t in (cx, cw, cb):
            t.grad = None
        F.conv_transpose2d(cx, cw, cb, stride, padding).backward(g)

    def th():
        for t in (tx, tw, tb):
            t.grad = None
        torch.nn.functional.conv_transpose2d(tx, tw, tb, stride, padding).backward(tg)

    return {"convkit": ck, "torch": th}


def max_pool_train(shape=(32, 64, 56, 56), kernel: int = 2, stride: int = 2, padding: int = 0) -> Calls:
    x = _rng(1).standard_normal(shape, dtype=np.float32)
    out = tuple((n + 2 * padding - kernel) // stride + 1 for n in shape[2:])
    g = _rng(2).standard_normal(shape[:2] + out, dtype=np.float32)
    cx, tx, tg = convkit.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True), torch.from_numpy(g)

    def ck():
        cx.grad = None
        F.max_pool2d(cx, kernel, stride, padding).backward(g)

    def th():
        tx.grad = None
        torch.nn.functional.max_pool2d(tx, kernel, stride, padding).backward(tg)

    return {"convkit": ck, "torch": th}


def batch_norm_train(shape=(32, 64, 56, 56)) -> Calls:
    rng = _rng(3)
    x, g = rng.standard_normal(shape, dtype=np.float32), rng.standard_normal(shape, dtype=np.float32)
    c = shape[1]
    gamma, beta = rng.standard_normal(c, dtype=np.float32), rng.standard_normal(c, dtype=np.float32)
    cx, cgm, cbt = (convkit.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    tx, tgm, tbt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    c_mean, c_var = np.zeros(c, np.float32), np.ones(c, np.float32)
    t_mean, t_var, tg = torch.zeros(c), torch.ones(c), torch.from_numpy(g)

    def ck():
        for t in (cx, cgm, cbt):
            t.grad = None
        F.batch_norm(cx, c_mean, c_var, cgm, cbt, training=True).backward(g)

    def th():
        for t in (tx, tgm, tbt):
            t.grad = None
        torch.nn.functional.batch_norm(tx, t_mean, t_var, tgm, tbt, training=True).backward(tg)

    return {"convkit": ck, "torch": th}


def train_step(model, batch: int = 128) -> Calls:
    """One training step (zero_grad, forward, cross-entropy, backward, Adam) of ``model`` and its
    PyTorch twin on a fixed float32 batch of 28x28 images."""
    rng = _rng(4)
    x = rng.standard_normal((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    opt = convkit.optim.Adam(model.parameters(), lr=1e-3)
    tm = twin(model)
    topt = torch.optim.Adam(tm.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def ck():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def th():
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tm(tx), ty).backward()
        topt.step()

    return {"convkit": ck, "torch": th}


def lenet5_step(batch: int = 128) -> Calls:
    """The LeNet-5 step of ``convkit train``'s default recipe."""
    convkit.manual_seed(0)
    return train_step(lenet5(), batch)


def convnet_step(batch: int = 128) -> Calls:
    """The step of ``convkit train convnet`` (batch-norm CNN, training mode)."""
    convkit.manual_seed(0)
    return train_step(convnet(), batch)
