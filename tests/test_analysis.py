"""core.analysis: t-SNE, gallery selection, gradient-through-time matrix, predict."""

import numpy as np
import pytest

from core import analysis


def test_most_confident_mistakes_order_and_limit():
    probs = np.array([
        [0.9, 0.1],   # right
        [0.2, 0.8],   # wrong, conf 0.8
        [0.4, 0.6],   # wrong, conf 0.6
        [0.05, 0.95],  # wrong, conf 0.95
        [0.3, 0.7],   # right (label 1)
    ])
    labels = np.array([0, 0, 0, 0, 1])
    np.testing.assert_array_equal(analysis.most_confident_mistakes(probs, labels, k=2), [3, 1])
    np.testing.assert_array_equal(analysis.most_confident_mistakes(probs, labels), [3, 1, 2])
    assert analysis.most_confident_mistakes(probs[:1], labels[:1]).size == 0


def test_sample_indices_distinct_sorted_reproducible():
    a = analysis.sample_indices(100, 10, seed=3)
    assert len(set(a.tolist())) == 10 and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, analysis.sample_indices(100, 10, seed=3))
    assert len(analysis.sample_indices(5, 10)) == 5


def test_grad_through_time_matrix():
    history = {"dh_norm": [[1, [0.1, 0.2, 0.3]], [5, [0.01, 0.1, 1.0]]]}
    steps, norms = analysis.grad_through_time(history)
    np.testing.assert_array_equal(steps, [1, 5])
    np.testing.assert_allclose(norms, [[0.1, 0.2, 0.3], [0.01, 0.1, 1.0]])
    steps, norms = analysis.grad_through_time({})
    assert steps.shape == (0,) and norms.shape == (0, 0)


def test_tsne_separates_clusters_and_is_reproducible():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, size=(3, 64))
    X = np.concatenate([c + rng.normal(0, 0.5, size=(30, 64)) for c in centres])
    y = np.repeat(np.arange(3), 30)
    emb = analysis.tsne_embedding(X, seed=1, max_iter=500)
    assert emb.shape == (90, 2)
    means = np.array([emb[y == c].mean(axis=0) for c in range(3)])
    spread = max(np.linalg.norm(emb[y == c] - means[c], axis=1).mean() for c in range(3))
    gaps = [np.linalg.norm(means[a] - means[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > 3 * spread
    np.testing.assert_allclose(emb, analysis.tsne_embedding(X, seed=1, max_iter=500))


def test_tsne_small_n_and_bad_shape():
    emb = analysis.tsne_embedding(np.random.default_rng(0).normal(size=(6, 4)), max_iter=250)
    assert emb.shape == (6, 2)
    with pytest.raises(ValueError):
        analysis.tsne_embedding(np.zeros((2, 4)))


def test_predict_matches_model_and_batching():
    from types import SimpleNamespace

    from core.models import RowRNN
    from core.normalize import Normalizer

    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(23, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=23).astype(np.int64)
    split = SimpleNamespace(images=images, labels=labels)
    model = RowRNN(hidden_dim=16, seed=1)
    norm = Normalizer().fit(images)
    whole = analysis.predict(model, norm, split, batch_size=100, hidden=True)
    parts = analysis.predict(model, norm, split, batch_size=4)
    assert whole.probs.shape == (23, 10) and whole.hidden.shape == (23, 16)
    assert parts.hidden is None
    np.testing.assert_allclose(parts.probs, whole.probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(whole.probs.sum(axis=1), 1.0)
    X = model.input_from_images(norm.apply(images))
    tr = model.trace(X, labels)
    np.testing.assert_allclose(whole.hidden, tr.hidden[:, -1, :], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(whole.probs, tr.probs, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(whole.predicted, whole.probs.argmax(axis=1))
    firsts = analysis.predict(model, norm, split, max_images=5)
    assert firsts.probs.shape == (5, 10) and len(firsts.labels) == 5


def _tiny_report_inputs(n=40):
    from core.imageset import ImageSet
    from core.models import RowRNN
    from core.normalize import Normalizer

    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.int64)
    split = ImageSet(images, labels, [f"class {k}" for k in range(10)])
    return RowRNN(hidden_dim=8, seed=2), Normalizer().fit(images), split


def test_predict_reports_progress_and_stops_when_cancelled():
    model, norm, split = _tiny_report_inputs()
    seen = []
    analysis.predict(model, norm, split, batch_size=15, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 40), (15, 40), (30, 40)]
    asked = []
    with pytest.raises(analysis.Cancelled):
        analysis.predict(model, norm, split, batch_size=15,
                         cancelled=lambda: asked.append(1) or len(asked) > 2)
    assert len(asked) == 3      # two batches ran, the third was refused


def test_report_arrays_shapes_and_consistency():
    model, norm, split = _tiny_report_inputs()
    history = {"dh_norm": [[1, [0.1] * 32], [9, [0.2] * 32]]}
    logs = []
    rd = analysis.report_arrays(model, norm, split, history, tsne_points=20, log=logs.append)
    pred = analysis.predict(model, norm, split)
    assert rd["summary"]["acc"] == pytest.approx(np.mean(pred.predicted == split.labels))
    assert rd["confusion"].shape == (10, 10) and rd["confusion"].sum() == 40
    assert rd["tsne"]["embedding"].shape == (20, 2) and len(rd["tsne"]["labels"]) == 20
    wrong = rd["gallery"]
    assert np.all(wrong["predicted"] != wrong["labels"]) and len(wrong["images"]) <= 24
    assert rd["grad_through_time"]["norms"].shape == (2, 32)
    assert logs[0] == "predicting 0 of 40 images ..." and logs[-1].startswith("t-SNE of 20")
    with pytest.raises(analysis.Cancelled):
        analysis.report_arrays(model, norm, split, history, cancelled=lambda: True)
