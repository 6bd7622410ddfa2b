"""Tiny float64 models and random batches for the tests that compare a split or parallel loss
with the one-pass ``model.loss`` (tests/test_parallel_loss.py, tests/test_process_parallel.py).

Letters: N = images; the row model reads 7 rows of 6 features, the CNN+RNN 32 x 32 x 3 images;
both have H = 5 hidden units and K = 4 classes.
"""

import numpy as np

from core.models import CNNRNN, RowRNN


def tiny_row_rnn(window=None) -> RowRNN:
    return RowRNN(input_dim=6, hidden_dim=5, num_classes=4, bptt_window=window,
                  dtype=np.float64, seed=1)


def tiny_cnn_rnn() -> CNNRNN:
    return CNNRNN(channels=(3, 4), hidden_dim=5, num_classes=4, dtype=np.float64, seed=2)


def random_batch(model, n: int, seed: int):
    """(X, y): X (N, 7, 6) for the row model or (N, 32, 32, 3) for the CNN+RNN, y (N,)."""
    rng = np.random.default_rng(seed)
    shape = (n, 7, 6) if model.kind == "row-rnn" else (n, 32, 32, 3)
    return rng.standard_normal(shape), rng.integers(0, 4, n)
