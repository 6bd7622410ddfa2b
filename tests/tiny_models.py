"""Tiny float64 models, random batches and one comparison for the tests that check a split or
parallel loss against the one-pass ``model.loss`` (tests/test_parallel_loss.py,
tests/test_process_parallel.py).

Letters: N = images; the row model reads 7 rows of 6 features, the CNN+RNN 32 x 32 x 3 images;
both have H = 5 hidden units and K = 4 classes.
"""

import numpy as np
import pytest

from core.models import CNNRNN, RowRNN


def tiny_row_rnn(window=None) -> RowRNN:
    return RowRNN(input_dim=6, hidden_dim=5, num_classes=4, bptt_window=window,
                  dtype=np.float64, seed=1)


def tiny_cnn_rnn() -> CNNRNN:
    return CNNRNN(channels=(3, 4), hidden_dim=5, num_classes=4, dtype=np.float64, seed=2)


def assert_same_loss(out, ref):
    """``out`` and ``ref``, two (loss, grads, trace) of one batch with trace='norms', agree to
    float64 rounding: loss, every gradient (same keys, same order), dh_norm, per-image losses,
    probabilities and the BPTT cut."""
    loss, grads, tr = out
    loss1, grads1, tr1 = ref
    assert loss == pytest.approx(loss1, rel=1e-12)
    assert list(grads) == list(grads1)
    for k in grads1:
        np.testing.assert_allclose(grads[k], grads1[k], rtol=1e-10, atol=1e-13, err_msg=k)
    np.testing.assert_allclose(tr.dh_norm, tr1.dh_norm, rtol=1e-12)
    np.testing.assert_allclose(tr.sample_losses, tr1.sample_losses, rtol=1e-12)
    np.testing.assert_allclose(tr.probs, tr1.probs, rtol=1e-12)
    assert tr.bptt_cut == tr1.bptt_cut


def random_batch(model, n: int, seed: int):
    """(X, y): X (N, 7, 6) for the row model or (N, 32, 32, 3) for the CNN+RNN, y (N,)."""
    rng = np.random.default_rng(seed)
    shape = (n, 7, 6) if model.kind == "row-rnn" else (n, 32, 32, 3)
    return rng.standard_normal(shape), rng.integers(0, 4, n)


def gradcheck_model(kind: str, seed: int = 1, num_classes: int = 4, **options):
    """A float64 model small enough for numeric gradients, with non-zero biases: the row model
    reads 7 rows of 6 features (H 5), the CNN+RNN 32 x 32 x 3 images with (2, 3) channels (H 4).
    ``options`` go to the model (cell, activation, bptt_window, sequence, forget_bias ...)."""
    if kind == "row-rnn":
        m = RowRNN(input_dim=6, hidden_dim=5, num_classes=num_classes, dtype=np.float64,
                   seed=seed, **options)
    else:
        m = CNNRNN(channels=(2, 3), hidden_dim=4, num_classes=num_classes, dtype=np.float64,
                   seed=seed, **options)
    rng = np.random.default_rng(seed + 100)
    for p in m.params.values():
        p += 0.1 * rng.standard_normal(p.shape)
    return m


def gradcheck_input(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """n inputs for :func:`gradcheck_model`: (n, 7, 6) row sequences or (n, 32, 32, 3) images."""
    if kind == "row-rnn":
        return rng.standard_normal((n, 7, 6))
    return rng.standard_normal((n, 32, 32, 3))
