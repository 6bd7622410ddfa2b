"""The batch-parallel loss against the one-pass model.loss (its twin), in float64."""

import numpy as np
import pytest

from core import conv
from core.batch_parallel import parallel_loss
from core.models import RowRNN
from tests.tiny_models import assert_same_loss, random_batch, tiny_cnn_rnn, tiny_row_rnn


@pytest.mark.parametrize("make, n, workers", [
    (tiny_row_rnn, 10, 2), (tiny_row_rnn, 7, 3), (lambda: tiny_row_rnn(window=3), 9, 2),
    (tiny_cnn_rnn, 6, 2), (tiny_cnn_rnn, 5, 3),
])
@pytest.mark.parametrize("reg", [0.0, 0.3])
def test_parallel_loss_equals_one_pass(make, n, workers, reg):
    model = make()
    X, y = random_batch(model, n, seed=n + workers)
    ref = model.loss(X, y, reg, trace="norms")
    loss, grads, tr = parallel_loss(model, X, y, reg, trace="norms", workers=workers)
    assert_same_loss((loss, grads, tr), ref)
    assert list(grads) == list(model.params)
    loss2, grads2 = parallel_loss(model, X, y, reg, workers=workers)
    assert loss2 == loss and all(np.array_equal(grads2[k], grads[k]) for k in grads)


def test_more_workers_than_images_and_full_traces_run_in_one_pass():
    model = tiny_row_rnn()
    X, y = random_batch(model, 2, seed=3)
    loss1, grads1 = model.loss(X, y, 0.1)
    loss, grads = parallel_loss(model, X, y, 0.1, workers=5)  # two parts of one image
    assert loss == pytest.approx(loss1, rel=1e-12)
    full = parallel_loss(model, X, y, 0.0, trace=True, workers=2)[2]
    assert full.hidden is not None and full.hidden.shape == (2, 7, 5)


def test_conv_workers_inside_a_batch_part_run_serially():
    model = tiny_cnn_rnn()
    X, y = random_batch(model, 8, seed=4)
    ref_loss, ref = model.loss(X, y)
    try:
        conv.set_conv_workers(2)
        loss, grads = parallel_loss(model, X, y, workers=2)
    finally:
        conv.set_conv_workers(1)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in ref:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-10, atol=1e-13)


def test_float32_gradients_keep_their_dtype():
    model = RowRNN(input_dim=6, hidden_dim=5, num_classes=4, seed=1)
    X, y = random_batch(model, 8, seed=5)
    loss, grads, tr = parallel_loss(model, X.astype(np.float32), y, 0.01, "norms", workers=2)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert tr.dh_norm.dtype == np.float32
