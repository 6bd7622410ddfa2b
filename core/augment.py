"""Training-batch augmentation: random crop of a zero-padded image and horizontal flip.

Letters: N images, S = 32 side, C = 3 channels, P = crop padding.
An image is padded with P zero pixels on every side to (S+2P, S+2P, C) and an S x S window at
offset (dy, dx), 0 <= dy, dx <= 2P, is cut out: dy = dx = P returns the image unchanged, dy = 0
shifts it P pixels down. Then, with probability 1/2, it is mirrored left-right.
The random draws (all from the given ``np.random.Generator``, in this order): dy (N,), dx (N,),
flip (N,) — so the fast and the naive version give the same result for the same generator state.
"""

from __future__ import annotations

import numpy as np


def draw_augment_params(n: int, rng: np.random.Generator, crop_pad: int = 4, flip: bool = True):
    """-> dy int (N,), dx int (N,), flips bool (N,)."""
    dy = rng.integers(0, 2 * crop_pad + 1, size=n)
    dx = rng.integers(0, 2 * crop_pad + 1, size=n)
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, dtype=bool)
    return dy, dx, flips


def augment_batch(images_uint8: np.ndarray, rng: np.random.Generator, crop_pad: int = 4,
                  flip: bool = True) -> np.ndarray:
    """uint8 (N,S,S,C) -> new uint8 (N,S,S,C): random crop from zero padding P, random h-flip."""
    x = np.asarray(images_uint8)
    n, s, s2, c = x.shape
    dy, dx, flips = draw_augment_params(n, rng, crop_pad, flip)
    if crop_pad > 0:
        padded = np.zeros((n, s + 2 * crop_pad, s2 + 2 * crop_pad, c), dtype=x.dtype)
        padded[:, crop_pad:crop_pad + s, crop_pad:crop_pad + s2] = x
    else:
        padded = x
    rows = dy[:, None] + np.arange(s)[None, :]            # (N, S)
    cols = dx[:, None] + np.arange(s2)[None, :]           # (N, S)
    cols = np.where(flips[:, None], cols[:, ::-1], cols)  # mirrored window = flipped crop
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def augment_batch_naive(images_uint8: np.ndarray, rng: np.random.Generator, crop_pad: int = 4,
                        flip: bool = True) -> np.ndarray:
    """Loop twin of :func:`augment_batch` (same draws, same result)."""
    x = np.asarray(images_uint8)
    n, s, s2, c = x.shape
    dy, dx, flips = draw_augment_params(n, rng, crop_pad, flip)
    out = np.empty_like(x)
    for i in range(n):
        padded = np.zeros((s + 2 * crop_pad, s2 + 2 * crop_pad, c), dtype=x.dtype)
        padded[crop_pad:crop_pad + s, crop_pad:crop_pad + s2] = x[i]
        crop = padded[dy[i]:dy[i] + s, dx[i]:dx[i] + s2]
        out[i] = crop[:, ::-1] if flips[i] else crop
    return out
