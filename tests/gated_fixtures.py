"""Gated cells for the app's tests while the models may not offer them yet.

``gated_cells(monkeypatch)`` registers 'lstm' and 'gru' in core.cells.CELLS from their layer
modules (core/lstm_layers.py, core/gru_layers.py) unless the registry already has them, so a
RowRNN / CNNRNN with ``cell='lstm'`` runs the real layers, and ``model.loss(trace=True)``
returns the gates, c_t and dl_i/dc_t (per image, like ``dh``) that the app draws.
"""

from __future__ import annotations

import numpy as np

from core import cells, gru_layers, init, lstm_layers


def _lstm_trace(cache, grads):
    out = lstm_layers.lstm_trace(cache, grads)
    # the layer's dc is the gradient of the batch-mean loss; a Trace holds each image's own
    out["dc"] = out["dc"] * cache["x"].shape[1]
    return out


def _drop(fn, *names):
    def call(*args, **kw):
        for n in names:
            kw.pop(n, None)
        return fn(*args, **kw)
    return call


def gated_cells(monkeypatch):
    reg = cells._cells()
    if "lstm" not in reg:
        monkeypatch.setitem(reg, "lstm", cells.Cell(
            name="lstm", blocks=lstm_layers.BLOCKS,
            forward=_drop(lstm_layers.lstm_forward_tm, "activation"),
            backward=lstm_layers.lstm_backward_tm,
            init=_drop(init.lstm_params, "activation"), trace=_lstm_trace))
    if "gru" not in reg:
        monkeypatch.setitem(reg, "gru", cells.Cell(
            name="gru", blocks=gru_layers.BLOCKS,
            forward=_drop(gru_layers.gru_forward_tm, "activation"),
            backward=gru_layers.gru_backward_tm,
            init=_drop(init.gru_params, "activation"), trace=gru_layers.gru_trace))


def gated_snapshot(cell: str, kind: str = "row-rnn", hidden: int = 12, seed: int = 0) -> dict:
    """A snapshot (app/trace_job.py) of an untrained model with ``cell``; call
    ``gated_cells(monkeypatch)`` first."""
    from app.trace_job import snapshot_of
    from core.datasets import Normalizer
    from core.models import CNNRNN, RowRNN

    model = (RowRNN(hidden_dim=hidden, cell=cell, seed=seed) if kind == "row-rnn" else
             CNNRNN(channels=(4, 6), hidden_dim=hidden, cell=cell, seed=seed))
    rng = np.random.default_rng(seed)
    norm = Normalizer("per-channel").fit(rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8))
    return snapshot_of(model, norm, {"clip": "norm", "clip_threshold": 5.0, "batch_size": 8},
                       0, f"random {cell}")


def images(n: int, seed: int = 1):
    """n random uint8 images (N, 32, 32, 3) and labels (N,)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.int64))
