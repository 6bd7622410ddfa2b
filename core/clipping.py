"""Gradient clipping: a separate, named step applied to ``grads`` before the optimizer update.

Modes (``threshold`` = c > 0):

- ``'value'``: every element is clipped to [-c, c] (seed 000, c = 5). Changes the direction.
- ``'norm'``:  if the global L2 norm ||g|| over all parameters exceeds c, every gradient is
  multiplied by c / ||g|| (seed 001, c = 5). Keeps the direction.
- ``'none'``:  nothing changes; the record still holds the norms.

``clip_gradients`` modifies the arrays in ``grads`` IN PLACE and returns a :class:`ClipRecord`
saying what it did. Letters: g = the gradient of one parameter (any shape), c = threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.errors import ConfigError
from core.names import CLIP_MODES


@dataclass
class ClipRecord:
    """What one clipping call did.

    norm_before / norm_after: global L2 norm over all gradients before / after clipping.
    fired: True if any gradient element changed.
    per_param: name -> {'norm_before', 'norm_after', 'fraction_clipped'}; fraction_clipped is
      the fraction of the parameter's elements that were changed (value mode: |g| > c; norm
      mode: 1.0 when it fired, 0.0 otherwise; none: 0.0).
    cosine: cosine between the whole gradient before and after (1.0 when a norm is zero).
    """

    mode: str
    threshold: float
    norm_before: float
    norm_after: float
    fired: bool
    per_param: dict[str, dict[str, float]] = field(default_factory=dict)
    cosine: float = 1.0

    def to_dict(self) -> dict:
        """JSON-able copy (plain floats, bools, strings)."""
        return {
            "mode": self.mode,
            "threshold": float(self.threshold),
            "norm_before": float(self.norm_before),
            "norm_after": float(self.norm_after),
            "fired": bool(self.fired),
            "per_param": {k: dict(v) for k, v in self.per_param.items()},
            "cosine": float(self.cosine),
        }


def _sq_norm(g: np.ndarray) -> float:
    """Squared L2 norm of any array, accumulated by BLAS (fast for float32)."""
    v = g.reshape(-1)
    return float(np.dot(v, v))


def _cosine(dot: float, sq_before: float, sq_after: float) -> float:
    if sq_before <= 0.0 or sq_after <= 0.0:
        return 1.0
    if not (math.isfinite(dot) and math.isfinite(sq_before) and math.isfinite(sq_after)):
        return float("nan")
    return float(min(1.0, max(-1.0, dot / math.sqrt(sq_before * sq_after))))


def clip_gradients(grads: dict[str, np.ndarray], mode: str = "none",
                   threshold: float = 5.0) -> ClipRecord:
    """Clip ``grads`` in place; return the :class:`ClipRecord`.

    Inputs: grads: name -> array (any shape); mode: 'value' | 'norm' | 'none';
    threshold: c > 0 (ignored for 'none'). Non-finite gradients are left as they are
    (their norms come out inf/nan so the caller can stop).
    """
    if mode not in CLIP_MODES:
        raise ConfigError(f"clip mode {mode!r} is unknown; use one of {', '.join(CLIP_MODES)}")
    threshold = float(threshold)
    if mode != "none" and not (threshold > 0.0 and math.isfinite(threshold)):
        raise ConfigError(f"clip threshold {threshold} must be a positive number")

    per_param: dict[str, dict[str, float]] = {}
    sq_before = {name: _sq_norm(g) for name, g in grads.items()}
    total_before = sum(sq_before.values())
    norm_before = math.sqrt(total_before) if total_before >= 0 else float("nan")

    if mode == "value":
        c = threshold
        dot = 0.0
        total_after = 0.0
        fired = False
        for name, g in grads.items():
            flat = g.reshape(-1)
            n_clipped = int(np.count_nonzero(np.abs(flat) > c))
            if n_clipped:
                before = flat.copy()
                np.clip(g, -c, c, out=g)
                d = float(np.dot(before, g.reshape(-1)))
                sq_a = _sq_norm(g)
                fired = True
            else:
                d = sq_a = sq_before[name]
            dot += d
            total_after += sq_a
            per_param[name] = {
                "norm_before": math.sqrt(sq_before[name]),
                "norm_after": math.sqrt(sq_a),
                "fraction_clipped": n_clipped / max(1, flat.size),
            }
        return ClipRecord(mode, threshold, norm_before, math.sqrt(total_after), fired,
                          per_param, _cosine(dot, total_before, total_after))

    if mode == "norm":
        fired = bool(norm_before > threshold)  # False for nan; inf fires but stays non-finite
        scale = threshold / norm_before if fired and math.isfinite(norm_before) else 1.0
        total_after = 0.0
        for name, g in grads.items():
            if fired and scale != 1.0:
                g *= g.dtype.type(scale)
                sq_a = _sq_norm(g)
            else:
                sq_a = sq_before[name]
            total_after += sq_a
            per_param[name] = {
                "norm_before": math.sqrt(sq_before[name]),
                "norm_after": math.sqrt(sq_a),
                "fraction_clipped": 1.0 if fired else 0.0,
            }
        norm_after = math.sqrt(total_after) if total_after >= 0 else float("nan")
        cos = 1.0 if math.isfinite(norm_before) else float("nan")
        return ClipRecord(mode, threshold, norm_before, norm_after, fired, per_param, cos)

    for name in grads:
        nb = math.sqrt(sq_before[name])
        per_param[name] = {"norm_before": nb, "norm_after": nb, "fraction_clipped": 0.0}
    cos = 1.0 if math.isfinite(norm_before) else float("nan")
    return ClipRecord(mode, threshold, norm_before, norm_before, False, per_param, cos)
