"""Classification metrics: accuracy, confusion matrix, per-class accuracy, calibration.

Letters: N = number of examples, K = number of classes, B = number of calibration bins.
``probs`` are softmax probabilities ``(N, K)``; ``labels`` are true class indices ``(N,)``.
Confidence of a prediction = its largest probability; the prediction = its argmax.
"""

from __future__ import annotations

import numpy as np

from core.layers import softmax_cross_entropy_terms

ECE_BINS = 15


def accuracy(labels, predictions) -> float:
    """Fraction of ``predictions (N,)`` equal to ``labels (N,)``; NaN when N = 0."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ")
    if labels.size == 0:
        return float("nan")
    return float(np.mean(labels == predictions))


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """Counts ``int64 (K, K)``: entry [i, j] = number of examples of true class i predicted j."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    flat = labels * num_classes + predictions
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def per_class_accuracy(cm) -> np.ndarray:
    """Recall of each class from a confusion matrix ``(K, K)`` -> ``(K,)``; NaN for empty rows."""
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / np.where(totals > 0, totals, 1), np.nan)


def cross_entropy(probs, labels, eps: float = 1e-12) -> float:
    """Mean negative log-probability of the true class; ``probs (N, K)``, ``labels (N,)``.

    log(probs) are logits whose softmax is ``probs`` again, so this is the models' softmax
    cross-entropy (core.layers) of them; a probability below ``eps`` counts as ``eps``.
    """
    logits = np.log(np.maximum(np.asarray(probs, dtype=np.float64), eps))
    labels = np.asarray(labels, dtype=np.int64)
    return float(softmax_cross_entropy_terms(logits, labels)[0].mean())


def reliability_bins(probs, labels, n_bins: int = ECE_BINS) -> dict:
    """Reliability-diagram data with ``n_bins`` equal-width confidence bins over [0, 1].

    A prediction with confidence c goes to bin b with ``edges[b] < c <= edges[b+1]``
    (c = 0 goes to bin 0). Returns a JSON-able dict of lists (length B, edges B+1):
    ``edges``, ``counts``, ``accuracy`` and ``confidence`` (mean per bin, NaN when empty),
    ``ece`` = sum_b (counts_b / N) * |accuracy_b - confidence_b|, and ``n``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"probs {probs.shape} and labels {labels.shape} do not match")
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # searchsorted(side='left') puts c in the bin whose right edge is the first edge >= c.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    sum_conf = np.bincount(which, weights=confidence, minlength=n_bins)
    sum_correct = np.bincount(which, weights=correct, minlength=n_bins)
    nonempty = counts > 0
    safe = np.where(nonempty, counts, 1)
    acc_b = np.where(nonempty, sum_correct / safe, np.nan)
    conf_b = np.where(nonempty, sum_conf / safe, np.nan)
    n = int(labels.shape[0])
    ece = (
        float(np.sum(counts[nonempty] / n * np.abs(acc_b[nonempty] - conf_b[nonempty])))
        if n
        else float("nan")
    )
    return {
        "edges": edges.tolist(),
        "counts": counts.astype(int).tolist(),
        "accuracy": acc_b.tolist(),
        "confidence": conf_b.tolist(),
        "ece": ece,
        "n": n,
    }


def expected_calibration_error(probs, labels, n_bins: int = ECE_BINS) -> float:
    """ECE with ``n_bins`` equal-width bins (see :func:`reliability_bins`)."""
    return reliability_bins(probs, labels, n_bins)["ece"]


def summarize(probs, labels, n_bins: int = ECE_BINS) -> dict:
    """``{'acc', 'loss', 'ece', 'n'}`` for ``probs (N, K)`` against ``labels (N,)``."""
    probs = np.asarray(probs)
    labels = np.asarray(labels)
    return {
        "acc": accuracy(labels, probs.argmax(axis=1)),
        "loss": cross_entropy(probs, labels),
        "ece": expected_calibration_error(probs, labels, n_bins),
        "n": int(labels.shape[0]),
    }
