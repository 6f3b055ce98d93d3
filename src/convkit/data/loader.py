"""Mini-batches of uint8 images as normalised float arrays, reproducible per epoch.

``DataLoader`` keeps the images as uint8 and assembles each batch in one
compiled pass (``ops.jit``, parallel over the batch's images): the gather of
the batch's images, the augmentations, and one table look-up that maps every
byte ``v`` straight to ``((v / 255) - mean) / std`` in the output dtype.

The augmentations ``RandomCrop`` and ``RandomHorizontalFlip`` are geometric:
each only draws its random numbers and composes its map into a per-image
*plan*, the map from output pixels to source pixels::

    out[b, c, i, j] = table[images[index_b, c, i + oy_b, sx_b * j + ox_b]]   if r0_b <= i < r1_b and c0_b <= j < c1_b
                    = table[0]                                              otherwise (zero padding)

(``sx_b = -1`` for a flipped image; a crop shifts ``(oy, ox)`` and narrows
the window ``[r0, r1) x [c0, c1)`` of pixels that come from the image).
Any chain of crops and flips is such a map, so the pass reads each source
pixel at most once and writes each output element once. Other augmentation
callables still work: the batch is assembled (as uint8) up to them, they
run on it, and the plan continues from their result.

Randomness is a function of ``(seed, epoch)`` only: the order of epoch
``e`` is ``np.random.default_rng([seed, e]).permutation(N)`` and the
augmentations draw from ``np.random.default_rng([seed, e, 1])``, so a run
resumed at epoch ``e`` (``set_epoch(e)``) sees exactly the batches it
would have seen without the interruption.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence

import numpy as np
from numba.core import types
from numba.core.extending import overload

from ..ops import workspace
from ..ops.jit import kernel, parallel_spans, prange


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_batch(images, op: str) -> None:
    if not isinstance(images, np.ndarray) or images.ndim < 3:
        shape = getattr(images, "shape", None)
        raise ValueError(f"{op}: images must be an array (B, ..., H, W) with at least 3 dims, got shape {shape}")


# ------------------------------------------------------------------------------- the kernel
def _look_up(table, value):
    """``table[value]``, or ``value`` itself when there is no table (None)."""
    return value if table is None else table[value]


@overload(_look_up)
def _look_up_overload(table, value):
    if isinstance(table, types.NoneType):
        return lambda table, value: value
    return lambda table, value: table[value]


@kernel
def _assemble_span(images, index, plan, table, out, start, stop):
    """Images ``start..stop`` of ``out (B, C, h, w)`` from ``images (N, C, H, W)`` by the plan (module docstring).

    ``plan`` is ``(B, 7)`` int64: ``oy, ox, sx, r0, r1, c0, c1`` per image.
    """
    channels, height, width = out.shape[1], out.shape[2], out.shape[3]
    fill = _look_up(table, images.dtype.type(0))
    for b in range(start, stop):
        image = images[index[b]]
        oy, ox, sx, r0, r1, c0, c1 = plan[b, 0], plan[b, 1], plan[b, 2], plan[b, 3], plan[b, 4], plan[b, 5], plan[b, 6]
        for c in range(channels):
            plane = out[b, c]
            for i in range(height):
                row = plane[i]
                if i < r0 or i >= r1 or c0 >= c1:
                    for j in range(width):
                        row[j] = fill
                    continue
                for j in range(c0):
                    row[j] = fill
                source = image[c, i + oy]
                inside = row[c0:c1]
                if sx == 1:
                    segment = source[c0 + ox:c1 + ox]
                    for j in range(inside.size):
                        inside[j] = _look_up(table, segment[j])
                else:
                    for j in range(inside.size):
                        inside[j] = _look_up(table, source[ox - c0 - j])
                for j in range(c1, width):
                    row[j] = fill


@kernel(parallel=True)
def _assemble_chunks(images, index, plan, table, out, items, threads):
    for t in prange(threads):
        _assemble_span(images, index, plan, table, out, t * items // threads, (t + 1) * items // threads)


class _Plan:
    """The per-image map from output pixels to source pixels (module docstring), composed augmentation by augmentation.

    ``maps`` is ``(B, 7)`` int64 (``oy, ox, sx, r0, r1, c0, c1``); ``height``,
    ``width`` the size of the images the map produces.
    """

    def __init__(self, batch: int, height: int, width: int):
        self.maps = np.zeros((batch, 7), dtype=np.int64)
        self.maps[:, 2] = 1
        self.maps[:, 4] = height
        self.maps[:, 6] = width
        self.height, self.width = height, width

    def shift(self, dy: np.ndarray, dx: np.ndarray, height: int, width: int) -> None:
        """Compose ``new[i, j] = previous[i + dy, j + dx]`` (zero outside ``previous``), new size ``height x width``."""
        m = self.maps
        m[:, 0] += dy
        m[:, 1] += m[:, 2] * dx
        window = m[:, 3:]                                   # r0, r1, c0, c1
        window -= np.stack((dy, dy, dx, dx), axis=1)
        np.minimum(np.maximum(window, 0, out=window), (height, height, width, width), out=window)
        self.height, self.width = height, width

    def mirror(self, flip: np.ndarray) -> None:
        """Compose ``new[i, j] = previous[i, W - 1 - j]`` for the images where ``flip`` is True."""
        m = self.maps[flip]
        m[:, 1] += m[:, 2] * (self.width - 1)
        m[:, 2] *= -1
        m[:, 5], m[:, 6] = self.width - m[:, 6], self.width - m[:, 5]
        self.maps[flip] = m

    def apply(self, images: np.ndarray, index: np.ndarray, table=None, dtype=None) -> np.ndarray:
        """``out (B, ..., height, width)``: the mapped images ``images[index]`` (``(N, ..., H, W)``), looked up in ``table``.

        Without a table the output has the images' dtype; with one, the table's.
        """
        lead = images.shape[1:-2]
        source = np.ascontiguousarray(images).reshape((len(images), math.prod(lead)) + images.shape[-2:])
        batch = len(index)
        out = workspace.empty((batch, source.shape[1], self.height, self.width),
                              images.dtype if table is None else table.dtype)
        parallel_spans(_assemble_span, _assemble_chunks, batch, out.size, source,
                       np.ascontiguousarray(index, dtype=np.int64), self.maps, table, out)
        return out.reshape((batch,) + lead + (self.height, self.width))


def _augmented(images: np.ndarray, rng: np.random.Generator, augmentation) -> np.ndarray:
    """A geometric augmentation called on its own: its plan applied to the whole batch."""
    _check_batch(images, type(augmentation).__name__)
    plan = _Plan(len(images), *images.shape[-2:])
    augmentation.compose(plan, rng)
    return plan.apply(images, np.arange(len(images)))


class RandomCrop:
    """Pad each image with zeros, then cut a ``size x size`` window at a random offset.

    For padding ``p``, image ``b`` becomes ``padded[b, dy:dy+size, dx:dx+size]``
    with ``dy`` uniform in ``0..H+2p-size`` and ``dx`` in ``0..W+2p-size``,
    drawn per image (``dy`` for the whole batch, then ``dx``): for
    ``size = H = W`` a shift of the image by ``(p - dy, p - dx)`` pixels with
    zeros (background) filling in. As torchvision's ``RandomCrop(size, padding)``,
    but for a whole batch at once; no padded copy is made (see the module docstring).

    Args:
        size: output height and width (default 28).
        padding: zeros added on every side first (default 2).

    Call: ``crop(images, rng)`` with images ``(B, ..., H, W)`` (any dtype)
    and a ``np.random.Generator``; returns a new ``(B, ..., size, size)`` array.
    """

    def __init__(self, size: int = 28, padding: int = 2):
        if not _is_int(size) or size < 1:
            raise ValueError(f"RandomCrop: size must be a positive int, got {size!r}")
        if not _is_int(padding) or padding < 0:
            raise ValueError(f"RandomCrop: padding must be a non-negative int, got {padding!r}")
        self.size = int(size)
        self.padding = int(padding)

    def compose(self, plan: _Plan, rng: np.random.Generator) -> None:
        """Draw the offsets of ``plan``'s images and compose the crop into it."""
        p, size = self.padding, self.size
        height, width = plan.height + 2 * p, plan.width + 2 * p
        if size > height or size > width:
            raise ValueError(
                f"RandomCrop: size {size} is larger than the padded images ({height}, {width}) "
                f"(images {(plan.height, plan.width)}, padding {p})"
            )
        batch = len(plan.maps)
        dy = rng.integers(0, height - size + 1, size=batch)
        dx = rng.integers(0, width - size + 1, size=batch)
        plan.shift(dy - p, dx - p, size, size)

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _augmented(images, rng, self)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left-right (reverse its columns) with probability ``p``.

    Right for Fashion-MNIST (a mirrored shoe is still a shoe); wrong for
    digits, where mirroring changes or destroys the class (a mirrored 2 or 7
    is no digit).

    Args:
        p: probability of flipping each image (default 0.5).

    Call: ``flip(images, rng)`` with images ``(B, ..., H, W)`` and a
    ``np.random.Generator``; returns a new array of the same shape.
    """

    def __init__(self, p: float = 0.5):
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def compose(self, plan: _Plan, rng: np.random.Generator) -> None:
        """Draw which of ``plan``'s images flip (``u_b < p``, ``u_b ~ U[0, 1)``) and compose the flip into it."""
        plan.mirror(rng.random(len(plan.maps)) < self.p)

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _augmented(images, rng, self)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class DataLoader:
    """Iterate over ``(x, y)`` mini-batches of uint8 images.

    ``x = ((images[batch] / 255) - mean) / std`` as ``dtype``, shape
    ``(B, 1, H, W)`` for images ``(N, H, W)`` (``(B, C, H, W)`` for
    ``(N, C, H, W)``); ``y`` int64 ``(B,)``.

    The order and augmentations of an epoch depend only on ``(seed, epoch)``
    (see the module docstring). As with PyTorch's ``DistributedSampler``,
    the epoch does not advance by itself: call ``set_epoch(e)`` before each
    epoch, or every epoch repeats the order of epoch 0.

    Args:
        images: uint8 array ``(N, H, W)`` or ``(N, C, H, W)``.
        labels: integer array ``(N,)``.
        batch_size: images per batch (default 128); the last batch is
            smaller unless ``drop_last``.
        shuffle: a new random order every epoch (default False: the stored order).
        seed: seed of the order and augmentations (default 0).
        mean, std: normalisation on the [0, 1] scale (default None: 0 and 1,
            i.e. ``x = images / 255``); use ``Dataset.mean`` / ``Dataset.std``.
        augment: callables ``aug(images, rng)`` applied in order to the uint8
            batch before normalisation, e.g. ``(RandomCrop(28, 2), RandomHorizontalFlip())``.
        drop_last: drop the last batch if it is smaller than ``batch_size`` (default False).
        dtype: ``np.float32`` (default) or ``np.float64``.
    """

    def __init__(self, images, labels, batch_size: int = 128, shuffle: bool = False, seed: int = 0,
                 mean: float | None = None, std: float | None = None, augment: Sequence = (),
                 drop_last: bool = False, dtype=np.float32):
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise TypeError(
                f"DataLoader: images must be a uint8 ndarray (N, H, W) or (N, C, H, W), got "
                f"{type(images).__name__} {getattr(images, 'dtype', '')} {getattr(images, 'shape', '')}"
            )
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise TypeError(f"DataLoader: labels must be integers of shape (N,), got {labels.dtype} {labels.shape}")
        if len(labels) != len(images):
            raise ValueError(f"DataLoader: {len(images)} images but {len(labels)} labels")
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"DataLoader: seed must be a non-negative int, got {seed!r}")
        mean = 0.0 if mean is None else mean
        std = 1.0 if std is None else std
        if not isinstance(mean, numbers.Real) or not math.isfinite(mean):
            raise ValueError(f"DataLoader: mean must be a finite number, got {mean!r}")
        if not isinstance(std, numbers.Real) or not math.isfinite(std) or std <= 0:
            raise ValueError(f"DataLoader: std must be a positive finite number, got {std!r}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"DataLoader: dtype must be float32 or float64, got {dtype}")
        augment = tuple(augment)
        for aug in augment:
            if not callable(aug):
                raise TypeError(f"DataLoader: augment must hold callables aug(images, rng), got {aug!r}")
        self.images = images
        self._source = np.ascontiguousarray(images)  # the kernel's input (a copy only if images is not contiguous)
        self.labels = labels.astype(np.int64, copy=False)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.mean, self.std = float(mean), float(std)
        self.augment = augment
        self.drop_last = bool(drop_last)
        self.dtype = dtype
        self.epoch = 0
        # byte value -> normalised value, computed in float64 and rounded once
        self._table = ((np.arange(256) / 255.0 - self.mean) / self.std).astype(dtype)

    def set_epoch(self, epoch: int) -> None:
        """Use the order and augmentations of ``epoch`` for the next iterations."""
        if not _is_int(epoch) or epoch < 0:
            raise ValueError(f"DataLoader.set_epoch: epoch must be a non-negative int, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self) -> np.ndarray:
        """The sample indices of the current epoch, in the order they are served."""
        n = len(self.labels)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = self.order()
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self._assemble(idx, rng), self.labels[idx]

    def _assemble(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The float batch ``(B, C, h, w)`` of images ``idx``: one kernel pass, unless a custom augmentation intervenes."""
        images = self._source
        plan = _Plan(len(idx), *images.shape[-2:])
        for aug in self.augment:
            if isinstance(aug, (RandomCrop, RandomHorizontalFlip)):
                aug.compose(plan, rng)
                continue
            images = np.asarray(aug(plan.apply(images, idx), rng))  # a callable of the user's, on the uint8 batch so far
            idx = np.arange(len(images))
            plan = _Plan(len(idx), *images.shape[-2:])
        x = plan.apply(images, idx, self._table)
        return x if x.ndim == 4 else x.reshape((len(x), 1) + x.shape[-2:])


def train_val_split(n: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` at random into training and validation indices.

    ``round(n * val_fraction)`` indices, drawn by
    ``np.random.default_rng(seed).permutation(n)``, go to validation; both
    index arrays are returned sorted, and the same arguments always give
    the same split.

    Args:
        n: number of samples.
        val_fraction: share held out for validation, in [0, 1) (default 0.1).
        seed: default 0.

    Returns:
        ``(train_idx, val_idx)``, int64 arrays that partition ``range(n)``.
    """
    if not _is_int(n) or n < 1:
        raise ValueError(f"train_val_split: n must be a positive int, got {n!r}")
    if not isinstance(val_fraction, numbers.Real) or not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"train_val_split: val_fraction must be in [0, 1), got {val_fraction!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"train_val_split: seed must be a non-negative int, got {seed!r}")
    n_val = round(n * val_fraction)
    if n_val == n or (val_fraction > 0 and n_val == 0):
        raise ValueError(
            f"train_val_split: val_fraction {val_fraction} of n={n} gives {n_val} validation and "
            f"{n - n_val} training samples; both need at least one"
        )
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
