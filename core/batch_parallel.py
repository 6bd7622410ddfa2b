"""One training step's batch split over threads, combined into exactly the one-pass result.

Letters: N = images in the batch, P = parts (threads), n_p = images in part p, T = timesteps,
K = classes.

``parallel_loss(model, X, y, reg, trace, workers)`` splits the batch into P = min(workers, N)
contiguous parts, runs ``model.loss`` on each part on its own thread (``core.threads``: BLAS
at one thread per part, so P threads use P cores), without regularisation, and combines:

    loss  = sum_p n_p / N * loss_p  + reg / 2 * sum ||W||^2
    grads = sum_p n_p / N * grads_p + reg * W
    trace='norms': dh_norm (T,) = sum_p n_p / N * dh_norm_p   (a mean over samples);
                   sample_losses (N,) and probs (N, K) concatenated in batch order.

Each part's loss and gradients are means over its own n_p images, so the weighted sum is the
mean over all N: the result equals ``model.loss(X, y, reg, trace)`` up to the order of the
floating-point sums (tests/test_parallel_loss.py compares them in float64). The split is
fixed by N and P, so a run is reproducible for a given ``workers``.

``split_bounds`` and ``combine_parts`` are shared with the worker-process split
(``core.process_parallel``), which computes the parts in other processes.

Why: at B = 128 the row-RNN's per-step products (128 x 256 @ 256 x 256) are too small for
two BLAS threads to share well; two threads that each run half the batch on one BLAS thread
keep both cores busy. Full traces (``trace=True``) are for the explainer's few images and are
computed in one pass.
"""

from __future__ import annotations

import numpy as np

from core.models import add_l2
from core.threads import run_parts
from core.trace import Trace


def split_bounds(N: int, parts: int) -> np.ndarray:
    """Part p holds images bounds[p]:bounds[p+1]; int (P+1,), contiguous, sizes differ by <= 1.
    Shared by the thread and the process split, so both cut a batch the same way."""
    return np.linspace(0, N, parts + 1).round().astype(int)


def combine_parts(model, bounds, results, reg: float = 0.0, trace=False):
    """The one-pass result from per-part results (see module doc).

    bounds int (P+1,) from ``split_bounds``; results: P tuples ``model.loss(X_p, y_p, 0.0,
    trace)`` = (loss_p, grads_p) or (loss_p, grads_p, Trace_p), in batch order. The returned
    arrays are new (none aliases an input). Returns what ``model.loss(X, y, reg, trace)`` does.
    """
    N = int(bounds[-1])
    weights = np.diff(bounds) / N
    loss = float(sum(w * r[0] for w, r in zip(weights, results)))
    grads = {}
    for k in model.params:
        g = results[0][1][k] * model.dtype.type(weights[0])
        for w, r in zip(weights[1:], results[1:]):
            g += r[1][k] * model.dtype.type(w)
        grads[k] = g
    loss += add_l2(model.params, grads, reg)
    if not trace:
        return loss, grads
    traces = [r[2] for r in results]
    dh_norm = sum(w * t.dh_norm.astype(np.float64) for w, t in zip(weights, traces))
    tr = Trace(sample_losses=np.concatenate([t.sample_losses for t in traces]),
               probs=np.concatenate([t.probs for t in traces]),
               dh_norm=dh_norm.astype(model.dtype), bptt_cut=traces[0].bptt_cut)
    return loss, grads, tr


def parallel_loss(model, X, y, reg: float = 0.0, trace=False, workers: int = 1):
    """``model.loss(X, y, reg, trace)`` computed over ``workers`` threads (see module doc).

    X: model input with N images first; y int (N,). trace: False or 'norms' (True runs in one
    pass). Returns (loss, grads) or (loss, grads, Trace) like ``model.loss``.
    """
    y = np.asarray(y)
    N = len(y)
    parts = max(1, min(int(workers), N))
    if parts == 1 or trace is True:
        return model.loss(X, y, reg, trace)
    bounds = split_bounds(N, parts)

    def run(p):
        lo, hi = bounds[p], bounds[p + 1]
        return model.loss(X[lo:hi], y[lo:hi], 0.0, trace)

    return combine_parts(model, bounds, run_parts(run, parts), reg, trace)
