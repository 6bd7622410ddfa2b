"""What the gates of an LSTM or GRU do over a batch: how often each one saturates, and how long
each unit's memory is.

Letters: N = images, T = timesteps, H = hidden units.

Saturation (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and Understanding Recurrent
Networks", fig. 3): for every unit and sigmoid gate, the fraction of (image, step) pairs with
the gate below ``LOW`` (left-saturated: the gate is shut) and above ``HIGH`` (right-saturated:
it is open). A unit near the top-left corner (always open) acts as an integrator, one on the
diagonal's far end switches between the two, one near the origin is never saturated.

Memory length. Along the cell state the LSTM keeps f_t of c_{t-1} every step (c_t = f * c_{t-1}
+ i * g), and the GRU keeps z_t of h_{t-1} (h_t = (1 - z) * n + z * h_{t-1}). A unit that keeps
a constant share k per step forgets with the geometric decay k^s, whose mean lifetime is
1 / (1 - k) steps; with k = the unit's mean keep gate this is its effective memory length (a
single summary: the gate varies with the input). The same factor multiplies the gradient that
flows back along that path, which is why it replaces the vanilla cell's W_hh spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOW, HIGH = 0.1, 0.9
# The sigmoid gates of each gated cell, in their block order (g and n are tanh, not gates).
SIGMOID_GATES = {"lstm": ("i", "f", "o"), "gru": ("z", "r")}
# The gate that decides how much of the old state (and of the gradient through it) is kept.
KEEP_GATE = {"lstm": "f", "gru": "z"}


def saturation(gate: np.ndarray, low: float = LOW, high: float = HIGH):
    """gate: (N, T, H) values in [0, 1] -> (left (H,), right (H,)) float64: per unit the
    fraction of (image, step) pairs with gate < low and with gate > high."""
    g = np.asarray(gate)
    if g.ndim != 3:
        raise ValueError(f"a gate is (N, T, H), got shape {g.shape}")
    n = g.shape[0] * g.shape[1]
    flat = g.reshape(n, g.shape[2])
    left = np.count_nonzero(flat < low, axis=0) / max(n, 1)
    right = np.count_nonzero(flat > high, axis=0) / max(n, 1)
    return left.astype(np.float64), right.astype(np.float64)


def memory_length(keep_mean: np.ndarray) -> np.ndarray:
    """keep_mean: (H,) mean keep gate per unit in [0, 1] -> (H,) 1 / (1 - keep_mean) steps
    (inf where the mean is 1: the unit never forgets)."""
    k = np.asarray(keep_mean, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(k < 1.0, 1.0 / (1.0 - np.minimum(k, 1.0)), np.inf)


@dataclass
class GateStats:
    """One batch's gate statistics (see the module docstring).

    left / right: {gate: (H,)} saturation fractions of each sigmoid gate; keep_gate: 'f' or
    'z'; keep_mean (H,): its mean per unit over every image and step; memory_steps (H,):
    1 / (1 - keep_mean); samples: N * T pairs behind each fraction; low / high: thresholds.
    """

    cell: str
    left: dict
    right: dict
    keep_gate: str
    keep_mean: np.ndarray
    memory_steps: np.ndarray
    samples: int
    low: float = LOW
    high: float = HIGH

    def to_dict(self) -> dict:
        """Plain data (copies) for another thread."""
        return {"cell": self.cell, "left": {k: v.copy() for k, v in self.left.items()},
                "right": {k: v.copy() for k, v in self.right.items()},
                "keep_gate": self.keep_gate, "keep_mean": self.keep_mean.copy(),
                "memory_steps": self.memory_steps.copy(), "samples": int(self.samples),
                "low": float(self.low), "high": float(self.high)}


def gate_stats(cell: str, gates: dict, low: float = LOW, high: float = HIGH) -> GateStats:
    """Saturation and memory lengths of ``gates`` ({block: (N, T, H)}, as in core.trace.Trace)
    of a cell 'lstm' or 'gru'."""
    if cell not in SIGMOID_GATES:
        raise ValueError(f"gate statistics need a gated cell (lstm, gru), got {cell!r}")
    missing = [g for g in SIGMOID_GATES[cell] if g not in gates]
    if missing:
        raise ValueError(f"{cell} trace lacks gate(s) {', '.join(missing)}")
    left, right = {}, {}
    for name in SIGMOID_GATES[cell]:
        left[name], right[name] = saturation(gates[name], low, high)
    keep = np.asarray(gates[KEEP_GATE[cell]])
    keep_mean = keep.reshape(-1, keep.shape[2]).mean(axis=0, dtype=np.float64)
    return GateStats(cell=cell, left=left, right=right, keep_gate=KEEP_GATE[cell],
                     keep_mean=keep_mean, memory_steps=memory_length(keep_mean),
                     samples=int(keep.shape[0] * keep.shape[1]), low=low, high=high)
