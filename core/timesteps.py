"""What one timestep reads, and what one step of backpropagation does to the gradient.

Letters: T = timesteps, H = hidden units, R / S = image rows / columns, L = layers of an
encoder.

Rows per step. The row-RNN reads image row t at step t. The CNN+RNN reads feature-map row t
(``sequence='rows'``), and a feature-map row is computed from more image rows than the 4 its
two 2x2 poolings step over: every 3x3 convolution widens the band by one row on each side, at
the resolution of its input. ``receptive_rows`` walks an encoder's layers back from one output
row to the image rows that can change it (the stack treats columns the same way, so it walks
columns too); ``step_bands`` gives, per timestep, the rows and columns the step is centred on
(its stride band) and the ones it actually sees (its receptive field, clipped to the image).
With ``sequence='positions'`` the CNN+RNN reads the map position by position in raster order
(step t = map row t // C, map column t % C for C map columns): each step's band is a square
patch of the image, not a full-width band of rows.

Backward factor. With the loss on the last state only, BPTT carries the gradient one step back
as (row vectors, as in core/rnn_layers.py)

    dl/dh_{t-1} = dl/dh_t @ J_t,        J_t = diag(act'(a_t)) @ W_hh^T,

so ||dl/dh_{t-1}|| / ||dl/dh_t|| is at most sigma_max(J_t), the largest singular value of the
step's Jacobian. act' <= 1 for tanh and ReLU: saturated units (tanh' near 0, ReLU off) shrink
J_t below what W_hh alone would do. ``backward_factors`` measures both along one trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (kind, kernel, stride, padding) of the CNN+RNN's encoder along the image rows: two blocks of
# conv3x3 (padding 1) -> maxpool2x2, as core.conv.conv_stack_forward computes them.
CNN_STACK_LAYERS = (("conv", 3, 1, 1), ("pool", 2, 2, 0), ("conv", 3, 1, 1), ("pool", 2, 2, 0))

# The encoder between image rows and RNN steps, per model kind (the row-RNN reads rows as they are).
ENCODER_LAYERS = {"row-rnn": (), "cnn-rnn": CNN_STACK_LAYERS}


def receptive_rows(layers, index: int, n_rows: int) -> tuple[int, int]:
    """Image rows (first, last), 0-based inclusive and clipped to the image, that output row
    ``index`` of ``layers`` (a sequence of (kind, kernel, stride, padding)) depends on."""
    first = last = int(index)
    for _kind, kernel, stride, pad in reversed(tuple(layers)):
        first = first * stride - pad
        last = last * stride - pad + kernel - 1
    return max(0, first), min(int(n_rows) - 1, last)


def total_stride(layers) -> int:
    """Image rows between two consecutive output rows of ``layers``."""
    s = 1
    for _kind, _kernel, stride, _pad in layers:
        s *= stride
    return s


@dataclass
class StepBands:
    """Per timestep, 0-based inclusive ranges (first, last), int (T, 2) each: ``rows`` the image
    rows the step is centred on (``rows_per_step`` rows), ``seen`` the rows of its receptive
    field; ``cols`` / ``seen_cols`` the same for the image columns (``cols_per_step`` columns:
    every column when a step reads a whole row); ``map_rows`` / ``map_cols`` the cells of the
    encoder's output (the feature map; the image itself for the row-RNN) that the step reads.
    ``sequence`` is the layout ('rows' or 'positions')."""

    rows_per_step: int
    rows: np.ndarray
    seen: np.ndarray
    cols_per_step: int = 0
    cols: np.ndarray | None = None
    seen_cols: np.ndarray | None = None
    map_rows: np.ndarray | None = None
    map_cols: np.ndarray | None = None
    sequence: str = "rows"


def step_bands(kind: str, n_rows: int = 32, sequence: str = "rows",
               n_cols: int | None = None) -> StepBands:
    """The image rows (and columns) behind each timestep of model ``kind`` ('row-rnn' or
    'cnn-rnn'); ``sequence`` 'rows' (one map row a step) or 'positions' (one map position a
    step, raster order, T = (R / 4) * (S / 4); the CNN+RNN only). ``n_cols`` defaults to
    ``n_rows`` (square images)."""
    layers = ENCODER_LAYERS[kind]
    if sequence not in ("rows", "positions"):
        raise ValueError(f"unknown sequence {sequence!r}")
    if sequence == "positions" and not layers:
        raise ValueError(f"{kind} reads image rows; 'positions' needs an encoder")
    n_cols = int(n_rows) if n_cols is None else int(n_cols)
    per = total_stride(layers)
    map_h, map_w = int(n_rows) // per, n_cols // per
    if sequence == "rows":
        map_r = np.arange(map_h)
        map_c = np.full((map_h, 2), (0, map_w - 1), dtype=np.int64)
    else:
        t = np.arange(map_h * map_w)
        map_r = t // map_w
        map_c = np.stack([t % map_w, t % map_w], axis=1)
    rows = np.stack([map_r * per, map_r * per + per - 1], axis=1).astype(np.int64)
    seen = np.array([receptive_rows(layers, r, n_rows) for r in map_r], dtype=np.int64)
    cols = np.stack([map_c[:, 0] * per, map_c[:, 1] * per + per - 1], axis=1).astype(np.int64)
    seen_cols = np.array([(receptive_rows(layers, a, n_cols)[0],
                           receptive_rows(layers, b, n_cols)[1]) for a, b in map_c],
                         dtype=np.int64).reshape(-1, 2)
    return StepBands(rows_per_step=per, rows=rows, seen=seen,
                     cols_per_step=n_cols if sequence == "rows" else per, cols=cols,
                     seen_cols=seen_cols,
                     map_rows=np.stack([map_r, map_r], axis=1).astype(np.int64),
                     map_cols=map_c.astype(np.int64), sequence=sequence)


def activation_derivative(hidden: np.ndarray, activation: str) -> np.ndarray:
    """act'(a_t) from the states h_t = act(a_t) themselves: 1 - h^2 (tanh), h > 0 (ReLU).

    hidden: (T, H) -> float64 (T, H).
    """
    h = np.asarray(hidden, dtype=np.float64)
    if activation == "tanh":
        return 1.0 - h * h
    if activation == "relu":
        return (h > 0).astype(np.float64)
    raise ValueError(f"unknown activation {activation!r}")


@dataclass
class BackwardFactors:
    """One image's backward pass, step by step (index t = the step from h_t back to h_{t-1};
    entries for t = 0, and where truncated BPTT carries no gradient, are NaN).

    measured (T,): ||dl/dh_{t-1}|| / ||dl/dh_t|| as BPTT computed it.
    jacobian_sigma (T,): largest singular value of J_t = diag(act'(a_t)) W_hh^T.
    mean_derivative (T,): mean over units of act'(a_t) (1 = no saturation; defined for every t).
    whh_sigma: largest singular value of W_hh (the bound without saturation).
    spectral_radius: max |eigenvalue| of W_hh (the long-run rate of W_hh^T alone).
    """

    measured: np.ndarray
    jacobian_sigma: np.ndarray
    mean_derivative: np.ndarray
    whh_sigma: float
    spectral_radius: float

    def mean_measured(self) -> float:
        """Geometric mean of the measured factors (NaN when there is none)."""
        m = self.measured[np.isfinite(self.measured) & (self.measured > 0)]
        return float(np.exp(np.log(m).mean())) if m.size else float("nan")

    def mean_jacobian_sigma(self) -> float:
        """Geometric mean of sigma_max(J_t) over the steps with a measured factor."""
        ok = np.isfinite(self.measured) & (self.jacobian_sigma > 0)
        s = self.jacobian_sigma[ok]
        return float(np.exp(np.log(s).mean())) if s.size else float("nan")


def measured_factors(dh: np.ndarray, bptt_cut: int | None = None) -> np.ndarray:
    """||dl/dh_{t-1}|| / ||dl/dh_t|| per backward step, for any cell.

    dh: (T, H) dl/dh_t of one pass (zeros before the cut) -> float64 (T,), index t = the step
    from h_t back to h_{t-1}; NaN for t = 0, before the cut and where ||dl/dh_t|| = 0.
    """
    norms = np.linalg.norm(np.asarray(dh, dtype=np.float64), axis=1)
    T = len(norms)
    measured = np.full(T, np.nan)
    first = max(int(bptt_cut or 0) + 1, 1)
    ok = np.arange(T) >= first
    ok &= norms > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.r_[np.nan, norms[:-1] / norms[1:]] if T else np.zeros(0)
    measured[ok] = ratio[ok]
    return measured


def backward_factors(hidden: np.ndarray, dh: np.ndarray, W_hh: np.ndarray, activation: str,
                     bptt_cut: int | None = None) -> BackwardFactors:
    """Measure the per-step backward factor along one trajectory.

    hidden: (T, H) states h_t; dh: (T, H) dl/dh_t of the same pass (zeros before the cut);
    W_hh: (H, H); bptt_cut: leading timesteps without gradient (None or 0 = full BPTT).
    sigma_max(J_t)^2 is the largest eigenvalue of J_t J_t^T = D_t (W_hh^T W_hh) D_t.
    """
    h = np.asarray(hidden, dtype=np.float64)
    g = np.asarray(dh, dtype=np.float64)
    W = np.asarray(W_hh, dtype=np.float64)
    T = h.shape[0]
    d = activation_derivative(h, activation)
    gram = W.T @ W
    sigma = np.full(T, np.nan)
    if T > 1:
        JJt = d[1:, :, None] * gram[None] * d[1:, None, :]
        sigma[1:] = np.sqrt(np.maximum(np.linalg.eigvalsh(JJt)[:, -1], 0.0))
    measured = measured_factors(g, bptt_cut)
    whh_sigma = float(np.sqrt(max(np.linalg.eigvalsh(gram)[-1], 0.0))) if W.size else 0.0
    rho = float(np.abs(np.linalg.eigvals(W)).max()) if W.size else 0.0
    return BackwardFactors(measured=measured, jacobian_sigma=sigma,
                           mean_derivative=d.mean(axis=1), whh_sigma=whh_sigma,
                           spectral_radius=rho)
