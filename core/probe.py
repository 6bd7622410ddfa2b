"""The built-in memory-probe task: 10 classes of 32x32 RGB noise images with a coloured cue band.

Letters: N images, H = W = 32, C = 3 channels, K = 10 classes.

Every image is noise except ``cue_height`` rows starting at ``cue_row`` (the cue band), which
show the class: one of 5 colours (red, green, blue, yellow, cyan) drawn with one of 2 textures
('stripes': vertical stripes 2 px on / 2 px off; 'checks': a 1-px checkerboard), e.g. class
'red stripes'. A pixel channel is either bright (230) or dark (25); in the cue band a channel
is bright where the texture is on and the class colour uses that channel. Outside the band every
channel is bright with the same probability it has in the cue band averaged over classes
(R 0.2, G 0.3, B 0.2), independently per pixel: the noise rows have the same per-channel mean
and variance as the cue rows, so a network cannot tell them apart by intensity and every noise
row drives the hidden state as hard as a cue row. Finally every pixel is mixed with uniform
noise: ``(1 - noise) * value + noise * U(0, 255)``.

A row-RNN that classifies from its last hidden state must carry the cue over the
``32 - cue_row - cue_height`` noise rows that follow it: with the cue near the bottom a tanh RNN
learns the task in seconds; with the cue at the top the gradient reaching the cue rows vanishes
and it stays near chance.
"""

from __future__ import annotations

import numpy as np

from core.errors import ConfigError
from core.imageset import ImageSet

SIZE = 32
COLOURS = {
    "red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1),
    "yellow": (1, 1, 0), "cyan": (0, 1, 1),
}
TEXTURES = ("stripes", "checks")
CLASS_NAMES = [f"{c} {t}" for t in TEXTURES for c in COLOURS]  # K = 10
BRIGHT, DARK = 230.0, 25.0
_CHUNK = 1000


def _texture(kind: str, rows: np.ndarray) -> np.ndarray:
    """bool (len(rows), W): where texture ``kind`` is on, for absolute image rows ``rows``."""
    w = np.arange(SIZE)
    if kind == "stripes":
        return np.broadcast_to((w % 4) < 2, (len(rows), SIZE)).copy()
    return ((rows[:, None] + w[None, :]) % 2) == 0


def class_patterns(cue_row: int, cue_height: int) -> np.ndarray:
    """bool (K, cue_height, W, C): which channels are bright in each class's cue band."""
    rows = np.arange(cue_row, cue_row + cue_height)
    out = np.zeros((len(CLASS_NAMES), cue_height, SIZE, 3), dtype=bool)
    for k, name in enumerate(CLASS_NAMES):
        colour, texture = name.split(" ")
        on = _texture(texture, rows)
        out[k] = on[:, :, None] & np.array(COLOURS[colour], dtype=bool)[None, None, :]
    return out


def check_params(n: int, cue_row: int, cue_height: int, noise: float, what: str = "n") -> None:
    if int(n) != n or n < 1:
        raise ConfigError(f"probe {what}={n} must be a positive number of images")
    if int(cue_height) != cue_height or not 1 <= cue_height <= SIZE:
        raise ConfigError(f"probe cue_height={cue_height} must be an integer in 1..{SIZE}")
    if int(cue_row) != cue_row or not 0 <= cue_row <= SIZE - cue_height:
        raise ConfigError(f"probe cue_row={cue_row} must be an integer in 0..{SIZE - cue_height} "
                          f"(the cue band of {cue_height} rows must fit in {SIZE} rows)")
    if not 0.0 <= float(noise) <= 1.0:
        raise ConfigError(f"probe noise={noise} must be in [0, 1]")


def generate_probe(n: int, rng: np.random.Generator, cue_row: int = 24, cue_height: int = 4,
                   noise: float = 0.5) -> ImageSet:
    """N probe images drawn from ``rng`` -> ImageSet (uint8 (N,H,W,C), int64 (N,), K names)."""
    check_params(n, cue_row, cue_height, noise)
    n, cue_row, cue_height = int(n), int(cue_row), int(cue_height)
    patterns = class_patterns(cue_row, cue_height)
    p_bright = patterns.mean(axis=(0, 1, 2))  # (C,) bright rate in the cue band, all classes
    labels = rng.permutation(np.arange(n) % len(CLASS_NAMES)).astype(np.int64)
    images = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    band = slice(cue_row, cue_row + cue_height)
    for i in range(0, n, _CHUNK):
        m = min(_CHUNK, n - i)
        bright = rng.random((m, SIZE, SIZE, 3)) < p_bright  # noise rows everywhere
        bright[:, band] = patterns[labels[i:i + m]]           # cue band shows the class
        value = np.where(bright, np.float32(BRIGHT), np.float32(DARK))
        if noise > 0:
            value = (1.0 - noise) * value + noise * 255.0 * rng.random(value.shape,
                                                                       dtype=np.float32)
        images[i:i + m] = np.clip(np.rint(value), 0, 255).astype(np.uint8)
    return ImageSet(images, labels, list(CLASS_NAMES))


def make_probe(n_train: int = 5000, n_test: int = 1000, cue_row: int = 24, cue_height: int = 4,
               noise: float = 0.5, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """-> (train, test) ImageSets; deterministic for a given seed (independent streams)."""
    check_params(n_train, cue_row, cue_height, noise, "n_train")
    check_params(n_test, cue_row, cue_height, noise, "n_test")
    s_train, s_test, _ = np.random.SeedSequence(seed).spawn(3)
    train = generate_probe(n_train, np.random.default_rng(s_train), cue_row, cue_height, noise)
    test = generate_probe(n_test, np.random.default_rng(s_test), cue_row, cue_height, noise)
    return train, test


def make_probe_val(n_val: int, cue_row: int = 24, cue_height: int = 4, noise: float = 0.5,
                   seed: int = 0) -> ImageSet:
    """A validation set from the third stream of ``seed`` (disjoint from make_probe's two)."""
    s_val = np.random.SeedSequence(seed).spawn(3)[2]
    return generate_probe(n_val, np.random.default_rng(s_val), cue_row, cue_height, noise)
