"""LSTM step and whole-sequence layers: gradient checks in float64 (step, sequence, truncated,
and the per-step totals dL/dh_t, dL/dc_t), fast-vs-naive agreement, trace, init, float32."""

import warnings

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error
from sequence_checks import H, N, T, batch_major_upstream, gated_inputs, seq_loss, upstream

from core import naive
from core.errors import ConfigError
from core.init import lstm_params
from core.lstm_layers import (
    lstm_backward_tm,
    lstm_forward_tm,
    lstm_step_backward,
    lstm_step_forward,
    lstm_trace,
    sigmoid,
)


def setup(seed):
    return gated_inputs(seed, gates=4, cell_state=True)


def test_sigmoid_is_exact_and_silent_for_large_inputs():
    a = np.linspace(-30, 30, 121)
    np.testing.assert_allclose(sigmoid(a), 1 / (1 + np.exp(-a)), rtol=1e-12, atol=1e-16)
    for dtype in (np.float32, np.float64):
        big = np.array([-1e30, -1e4, -100, 0, 100, 1e4, 1e30], dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(all="raise"):
                s = sigmoid(big)
        assert s.dtype == dtype
        np.testing.assert_array_equal(s, np.array([0, 0, 0, 0.5, 1, 1, 1], dtype=dtype))


def test_step_gradients():
    x, h0, c0, Wx, Wh, b, rng = setup(0)
    xt = x[0]
    h, c, cache = lstm_step_forward(xt, h0, c0, Wx, Wh, b)
    dh, dc = rng.standard_normal(h.shape), rng.standard_normal(c.shape)
    grads = lstm_step_backward(dh, dc, cache)

    def f():
        h_, c_, _ = lstm_step_forward(xt, h0, c0, Wx, Wh, b)
        return np.sum(h_ * dh) + np.sum(c_ * dc)

    for g, p in zip(grads, (xt, h0, c0, Wx, Wh, b)):
        assert rel_error(g, numeric_grad(f, p)) < 1e-6


@pytest.mark.parametrize("kind", ["up", "last"])
def test_sequence_gradients(kind):
    x, h0, c0, Wx, Wh, b, rng = setup(1)
    dh_up, dh_last = upstream(kind, rng)
    _, cache = lstm_forward_tm(x, h0, Wx, Wh, b, c0=c0)
    g = lstm_backward_tm(cache, dh_up=dh_up, dh_last=dh_last)
    assert g.cut == 0
    f = lambda: seq_loss(lstm_forward_tm(x, h0, Wx, Wh, b, c0=c0)[0], dh_up, dh_last)  # noqa: E731
    for mine, p in ((g.dx, x), (g.dh0, h0), (g.extra["dc0"], c0), (g.dWx, Wx),
                    (g.dWh, Wh), (g.db, b)):
        assert rel_error(mine, numeric_grad(f, p)) < 1e-6


def test_sequence_gradients_from_zero_state():
    """h0 = c0 = None (the models' case): zero initial states, no dh0 / dc0."""
    x, _, _, Wx, Wh, b, rng = setup(2)
    dh_last = rng.standard_normal((N, H))
    _, cache = lstm_forward_tm(x, None, Wx, Wh, b)
    g = lstm_backward_tm(cache, dh_last=dh_last)
    assert g.dh0 is None and g.extra["dc0"] is None
    f = lambda: seq_loss(lstm_forward_tm(x, None, Wx, Wh, b)[0], None, dh_last)  # noqa: E731
    for mine, p in ((g.dx, x), (g.dWx, Wx), (g.dWh, Wh), (g.db, b)):
        assert rel_error(mine, numeric_grad(f, p)) < 1e-6


@pytest.mark.parametrize("kind", ["up", "last"])
@pytest.mark.parametrize("cut", [1, 4])
def test_truncated_sequence_gradients(cut, kind):
    """Numeric reference: the states before step ``cut`` are constants from the base params."""
    # (a seed whose smallest dWh entry is far above the centred difference's round-off)
    x, h0, c0, Wx, Wh, b, rng = setup(13)
    dh_up, dh_last = upstream(kind, rng)
    h, cache = lstm_forward_tm(x, h0, Wx, Wh, b, c0=c0)
    frozen_h, frozen_c = h[cut - 1].copy(), cache["c"][cut - 1].copy()
    g = lstm_backward_tm(cache, dh_up=dh_up, dh_last=dh_last, bptt_cut=cut)
    assert g.cut == cut
    up_tail = None if dh_up is None else dh_up[cut:]
    xs = x[cut:].copy()

    def f():
        h_tail, _ = lstm_forward_tm(xs, frozen_h, Wx, Wh, b, c0=frozen_c)
        return seq_loss(h_tail, up_tail, dh_last)

    for mine, p in ((g.dWx, Wx), (g.dWh, Wh), (g.db, b)):
        assert rel_error(mine, numeric_grad(f, p)) < 1e-6
    assert rel_error(g.dx[cut:], numeric_grad(f, xs)) < 1e-6
    assert np.all(g.dx[:cut] == 0) and np.all(g.dh[:cut] == 0)
    assert np.all(g.extra["dc"][:cut] == 0)
    assert g.dh0 is None and g.extra["dc0"] is None


def unrolled_loss(x, h0, c0, Wx, Wh, b, dh_up, at, delta_h, delta_c):
    """The loss sum_t <h_t, dh_up[t]> of an LSTM written out gate by gate (not via the layer
    functions), with ``delta_c`` added to c_at before h_at is formed and ``delta_h`` to h_at."""
    prev_h, prev_c = h0, c0
    loss = 0.0
    for t in range(x.shape[0]):
        a = x[t] @ Wx + prev_h @ Wh + b
        i, f, o = (1 / (1 + np.exp(-a[:, k * H : (k + 1) * H])) for k in range(3))
        gg = np.tanh(a[:, 3 * H :])
        c = f * prev_c + i * gg
        if t == at:
            c = c + delta_c
        h = o * np.tanh(c)
        if t == at:
            h = h + delta_h
        loss += np.sum(h * dh_up[t])
        prev_h, prev_c = h, c
    return loss


@pytest.mark.parametrize("cut", [None, 3])
def test_dh_and_dc_are_the_total_state_gradients(cut):
    """grads.dh[t] = dL/dh_t and extra['dc'][t] = dL/dc_t through every later path, checked by
    perturbing the state at step t inside an unrolled forward; 0 before the cut."""
    x, h0, c0, Wx, Wh, b, rng = setup(4)
    dh_up = rng.standard_normal((T, N, H))
    _, cache = lstm_forward_tm(x, h0, Wx, Wh, b, c0=c0)
    g = lstm_backward_tm(cache, dh_up=dh_up, bptt_cut=cut)
    first = cut or 0
    for t in range(T):
        delta_h, delta_c = np.zeros((N, H)), np.zeros((N, H))
        f = lambda: unrolled_loss(x, h0, c0, Wx, Wh, b, dh_up, t, delta_h, delta_c)  # noqa: E731,B023
        if t < first:
            assert np.all(g.dh[t] == 0) and np.all(g.extra["dc"][t] == 0)
            continue
        assert rel_error(g.dh[t], numeric_grad(f, delta_h)) < 1e-6
        assert rel_error(g.extra["dc"][t], numeric_grad(f, delta_c)) < 1e-6


@pytest.mark.parametrize("kind", ["up", "last"])
@pytest.mark.parametrize("cut", [None, 2])
def test_fast_sequence_matches_naive_loop(cut, kind):
    x, h0, c0, Wx, Wh, b, rng = setup(5)
    dh_up, dh_last = upstream(kind, rng)
    h, cache = lstm_forward_tm(x, h0, Wx, Wh, b, c0=c0)
    x_bm = x.transpose(1, 0, 2)
    h_n, c_n, caches = naive.lstm_forward_naive(x_bm, h0, Wx, Wh, b, c0=c0)
    np.testing.assert_allclose(h.transpose(1, 0, 2), h_n, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cache["c"].transpose(1, 0, 2), c_n, rtol=1e-12, atol=1e-14)
    up = batch_major_upstream(dh_up, dh_last)
    g = lstm_backward_tm(cache, dh_up=dh_up, dh_last=dh_last, bptt_cut=cut)
    dx, dh0, dc0, dWx, dWh, db, dh_tot, dc_tot = naive.lstm_backward_naive(up, caches, cut)
    fast = [g.dx.transpose(1, 0, 2), g.dWx, g.dWh, g.db, g.dh.transpose(1, 0, 2),
            g.extra["dc"].transpose(1, 0, 2)]
    for a, s in zip(fast, (dx, dWx, dWh, db, dh_tot, dc_tot)):
        np.testing.assert_allclose(a, s, rtol=1e-11, atol=1e-13)
    if cut is None:
        np.testing.assert_allclose(g.dh0, dh0, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(g.extra["dc0"], dc0, rtol=1e-11, atol=1e-13)
    else:
        assert g.dh0 is None and np.all(dh0 == 0)


def test_trace_is_batch_major_gates_cell_and_dc():
    x, _, _, Wx, Wh, b, rng = setup(6)
    h, cache = lstm_forward_tm(x, None, Wx, Wh, b)
    g = lstm_backward_tm(cache, dh_last=rng.standard_normal((N, H)))
    tr = lstm_trace(cache, g)
    _, c_n, caches = naive.lstm_forward_naive(x.transpose(1, 0, 2), None, Wx, Wh, b)
    for k, name in enumerate("ifog"):
        gate = tr["gates"][name]
        assert gate.shape == (N, T, H) and gate.flags.c_contiguous
        expect = np.stack([caches[t][5 + k] for t in range(T)], axis=1)
        np.testing.assert_allclose(gate, expect, rtol=1e-12)
    np.testing.assert_allclose(tr["cell"], c_n, rtol=1e-12)
    np.testing.assert_array_equal(tr["dc"], g.extra["dc"].transpose(1, 0, 2))
    # h_t = o * tanh(c_t), read from the trace
    np.testing.assert_allclose(tr["gates"]["o"] * np.tanh(tr["cell"]), h.transpose(1, 0, 2),
                               rtol=1e-12)


def test_float32_stays_float32_without_warnings_when_saturated():
    x, h0, c0, Wx, Wh, b, rng = setup(7)
    f32 = [np.asarray(a, dtype=np.float32) for a in (x, h0, Wx, 40 * Wh, 40 * b)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            h, cache = lstm_forward_tm(*f32, c0=c0.astype(np.float32))
            g = lstm_backward_tm(cache, dh_last=np.ones((N, H), np.float32), need_dx=False)
    assert h.dtype == np.float32 and g.dx is None
    assert all(a.dtype == np.float32 for a in (g.dWx, g.dWh, g.db, g.dh, g.extra["dc"]))
    assert np.all(np.isfinite(g.dWh)) and np.all(np.abs(h) <= 1)


def test_backward_needs_an_upstream_gradient():
    x, h0, c0, Wx, Wh, b, _ = setup(8)
    _, cache = lstm_forward_tm(x, h0, Wx, Wh, b)
    with pytest.raises(ValueError, match="dh_up"):
        lstm_backward_tm(cache)


@pytest.mark.parametrize("init", ["xavier", "orthogonal"])
def test_init_shapes_blocks_and_forget_bias(init):
    p = lstm_params(np.random.default_rng(0), 7, 6, np.float32, init=init, gain=1.5,
                    forget_bias=2.0)
    assert p["W_xh"].shape == (7, 24) and p["W_hh"].shape == (6, 24) and p["b_h"].shape == (24,)
    assert all(a.dtype == np.float32 for a in p.values())
    np.testing.assert_array_equal(p["b_h"][6:12], 2.0)
    assert np.all(p["b_h"][:6] == 0) and np.all(p["b_h"][12:] == 0)
    blocks = [p["W_hh"][:, k * 6 : (k + 1) * 6] for k in range(4)]
    assert not np.allclose(blocks[0], blocks[1])  # each block drawn on its own
    if init == "orthogonal":
        for w in blocks:
            np.testing.assert_allclose(w.T @ w, 1.5**2 * np.eye(6), atol=1e-5)
    assert lstm_params(np.random.default_rng(0), 7, 6)["b_h"][6:12].tolist() == [1.0] * 6
    with pytest.raises(ConfigError, match="init"):
        lstm_params(np.random.default_rng(0), 7, 6, init="identity")


def test_cut_at_or_past_the_end_gives_no_gradient_and_one_step_works():
    x, h0, c0, Wx, Wh, b, rng = setup(9)
    _, cache = lstm_forward_tm(x, h0, Wx, Wh, b, c0=c0)
    g = lstm_backward_tm(cache, dh_last=np.ones((N, H)), bptt_cut=T + 3)
    assert g.cut == T
    for a in (g.dx, g.dWx, g.dWh, g.db, g.dh, g.extra["dc"]):
        assert np.all(a == 0)
    h1, c1, step_cache = lstm_step_forward(x[0], h0, c0, Wx, Wh, b)
    h, cache = lstm_forward_tm(x[:1], h0, Wx, Wh, b, c0=c0)
    np.testing.assert_allclose(h[0], h1, rtol=1e-12)
    dlast = rng.standard_normal((N, H))
    g = lstm_backward_tm(cache, dh_last=dlast)
    dx, dh0, dc0, dWx, dWh, db = lstm_step_backward(dlast, np.zeros((N, H)), step_cache)
    for a, s in ((g.dx[0], dx), (g.dh0, dh0), (g.extra["dc0"], dc0), (g.dWx, dWx),
                 (g.dWh, dWh), (g.db, db)):
        np.testing.assert_allclose(a, s, rtol=1e-11, atol=1e-14)
