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
from core.datasets import Normalizer
from core.models import build_model
from core.timesteps import backward_factors, step_bands


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
    return f"{name}, H = {c.get('hidden_dim')}, {c.get('activation')} — {snap.get('label', '')}"


def explorer_trace(cache: ModelCache, snap: dict, image: np.ndarray, label: int, split: str,
                   index: int, class_names: list[str], batch_images=None,
                   batch_labels=None) -> dict:
    """Trace one image (and the batch mean of ||dl/dh_t||) for the explorer.

    image: uint8 (32, 32, 3); batch_images: uint8 (B, 32, 32, 3) or None.
    Returns a dict of plain arrays: hidden (T, H), step_probs (T, K), probs (K,), dh_norm_t (T,)
    = ||dl/dh_t|| of this image, bptt_cut, seq (T, D) for CNN+RNN, clip (ClipRecord dict of
    this image's gradient with the run's clipping settings), batch_dh_norm (T,) or None,
    eigvals (H,) complex of W_hh, loss, dWhh_norm_t (T,) = ||step t's part of dW_hh||,
    rows_per_step, step_rows / seen_rows int (T, 2) = the image rows (0-based inclusive) each
    step is centred on / sees (core.timesteps.step_bands), and the per-step backward factor
    along this image: factor_measured, factor_sigma, mean_derivative (T,), whh_sigma,
    spectral_radius (core.timesteps.backward_factors).
    """
    model, norm = cache.model(snap)
    train = snap.get("train") or {}
    x = model.input_from_images(norm.apply(image[None], dtype=model.dtype))
    y = np.array([int(label)], dtype=np.int64)
    loss, grads, tr = model.loss(x, y, reg=float(train.get("reg", 0.0) or 0.0), trace=True)
    rec = clip_gradients(grads, train.get("clip", "none"), float(train.get("clip_threshold", 5.0)))
    dh_t = np.linalg.norm(np.asarray(tr.dh[0], dtype=np.float64), axis=1)
    batch_dh = None
    if batch_images is not None and len(batch_images):
        xb = model.input_from_images(norm.apply(np.asarray(batch_images), dtype=model.dtype))
        _, _, trb = model.loss(xb, np.asarray(batch_labels, dtype=np.int64), trace="norms")
        batch_dh = np.asarray(trb.dh_norm, dtype=np.float64)
    kind = snap["config"].get("kind")
    bands = step_bands(kind, image.shape[0])
    factors = backward_factors(tr.hidden[0], tr.dh[0], model.params["W_hh"],
                               snap["config"].get("activation", "tanh"), tr.bptt_cut)
    seq = None
    if tr.features is not None and "seq" in tr.features:
        seq = np.asarray(tr.features["seq"][0], dtype=np.float32)
    return {
        "split": split, "index": int(index), "image": np.array(image, copy=True),
        "label": int(label), "class_names": list(class_names),
        "kind": kind, "activation": snap["config"].get("activation"),
        "T": int(tr.hidden.shape[1]), "hidden": np.array(tr.hidden[0], copy=True),
        "step_probs": np.array(tr.step_probs[0], copy=True),
        "probs": np.array(tr.probs[0], dtype=np.float64), "loss": float(tr.sample_losses[0]),
        "dh": np.array(tr.dh[0], copy=True), "dh_norm_t": dh_t, "bptt_cut": tr.bptt_cut,
        "seq": seq, "clip": rec.to_dict(), "batch_dh_norm": batch_dh,
        "eigvals": np.linalg.eigvals(np.asarray(model.params["W_hh"], dtype=np.float64)),
        "step": snap.get("step", 0), "model_text": model_text(snap),
        "dWhh_norm_t": np.asarray(tr.dWhh_norm_t, dtype=np.float64),
        "rows_per_step": bands.rows_per_step, "step_rows": bands.rows, "seen_rows": bands.seen,
        "factor_measured": factors.measured, "factor_sigma": factors.jacobian_sigma,
        "mean_derivative": factors.mean_derivative, "whh_sigma": factors.whh_sigma,
        "spectral_radius": factors.spectral_radius,
        "batch_size": train.get("batch_size"),
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
