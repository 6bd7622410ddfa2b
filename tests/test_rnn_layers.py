"""RNN step and whole-sequence layers: gradient checks in float64 and fast-vs-naive agreement,
with and without truncated BPTT."""

import numpy as np
import pytest
from gradcheck import assert_backward_matches, numeric_grad_array, rel_error

from core import naive
from core.errors import ConfigError
from core.rnn_layers import (
    check_activation,
    rnn_backward,
    rnn_backward_tm,
    rnn_forward,
    rnn_forward_tm,
    rnn_step_backward,
    rnn_step_forward,
)

N, T, D, H = 3, 6, 4, 5


def setup(seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, T, D)), rng.standard_normal((N, H)),
            0.5 * rng.standard_normal((D, H)), 0.5 * rng.standard_normal((H, H)),
            0.3 * rng.standard_normal(H), rng)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_step_gradients(activation):
    x, h0, Wx, Wh, b, rng = setup(0)
    xt = x[:, 0]
    assert_backward_matches(lambda *a: rnn_step_forward(*a, activation), rnn_step_backward,
                            (xt, h0, Wx, Wh, b), rng)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_sequence_gradients(activation):
    x, h0, Wx, Wh, b, rng = setup(1)
    assert_backward_matches(lambda *a: rnn_forward(*a, activation), rnn_backward,
                            (x, h0, Wx, Wh, b), rng)


@pytest.mark.parametrize("cut", [1, 4])
def test_truncated_sequence_gradients(cut):
    """Numeric reference: the state before step ``cut`` is a constant from the base params."""
    x, h0, Wx, Wh, b, rng = setup(2)
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    frozen = h[:, cut - 1].copy()
    dh = rng.standard_normal(h.shape)
    dx, dh0, dWx, dWh, db = rnn_backward(dh, cache, bptt_cut=cut)

    def f():
        h_tail, _ = rnn_forward(x[:, cut:], frozen, Wx, Wh, b)
        return h_tail

    dh_tail = dh[:, cut:]
    for g, p in ((dWx, Wx), (dWh, Wh), (db, b)):
        assert rel_error(g, numeric_grad_array(f, p, dh_tail)) < 1e-6
    xs = x[:, cut:].copy()
    num_x = numeric_grad_array(lambda: rnn_forward(xs, frozen, Wx, Wh, b)[0], xs, dh_tail)
    assert rel_error(dx[:, cut:], num_x) < 1e-6
    assert np.all(dx[:, :cut] == 0) and np.all(dh0 == 0)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("cut", [None, 2])
def test_fast_sequence_matches_naive_loop(activation, cut):
    x, h0, Wx, Wh, b, rng = setup(3)
    h, cache = rnn_forward(x, h0, Wx, Wh, b, activation)
    h_n, caches = naive.rnn_forward_naive(x, h0, Wx, Wh, b, activation)
    np.testing.assert_allclose(h, h_n, rtol=1e-12, atol=1e-14)
    dh = rng.standard_normal(h.shape)
    fast = rnn_backward(dh, cache, bptt_cut=cut)
    slow = naive.rnn_backward_naive(dh, caches, bptt_cut=cut)
    for a, s in zip(fast, slow):
        np.testing.assert_allclose(a, s, rtol=1e-11, atol=1e-13)


def test_last_state_only_path_matches_general_path():
    """The models' path (upstream gradient on the last state, zero initial state)."""
    x, _, Wx, Wh, b, rng = setup(4)
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2))
    h, cache = rnn_forward_tm(x_tm, None, Wx, Wh, b)
    h_n, caches = naive.rnn_forward_naive(x, np.zeros((N, H)), Wx, Wh, b)
    np.testing.assert_allclose(h.transpose(1, 0, 2), h_n, rtol=1e-12)
    dlast = rng.standard_normal((N, H))
    up = np.zeros((N, T, H))
    up[:, -1] = dlast
    for cut in (None, 3):
        g = rnn_backward_tm(cache, dh_last=dlast, bptt_cut=cut)
        dx, _, dWx, dWh, db = naive.rnn_backward_naive(up, caches, bptt_cut=cut)
        np.testing.assert_allclose(g.dx.transpose(1, 0, 2), dx, rtol=1e-11, atol=1e-14)
        for a, s in ((g.dWx, dWx), (g.dWh, dWh), (g.db, db)):
            np.testing.assert_allclose(a, s, rtol=1e-11, atol=1e-14)
        assert g.dh0 is None


def test_float32_stays_float32_and_bad_activation_is_rejected():
    x, h0, Wx, Wh, b, _ = setup(5)
    f32 = [a.astype(np.float32) for a in (x, h0, Wx, Wh, b)]
    h, cache = rnn_forward(*f32)
    assert h.dtype == np.float32
    assert all(g.dtype == np.float32 for g in rnn_backward(np.ones_like(h), cache))
    with pytest.raises(ConfigError, match="activation"):
        check_activation("gelu")
