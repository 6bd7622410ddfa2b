"""Post-training analysis: predictions, hidden-state t-SNE, galleries, gradient through time.

Letters: N = number of images, K = number of classes, H = hidden size, T = timesteps,
S = number of recorded training steps, k = number of images picked for a gallery.
scikit-learn is imported lazily (only :func:`tsne_embedding` needs it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError
from core.layers import softmax


@dataclass
class Prediction:
    """Model outputs on an image set.

    probs: float64 (N, K) softmax probabilities; labels: int64 (N,) true classes;
    hidden: float32 (N, H) final hidden state h_T, or None when not asked for.
    """

    probs: np.ndarray
    labels: np.ndarray
    hidden: np.ndarray | None = None

    @property
    def predicted(self) -> np.ndarray:
        """int64 (N,) argmax class."""
        return self.probs.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        """float64 (N,) probability of the predicted class."""
        return self.probs.max(axis=1)


class Cancelled(Exception):
    """``cancelled()`` said yes between two batches of a long computation (not a user error)."""


def predict(model, normalizer, imageset, batch_size: int = 500, hidden: bool = False,
            max_images: int | None = None, progress=None, cancelled=None) -> Prediction:
    """Run ``model`` over ``imageset`` (uint8 images, normalised here with ``normalizer``).

    hidden=True also returns the final hidden state h_T of every image (forward only via
    ``model.scores_and_hidden``; models without it fall back to the traced pass).
    ``max_images`` keeps the first images. Before each batch ``progress(done, total)`` is
    called and ``cancelled()`` checked (True raises :class:`Cancelled`).
    """
    images = imageset.images
    labels = np.asarray(imageset.labels, dtype=np.int64)
    n = len(labels) if max_images is None else min(len(labels), int(max_images))
    probs_parts, hidden_parts = [], []
    for start in range(0, n, batch_size):
        if cancelled is not None and cancelled():
            raise Cancelled()
        if progress is not None:
            progress(start, n)
        stop = min(n, start + batch_size)
        x = normalizer.apply(np.asarray(images[start:stop]))
        X = model.input_from_images(x)
        if hidden and hasattr(model, "scores_and_hidden"):
            scores, h_last = model.scores_and_hidden(X)
            probs_parts.append(softmax(np.asarray(scores, dtype=np.float64)))
            hidden_parts.append(np.asarray(h_last, dtype=np.float32))
        elif hidden:
            tr = model.trace(X, labels[start:stop])
            probs_parts.append(np.asarray(tr.probs, dtype=np.float64))
            hidden_parts.append(np.asarray(tr.hidden[:, -1, :], dtype=np.float32))
        else:
            probs_parts.append(softmax(np.asarray(model.scores(X), dtype=np.float64)))
    K = model.params["b_q"].shape[0]
    probs = np.concatenate(probs_parts) if probs_parts else np.zeros((0, K))
    h = np.concatenate(hidden_parts) if hidden else None
    return Prediction(probs=probs, labels=labels[:n].copy(), hidden=h)


def tsne_embedding(hidden, seed: int = 0, perplexity: float = 30.0, max_iter: int = 1000,
                   pca_dims: int = 50) -> np.ndarray:
    """2-D t-SNE of hidden states ``(N, H)`` -> float (N, 2), reproducible for a seed.

    States are first reduced to ``pca_dims`` with PCA (the usual t-SNE preprocessing).
    Perplexity is lowered for small N, since scikit-learn needs perplexity < N.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    X = np.asarray(hidden, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 3:
        raise ValueError(f"t-SNE needs at least 3 points of shape (N, H), got {X.shape}")
    n, d = X.shape
    if d > pca_dims and n > pca_dims:
        X = PCA(n_components=pca_dims, random_state=seed).fit_transform(X)
    perp = float(min(perplexity, max(1.0, (n - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perp, max_iter=max_iter, init="pca",
                learning_rate="auto", random_state=seed)
    return tsne.fit_transform(X)


def most_confident_mistakes(probs, labels, k: int = 16) -> np.ndarray:
    """Indices ``(<= k,)`` of misclassified examples, most confident first."""
    probs = np.asarray(probs)
    labels = np.asarray(labels)
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    wrong = np.flatnonzero(pred != labels)
    order = np.argsort(-conf[wrong], kind="stable")
    return wrong[order][:k]


def sample_indices(n_total: int, k: int, seed: int = 0) -> np.ndarray:
    """``min(k, n_total)`` distinct indices drawn with a seeded RNG, sorted.

    ConfigError (one line) when ``k`` is negative or not a whole number, e.g. a bad
    ``--tsne-points``; 0 gives an empty selection.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ConfigError(f"cannot pick {k!r} images; give a whole number >= 0 "
                          "(e.g. --tsne-points 1000)")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=min(k, n_total), replace=False))


def grad_through_time(history: dict) -> tuple[np.ndarray, np.ndarray]:
    """Gradient-through-time matrix from ``history['dh_norm']``.

    Returns ``steps`` int64 (S,) and ``norms`` float64 (S, T): row s is the mean per-sample
    norm ||dL/dh_t|| at each timestep t (t = 0 the first row read) at training step steps[s].
    Empty history -> shapes (0,) and (0, 0).
    """
    records = history.get("dh_norm") or []
    if not records:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0))
    steps = np.array([int(r[0]) for r in records], dtype=np.int64)
    norms = np.array([np.asarray(r[1], dtype=np.float64) for r in records])
    return steps, norms


def report_arrays(model, normalizer, imageset, history: dict | None, tsne_points: int = 1000,
                  seed: int = 0, log=None, cancelled=None) -> dict:
    """Everything the report figures need for ``imageset``, as plain arrays and dicts.

    Keys: class_names, history, summary (core.metrics.summarize), per_class_accuracy,
    confusion (K, K), reliability, tsne {embedding (P, 2), labels (P,)}, gallery (the most
    confident mistakes) and grid (a sample) {images, labels, predicted[, confidence]},
    grad_through_time {steps (S,), norms (S, T)}. Used by ``python main.py report`` (for a
    checkpoint) and the app's Reports tab (for the current model). ``log(text)`` reports
    progress; ``cancelled()`` is checked between batches and raises :class:`Cancelled`.
    """
    from core import metrics

    names = list(imageset.class_names)
    n = len(imageset)

    def progress(done, total):
        if log and done % 2000 == 0:
            log(f"predicting {done:,} of {total:,} images ...")

    pred = predict(model, normalizer, imageset, hidden=True, progress=progress,
                   cancelled=cancelled)
    cm = metrics.confusion_matrix(pred.labels, pred.predicted, len(names))
    pick = sample_indices(n, tsne_points, seed=seed)
    if len(pick) < 3:  # t-SNE needs 3 points; fewer make no plot (and no labels without points)
        pick = pick[:0]
    if cancelled is not None and cancelled():
        raise Cancelled()
    if log:
        log(f"t-SNE of {len(pick)} final hidden states ...")
    embedding = tsne_embedding(pred.hidden[pick], seed=seed) if len(pick) else np.zeros((0, 2))
    wrong = most_confident_mistakes(pred.probs, pred.labels, k=24)
    grid = sample_indices(n, 32, seed=seed + 1)
    steps, norms = grad_through_time(history or {})
    return {
        "class_names": names, "history": history or {},
        "summary": metrics.summarize(pred.probs, pred.labels),
        "per_class_accuracy": metrics.per_class_accuracy(cm).tolist(),
        "confusion": cm, "reliability": metrics.reliability_bins(pred.probs, pred.labels),
        "tsne": {"embedding": embedding, "labels": pred.labels[pick]},
        "gallery": {"images": np.asarray(imageset.images[wrong]), "labels": pred.labels[wrong],
                    "predicted": pred.predicted[wrong], "confidence": pred.confidence[wrong]},
        "grid": {"images": np.asarray(imageset.images[grid]), "labels": pred.labels[grid],
                 "predicted": pred.predicted[grid]},
        "grad_through_time": {"steps": steps, "norms": norms},
    }
