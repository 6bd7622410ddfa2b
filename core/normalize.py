"""Input normalisation fitted on the training split and stored with the model.

Letters: N images, H = W = 32, C = 3 channels.
Kinds: 'per-channel' (default) subtracts the training mean of each channel and divides by its
std; 'per-pixel' (seed000) does the same for every one of the H*W*C pixel positions; 'unit'
(seed001) scales to [0, 1] and needs no fit. Statistics are accumulated in float64 over chunks
of images, so fitting never makes a float copy of the whole set.
"""

from __future__ import annotations

import numpy as np

from core.errors import ConfigError
from core.names import NORMALIZATIONS

_CHUNK = 1000  # images converted to float64 at a time while fitting (~25 MB)


class Normalizer:
    """Map uint8 (N,H,W,C) images to float (N,H,W,C); ``mean``/``std`` float64 after fit."""

    def __init__(self, kind: str = "per-channel"):
        if kind not in NORMALIZATIONS:
            raise ConfigError(f"normalization '{kind}' is unknown; use one of "
                              f"{', '.join(NORMALIZATIONS)}")
        self.kind = kind
        self.mean: np.ndarray | None = None  # (C,) or (H,W,C); None for 'unit'
        self.std: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self.kind == "unit" or self.mean is not None

    def fit(self, images_uint8: np.ndarray) -> Normalizer:
        """Fit on uint8 (N,H,W,C) training images (chunked float64 sums) -> self."""
        x = images_uint8
        if x.ndim != 4 or len(x) == 0:
            raise ValueError(f"expected (N, H, W, C) images with N > 0, got shape {x.shape}")
        if self.kind == "unit":
            return self
        axes = (0, 1, 2) if self.kind == "per-channel" else (0,)
        s = np.zeros(x.shape[3] if self.kind == "per-channel" else x.shape[1:], np.float64)
        ss = np.zeros_like(s)
        for i in range(0, len(x), _CHUNK):
            chunk = np.asarray(x[i:i + _CHUNK], dtype=np.float64)
            s += chunk.sum(axis=axes)
            ss += np.square(chunk).sum(axis=axes)
        count = len(x) * (x.shape[1] * x.shape[2] if self.kind == "per-channel" else 1)
        mean = s / count
        var = np.maximum(ss / count - mean**2, 0.0)
        std = np.sqrt(var)
        std[std < 1e-6] = 1.0  # a constant pixel/channel is only centred
        self.mean, self.std = mean, std
        return self

    def apply(self, images_uint8: np.ndarray, dtype=np.float32) -> np.ndarray:
        """uint8 (N,H,W,C) -> ``dtype`` (N,H,W,C) normalised (a new array)."""
        if not self.fitted:
            raise RuntimeError(f"Normalizer('{self.kind}') must be fitted before apply()")
        x = np.asarray(images_uint8).astype(dtype)
        if self.kind == "unit":
            x *= x.dtype.type(1.0 / 255.0)
            return x
        x -= self.mean.astype(dtype)
        x /= self.std.astype(dtype)
        return x

    def to_dict(self) -> dict:
        """JSON-able state: {'kind', 'mean', 'std'} (nested lists or None)."""
        return {
            "kind": self.kind,
            "mean": None if self.mean is None else self.mean.tolist(),
            "std": None if self.std is None else self.std.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        try:
            norm = cls(d["kind"])
            if d.get("mean") is not None:
                norm.mean = np.asarray(d["mean"], dtype=np.float64)
                norm.std = np.asarray(d["std"], dtype=np.float64)
                if norm.mean.shape != norm.std.shape:
                    raise ValueError("mean and std shapes differ")
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"normalizer state {str(d)[:60]!r} is invalid ({exc}); "
                              f"re-train or re-save the model") from None
        if norm.kind != "unit" and norm.mean is None:
            raise ConfigError(f"normalizer state for '{norm.kind}' has no mean/std; "
                              f"re-train or re-save the model")
        return norm

    def __repr__(self) -> str:
        return f"Normalizer({self.kind!r}, fitted={self.fitted})"
