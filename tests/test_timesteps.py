"""core.timesteps: the image rows behind each timestep (checked against the real conv stack)
and the per-step backward factor (checked against the model's own BPTT)."""

import numpy as np
import pytest

from core.conv import conv_stack_forward
from core.models import RowRNN
from core.timesteps import (
    CNN_STACK_LAYERS,
    activation_derivative,
    backward_factors,
    receptive_rows,
    step_bands,
)


def test_receptive_field_matches_the_conv_stack():
    """Push one image row up: exactly the feature rows whose receptive field holds it change.

    All weights and inputs positive, so a larger input row always raises what depends on it
    (through ReLU and max-pooling), and no dependence hides behind a pooling winner.
    """
    rng = np.random.default_rng(0)
    R = 32
    x = rng.uniform(0.1, 1.0, (1, R, 8, 2))
    w1 = rng.uniform(0.1, 1.0, (3, 3, 2, 3))
    w2 = rng.uniform(0.1, 1.0, (3, 3, 3, 2))
    b1, b2 = np.zeros(3), np.zeros(2)
    base, _ = conv_stack_forward(x, w1, b1, w2, b2)
    T = base.shape[1]
    for r in range(R):
        bumped = x.copy()
        bumped[:, r] += 50.0
        out, _ = conv_stack_forward(bumped, w1, b1, w2, b2)
        changed = {i for i in range(T) if not np.allclose(out[0, i], base[0, i])}
        expected = {i for i in range(T)
                    if receptive_rows(CNN_STACK_LAYERS, i, R)[0] <= r
                    <= receptive_rows(CNN_STACK_LAYERS, i, R)[1]}
        assert changed == expected, r


def test_step_bands_of_both_models():
    cnn = step_bands("cnn-rnn", 32)
    assert cnn.rows_per_step == 4 and cnn.rows.shape == (8, 2)
    assert tuple(cnn.rows[3]) == (12, 15)
    assert tuple(cnn.seen[3]) == (9, 18)            # 10 rows: 3 above, 3 below the band
    assert tuple(cnn.seen[0]) == (0, 6) and tuple(cnn.seen[7]) == (25, 31)   # clipped
    row = step_bands("row-rnn", 32)
    assert row.rows_per_step == 1 and len(row.rows) == 32
    np.testing.assert_array_equal(row.rows, row.seen)
    np.testing.assert_array_equal(row.rows[:, 0], np.arange(32))


def _trace(activation, bptt_window=None, seed=0):
    net = RowRNN(input_dim=6, hidden_dim=7, num_classes=3, activation=activation,
                 gain=2.0, bptt_window=bptt_window, dtype=np.float64, seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(1, 12, 6))
    _, _, tr = net.loss(X, np.array([1]), trace=True)
    return net, tr


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_backward_factor_is_the_models_own_step(activation):
    net, tr = _trace(activation)
    W = net.params["W_hh"]
    h, dh = tr.hidden[0], tr.dh[0]
    d = activation_derivative(h, activation)
    bf = backward_factors(h, dh, W, activation)
    T = h.shape[0]
    assert np.isnan(bf.measured[0]) and np.isnan(bf.jacobian_sigma[0])
    for t in range(1, T):
        J = np.diag(d[t]) @ W.T
        np.testing.assert_allclose(dh[t] @ J, dh[t - 1], rtol=1e-10, atol=1e-14)
        assert bf.jacobian_sigma[t] == pytest.approx(np.linalg.norm(J, 2), rel=1e-9)
        ratio = np.linalg.norm(dh[t - 1]) / np.linalg.norm(dh[t])
        assert bf.measured[t] == pytest.approx(ratio, rel=1e-12)
        assert bf.measured[t] <= bf.jacobian_sigma[t] * (1 + 1e-9)
    np.testing.assert_allclose(bf.mean_derivative, d.mean(axis=1))
    assert bf.whh_sigma == pytest.approx(np.linalg.norm(W, 2))
    assert bf.spectral_radius == pytest.approx(np.abs(np.linalg.eigvals(W)).max())
    assert bf.mean_measured() == pytest.approx(np.exp(np.log(bf.measured[1:]).mean()))


def test_truncated_steps_have_no_measured_factor():
    net, tr = _trace("tanh", bptt_window=5)
    cut = tr.bptt_cut
    assert cut == 7
    bf = backward_factors(tr.hidden[0], tr.dh[0], net.params["W_hh"], "tanh", cut)
    assert np.isnan(bf.measured[: cut + 1]).all() and np.isfinite(bf.measured[cut + 1:]).all()
    assert np.isfinite(bf.jacobian_sigma[1:]).all()


def test_saturated_tanh_shrinks_the_jacobian_below_w_hh():
    W = 3.0 * np.eye(4)
    h = np.full((5, 4), 0.99)           # tanh' = 1 - 0.99^2 ~ 0.02
    dh = np.ones((5, 4))
    bf = backward_factors(h, dh, W, "tanh")
    assert bf.spectral_radius == pytest.approx(3.0)
    np.testing.assert_allclose(bf.jacobian_sigma[1:], 3.0 * (1 - 0.99 ** 2))
    np.testing.assert_allclose(bf.mean_derivative, 1 - 0.99 ** 2)


def test_step_bands_of_the_position_layout_match_the_conv_stack():
    """sequence='positions': step t is map position (t // 8, t % 8); pushing one image pixel
    up changes exactly the positions whose row and column receptive fields both hold it."""
    bands = step_bands("cnn-rnn", 32, sequence="positions")
    assert bands.sequence == "positions" and bands.rows.shape == bands.cols.shape == (64, 2)
    assert bands.rows_per_step == bands.cols_per_step == 4
    assert tuple(bands.rows[11]) == (4, 7) and tuple(bands.cols[11]) == (12, 15)  # (1, 3)
    assert tuple(bands.seen[11]) == (1, 10) and tuple(bands.seen_cols[11]) == (9, 18)
    rng = np.random.default_rng(1)
    x = rng.uniform(0.1, 1.0, (1, 32, 32, 2))
    w1 = rng.uniform(0.1, 1.0, (3, 3, 2, 3))
    w2 = rng.uniform(0.1, 1.0, (3, 3, 3, 2))
    base, _ = conv_stack_forward(x, w1, np.zeros(3), w2, np.zeros(2))
    for r, c in ((0, 0), (13, 17), (31, 6)):
        bumped = x.copy()
        bumped[0, r, c] += 50.0
        out, _ = conv_stack_forward(bumped, w1, np.zeros(3), w2, np.zeros(2))
        changed = {t for t in range(64)
                   if not np.allclose(out[0, t // 8, t % 8], base[0, t // 8, t % 8])}
        expected = {t for t in range(64)
                    if bands.seen[t, 0] <= r <= bands.seen[t, 1]
                    and bands.seen_cols[t, 0] <= c <= bands.seen_cols[t, 1]}
        assert changed == expected, (r, c)


def test_row_layouts_span_the_whole_width():
    for kind in ("row-rnn", "cnn-rnn"):
        b = step_bands(kind, 32)
        assert b.sequence == "rows" and b.cols_per_step == 32
        assert np.all(b.cols == (0, 31)) and np.all(b.seen_cols == (0, 31))
    with pytest.raises(ValueError, match="positions"):
        step_bands("row-rnn", 32, sequence="positions")
