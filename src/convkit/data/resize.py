"""Fitting 28x28 images to a model that needs larger ones: zero padding or bilinear resizing.

VGG's five 2x2 poolings need at least 32x32 inputs; MNIST and Fashion-MNIST
images are 28x28. ``fit_images(images, size, how)`` gives ``(N, size, size)`` uint8
images:

* ``"pad"``: the image in the middle of a ``size x size`` background
  (0, as the datasets' own border), ``(size - 28) // 2`` pixels before and the
  rest after on each axis; the pixels are unchanged;
* ``"bilinear"``: ``F.interpolate(..., mode="bilinear")`` of the pixel values
  (``align_corners=False``), rounded to the nearest integer; the picture
  fills the new size.

Converted in chunks, so the float copy never holds more than ``CHUNK`` images.
"""

from __future__ import annotations

import numpy as np

METHODS = ("pad", "bilinear")
CHUNK = 4096


def fit_images(images: np.ndarray, size: int, how: str = "pad") -> np.ndarray:
    """``images (N, H, W)`` uint8 as ``(N, size, size)`` uint8 (see the module docstring); ``size >= H, W``."""
    n, h, w = images.shape
    if how not in METHODS:
        raise ValueError(f"fit_images: how must be one of {METHODS}, got {how!r}")
    if size < max(h, w):
        raise ValueError(f"fit_images: size {size} is smaller than the images ({h}x{w}); expected at least {max(h, w)}")
    if size == h == w:
        return images
    if how == "pad":
        top, left = (size - h) // 2, (size - w) // 2
        return np.pad(images, ((0, 0), (top, size - h - top), (left, size - w - left)))
    from ..functional import interpolate

    out = np.empty((n, size, size), np.uint8)
    for start in range(0, n, CHUNK):
        part = images[start:start + CHUNK, None].astype(np.float32)
        scaled = interpolate(part, size=(size, size), mode="bilinear").numpy()[:, 0]
        out[start:start + CHUNK] = np.clip(np.rint(scaled), 0, 255)
    return out
