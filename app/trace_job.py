"""What the explorer and the vanishing-gradient tab show, computed from a model snapshot.

No Qt here: these functions run on the trace worker's thread. A *snapshot* is plain data that
can cross threads: ``{'config': model.config, 'params': {name: array copy}, 'normalizer':
Normalizer.to_dict(), 'train': TrainConfig.to_dict(), 'step': int, 'label': str}``. All math is
the core's (model.loss with trace=True, core.clipping.clip_gradients); this module only picks
the pieces to show.
"""

from __future__ import annotations

import json

import numpy as np

from core.clipping import clip_gradients
from core.connectivity import connectivity
from core.datasets import Normalizer
from core.gate_stats import gate_stats
from core.models import build_model
from core.names import CELL_KINDS
from core.timesteps import backward_factors, measured_factors, step_bands


def snapshot_of(model, normalizer, train_config: dict | None, step: int, label: str) -> dict:
    """A thread-safe copy of everything needed to rebuild ``model``'s predictions."""
    return {
        "config": dict(model.config),
        "params": {k: np.array(v, copy=True) for k, v in model.params.items()},
        "normalizer": normalizer.to_dict(),
        "train": dict(train_config or {}),
        "step": int(step),
        "label": label,
    }


class ModelCache:
    """Rebuilds models from snapshots, reusing the model object while the config is unchanged."""

    def __init__(self):
        self._key = None
        self._model = None
        self._norm_key = None
        self._norm = None

    def model(self, snap: dict):
        key = json.dumps(snap["config"], sort_keys=True, default=str)
        if key != self._key:
            self._model = build_model(snap["config"])
            self._key = key
        for k, v in snap["params"].items():
            self._model.params[k] = v
        nkey = json.dumps(snap["normalizer"], sort_keys=True, default=str)
        if nkey != self._norm_key:
            self._norm = Normalizer.from_dict(snap["normalizer"])
            self._norm_key = nkey
        return self._model, self._norm


def model_text(snap: dict) -> str:
    c = snap["config"]
    name = "row-RNN" if c.get("kind") == "row-rnn" else "CNN+RNN"
    if c.get("sequence") == "positions":
        name += " over 64 positions"
    cell = c.get("cell", "rnn")
    what = c.get("activation") if cell == "rnn" else CELL_KINDS.get(cell, cell)
    return f"{name}, H = {c.get('hidden_dim')}, {what} — {snap.get('label', '')}"


def _image_rows(a) -> np.ndarray:
    """Image 0 of a batch-major (N, T, H) trace array, as an independent float32 (T, H)."""
    return np.array(a[0], dtype=np.float32, copy=True)


def _mean_norm(a) -> np.ndarray:
    """Mean over the images of ||a[i, t]|| for a batch-major (N, T, H) array -> (T,)."""
    a = np.asarray(a, dtype=np.float64)
    return np.linalg.norm(a, axis=2).mean(axis=0)


def explorer_trace(cache: ModelCache, snap: dict, image: np.ndarray, label: int, split: str,
                   index: int, class_names: list[str], batch_images=None,
                   batch_labels=None) -> dict:
    """Trace one image (and the batch mean of ||dl/dh_t||) for the explorer.

    image: uint8 (32, 32, 3); batch_images: uint8 (B, 32, 32, 3) or None.
    Returns a dict of plain arrays: hidden (T, H), step_probs (T, K), probs (K,), dh_norm_t (T,)
    = ||dl/dh_t|| of this image, bptt_cut, seq (T, D) for CNN+RNN, clip (ClipRecord dict of
    this image's gradient with the run's clipping settings), batch_dh_norm (T,) or None,
    eigvals (H,) complex of W_hh (None for a gated cell, whose W_hh is (H, G*H)), loss,
    dWhh_norm_t (T,) = ||step t's part of dW_hh|| (None unless the trace has it),
    rows_per_step, step_rows / seen_rows / step_cols / seen_cols int (T, 2) = the image rows
    and columns (0-based inclusive) each step is centred on / sees, map_rows / map_cols int
    (T, 2) = the feature-map cells it reads (core.timesteps.step_bands), and the per-step
    backward factor along this image: factor_measured, factor_sigma, mean_derivative (T,),
    whh_sigma, spectral_radius (core.timesteps.backward_factors; for a gated cell only
    factor_measured, the rest NaN).
    Cell keys: cell_type 'rnn' | 'lstm' | 'gru', sequence 'rows' | 'positions', and whatever
    the trace holds of gates {block: (T, H)}, cell (T, H) = c_t, dc (T, H) = dl/dc_t,
    dc_norm_t (T,) = ||dl/dc_t||, batch_dc_norm (T,) and, over the batch, gate_stats
    (core.gate_stats.GateStats.to_dict()).
    connectivity: {'rows' (K, R) = ||d scores[k] / d x_r|| per image row r for every class k
    (through the convolutions for the CNN+RNN), 'log_pixels' float32 (K, R, W) = log10 of the
    same per pixel (-inf where it is 0)} (core.connectivity).
    """
    model, norm = cache.model(snap)
    train = snap.get("train") or {}
    x = model.input_from_images(norm.apply(image[None], dtype=model.dtype))
    y = np.array([int(label)], dtype=np.int64)
    loss, grads, tr = model.loss(x, y, reg=float(train.get("reg", 0.0) or 0.0), trace=True)
    rec = clip_gradients(grads, train.get("clip", "none"), float(train.get("clip_threshold", 5.0)))
    dh_t = np.linalg.norm(np.asarray(tr.dh[0], dtype=np.float64), axis=1)
    cell = snap["config"].get("cell", "rnn")
    gated = cell != "rnn"
    batch_dh = batch_dc = stats = None
    if batch_images is not None and len(batch_images):
        xb = model.input_from_images(norm.apply(np.asarray(batch_images), dtype=model.dtype))
        # a gated cell's batch pass keeps its gates for the saturation statistics
        _, _, trb = model.loss(xb, np.asarray(batch_labels, dtype=np.int64),
                               trace=True if gated else "norms")
        batch_dh = np.asarray(trb.dh_norm, dtype=np.float64)
        if getattr(trb, "dc_norm", None) is not None:
            batch_dc = np.asarray(trb.dc_norm, dtype=np.float64)
        elif trb.dc is not None:
            batch_dc = _mean_norm(trb.dc)
        if gated and trb.gates:
            stats = gate_stats(cell, trb.gates).to_dict()
        del trb
    kind = snap["config"].get("kind")
    sequence = snap["config"].get("sequence", "rows")
    bands = step_bands(kind, image.shape[0], sequence, image.shape[1])
    T = int(tr.hidden.shape[1])
    nan = np.full(T, np.nan)
    factors = None
    if gated:
        measured = measured_factors(tr.dh[0], tr.bptt_cut)
    else:
        factors = backward_factors(tr.hidden[0], tr.dh[0], model.params["W_hh"],
                                   snap["config"].get("activation", "tanh"), tr.bptt_cut)
        measured = factors.measured
    cell_keys = {"cell_type": cell, "sequence": sequence, "gate_stats": stats,
                 "batch_dc_norm": batch_dc}
    if tr.gates:
        cell_keys["gates"] = {k: _image_rows(v) for k, v in tr.gates.items()}
    if tr.cell is not None:
        cell_keys["cell"] = _image_rows(tr.cell)
    if tr.dc is not None:
        cell_keys["dc"] = _image_rows(tr.dc)
        cell_keys["dc_norm_t"] = np.linalg.norm(np.asarray(tr.dc[0], dtype=np.float64), axis=1)
    K = int(np.asarray(tr.probs).shape[1])
    con = connectivity(model, np.repeat(norm.apply(image[None], dtype=model.dtype), K, axis=0),
                       np.arange(K))
    with np.errstate(divide="ignore"):
        log_pixels = np.log10(np.asarray(con["pixels"], dtype=np.float64)).astype(np.float32)
    cell_keys["connectivity"] = {"rows": np.asarray(con["rows"], dtype=np.float64),
                                 "log_pixels": log_pixels}
    seq = None
    if tr.features is not None and "seq" in tr.features:
        seq = np.asarray(tr.features["seq"][0], dtype=np.float32)
    return {
        "split": split, "index": int(index), "image": np.array(image, copy=True),
        "label": int(label), "class_names": list(class_names),
        "kind": kind, "activation": snap["config"].get("activation"),
        "T": T, "hidden": np.array(tr.hidden[0], copy=True),
        "step_probs": np.array(tr.step_probs[0], copy=True),
        "probs": np.array(tr.probs[0], dtype=np.float64), "loss": float(tr.sample_losses[0]),
        "dh": np.array(tr.dh[0], copy=True), "dh_norm_t": dh_t, "bptt_cut": tr.bptt_cut,
        "seq": seq, "clip": rec.to_dict(), "batch_dh_norm": batch_dh,
        "eigvals": None if gated else np.linalg.eigvals(
            np.asarray(model.params["W_hh"], dtype=np.float64)),
        "step": snap.get("step", 0), "model_text": model_text(snap),
        "dWhh_norm_t": (None if tr.dWhh_norm_t is None
                        else np.asarray(tr.dWhh_norm_t, dtype=np.float64)),
        "rows_per_step": bands.rows_per_step, "step_rows": bands.rows, "seen_rows": bands.seen,
        "step_cols": bands.cols, "seen_cols": bands.seen_cols, "map_rows": bands.map_rows,
        "map_cols": bands.map_cols,
        "factor_measured": measured,
        "factor_sigma": nan if gated else factors.jacobian_sigma,
        "mean_derivative": nan if gated else factors.mean_derivative,
        "whh_sigma": float("nan") if gated else factors.whh_sigma,
        "spectral_radius": float("nan") if gated else factors.spectral_radius,
        "batch_size": train.get("batch_size"),
        **cell_keys,
    }


def misclassified(cache: ModelCache, snap: dict, images: np.ndarray, labels: np.ndarray,
                  batch: int = 500) -> np.ndarray:
    """Indices (into ``images``) the snapshot's model gets wrong."""
    model, norm = cache.model(snap)
    wrong = []
    for i in range(0, len(labels), batch):
        x = model.input_from_images(norm.apply(np.asarray(images[i:i + batch]), dtype=model.dtype))
        pred = np.argmax(model.scores(x), axis=1)
        wrong.append(np.flatnonzero(pred != np.asarray(labels[i:i + batch])) + i)
    return np.concatenate(wrong) if wrong else np.zeros(0, np.int64)
