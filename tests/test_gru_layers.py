"""GRU step and whole-sequence layers: gradient checks in float64 (step, sequence, truncated,
and the per-step totals dL/dh_t), fast-vs-naive agreement, trace, init, float32."""

import warnings

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error
from sequence_checks import H, N, T, batch_major_upstream, gated_inputs, seq_loss, upstream

from core import naive
from core.errors import ConfigError
from core.gru_layers import (
    gru_backward_tm,
    gru_forward_tm,
    gru_step_backward,
    gru_step_forward,
    gru_trace,
)
from core.init import gru_params


def setup(seed):
    return gated_inputs(seed, gates=3)


def test_step_gradients():
    x, h0, Wx, Wh, b, rng = setup(0)
    xt = x[0]
    h, cache = gru_step_forward(xt, h0, Wx, Wh, b)
    dh = rng.standard_normal(h.shape)
    grads = gru_step_backward(dh, cache)
    f = lambda: np.sum(gru_step_forward(xt, h0, Wx, Wh, b)[0] * dh)  # noqa: E731
    for g, p in zip(grads, (xt, h0, Wx, Wh, b)):
        assert rel_error(g, numeric_grad(f, p)) < 1e-6


@pytest.mark.parametrize("kind", ["up", "last"])
def test_sequence_gradients(kind):
    x, h0, Wx, Wh, b, rng = setup(1)
    dh_up, dh_last = upstream(kind, rng)
    _, cache = gru_forward_tm(x, h0, Wx, Wh, b)
    g = gru_backward_tm(cache, dh_up=dh_up, dh_last=dh_last)
    assert g.cut == 0
    f = lambda: seq_loss(gru_forward_tm(x, h0, Wx, Wh, b)[0], dh_up, dh_last)  # noqa: E731
    for mine, p in ((g.dx, x), (g.dh0, h0), (g.dWx, Wx), (g.dWh, Wh), (g.db, b)):
        assert rel_error(mine, numeric_grad(f, p)) < 1e-6


def test_sequence_gradients_from_zero_state():
    """h0 = None (the models' case): a zero initial state, no dh0."""
    x, _, Wx, Wh, b, rng = setup(2)
    dh_last = rng.standard_normal((N, H))
    _, cache = gru_forward_tm(x, None, Wx, Wh, b)
    g = gru_backward_tm(cache, dh_last=dh_last)
    assert g.dh0 is None
    f = lambda: seq_loss(gru_forward_tm(x, None, Wx, Wh, b)[0], None, dh_last)  # noqa: E731
    for mine, p in ((g.dx, x), (g.dWx, Wx), (g.dWh, Wh), (g.db, b)):
        assert rel_error(mine, numeric_grad(f, p)) < 1e-6


@pytest.mark.parametrize("kind", ["up", "last"])
@pytest.mark.parametrize("cut", [1, 4])
def test_truncated_sequence_gradients(cut, kind):
    """Numeric reference: the state before step ``cut`` is a constant from the base params."""
    x, h0, Wx, Wh, b, rng = setup(3)
    dh_up, dh_last = upstream(kind, rng)
    h, cache = gru_forward_tm(x, h0, Wx, Wh, b)
    frozen = h[cut - 1].copy()
    g = gru_backward_tm(cache, dh_up=dh_up, dh_last=dh_last, bptt_cut=cut)
    assert g.cut == cut
    up_tail = None if dh_up is None else dh_up[cut:]
    xs = x[cut:].copy()

    def f():
        return seq_loss(gru_forward_tm(xs, frozen, Wx, Wh, b)[0], up_tail, dh_last)

    for mine, p in ((g.dWx, Wx), (g.dWh, Wh), (g.db, b)):
        assert rel_error(mine, numeric_grad(f, p)) < 1e-6
    assert rel_error(g.dx[cut:], numeric_grad(f, xs)) < 1e-6
    assert np.all(g.dx[:cut] == 0) and np.all(g.dh[:cut] == 0)
    assert g.dh0 is None


def unrolled_loss(x, h0, Wx, Wh, b, dh_up, at, delta_h):
    """The loss sum_t <h_t, dh_up[t]> of a GRU written out gate by gate (not via the layer
    functions), with ``delta_h`` added to h_at."""
    prev = h0
    loss = 0.0
    for t in range(x.shape[0]):
        u = x[t] @ Wx + b
        v = prev @ Wh
        z = 1 / (1 + np.exp(-(u[:, :H] + v[:, :H])))
        r = 1 / (1 + np.exp(-(u[:, H : 2 * H] + v[:, H : 2 * H])))
        n = np.tanh(u[:, 2 * H :] + r * v[:, 2 * H :])
        h = (1 - z) * n + z * prev
        if t == at:
            h = h + delta_h
        loss += np.sum(h * dh_up[t])
        prev = h
    return loss


@pytest.mark.parametrize("cut", [None, 3])
def test_dh_is_the_total_state_gradient(cut):
    """grads.dh[t] = dL/dh_t through every later path, checked by perturbing h_t inside an
    unrolled forward; 0 before the cut."""
    x, h0, Wx, Wh, b, rng = setup(4)
    dh_up = rng.standard_normal((T, N, H))
    _, cache = gru_forward_tm(x, h0, Wx, Wh, b)
    g = gru_backward_tm(cache, dh_up=dh_up, bptt_cut=cut)
    first = cut or 0
    for t in range(T):
        if t < first:
            assert np.all(g.dh[t] == 0)
            continue
        delta_h = np.zeros((N, H))
        f = lambda: unrolled_loss(x, h0, Wx, Wh, b, dh_up, t, delta_h)  # noqa: E731,B023
        assert rel_error(g.dh[t], numeric_grad(f, delta_h)) < 1e-6


@pytest.mark.parametrize("kind", ["up", "last"])
@pytest.mark.parametrize("cut", [None, 2])
def test_fast_sequence_matches_naive_loop(cut, kind):
    x, h0, Wx, Wh, b, rng = setup(5)
    dh_up, dh_last = upstream(kind, rng)
    h, cache = gru_forward_tm(x, h0, Wx, Wh, b)
    h_n, caches = naive.gru_forward_naive(x.transpose(1, 0, 2), h0, Wx, Wh, b)
    np.testing.assert_allclose(h.transpose(1, 0, 2), h_n, rtol=1e-12, atol=1e-14)
    up = batch_major_upstream(dh_up, dh_last)
    g = gru_backward_tm(cache, dh_up=dh_up, dh_last=dh_last, bptt_cut=cut)
    dx, dh0, dWx, dWh, db, dh_tot = naive.gru_backward_naive(up, caches, cut)
    fast = [g.dx.transpose(1, 0, 2), g.dWx, g.dWh, g.db, g.dh.transpose(1, 0, 2)]
    for a, s in zip(fast, (dx, dWx, dWh, db, dh_tot)):
        np.testing.assert_allclose(a, s, rtol=1e-11, atol=1e-13)
    if cut is None:
        np.testing.assert_allclose(g.dh0, dh0, rtol=1e-11, atol=1e-13)
    else:
        assert g.dh0 is None and np.all(dh0 == 0)


def test_trace_is_batch_major_gates():
    x, _, Wx, Wh, b, rng = setup(6)
    h, cache = gru_forward_tm(x, None, Wx, Wh, b)
    g = gru_backward_tm(cache, dh_last=rng.standard_normal((N, H)))
    tr = gru_trace(cache, g)
    _, caches = naive.gru_forward_naive(x.transpose(1, 0, 2), None, Wx, Wh, b)
    assert set(tr) == {"gates"}
    for k, name in enumerate("zrn"):
        gate = tr["gates"][name]
        assert gate.shape == (N, T, H) and gate.flags.c_contiguous
        expect = np.stack([caches[t][4 + k] for t in range(T)], axis=1)
        np.testing.assert_allclose(gate, expect, rtol=1e-12)


def test_float32_stays_float32_without_warnings_when_saturated():
    x, h0, Wx, Wh, b, _ = setup(7)
    f32 = [np.asarray(a, dtype=np.float32) for a in (x, h0, Wx, 40 * Wh, 40 * b)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            h, cache = gru_forward_tm(*f32)
            g = gru_backward_tm(cache, dh_last=np.ones((N, H), np.float32), need_dx=False)
    assert h.dtype == np.float32 and g.dx is None
    assert all(a.dtype == np.float32 for a in (g.dWx, g.dWh, g.db, g.dh))
    assert np.all(np.isfinite(g.dWh)) and np.all(np.abs(h) <= np.abs(f32[1]).max() + 1)


@pytest.mark.parametrize("init", ["xavier", "orthogonal"])
def test_init_shapes_blocks_and_zero_bias(init):
    p = gru_params(np.random.default_rng(0), 7, 6, np.float64, init=init, gain=0.5)
    assert p["W_xh"].shape == (7, 18) and p["W_hh"].shape == (6, 18) and p["b_h"].shape == (18,)
    assert all(a.dtype == np.float64 for a in p.values())
    assert np.all(p["b_h"][:6] == 1.0) and np.all(p["b_h"][6:] == 0)   # z block: forget_bias
    blocks = [p["W_hh"][:, k * 6 : (k + 1) * 6] for k in range(3)]
    assert not np.allclose(blocks[0], blocks[1])
    if init == "orthogonal":
        for w in blocks:
            np.testing.assert_allclose(w.T @ w, 0.25 * np.eye(6), atol=1e-12)
    with pytest.raises(ConfigError, match="init"):
        gru_params(np.random.default_rng(0), 7, 6, init="normal")


def test_cut_at_or_past_the_end_gives_no_gradient_and_one_step_works():
    x, h0, Wx, Wh, b, rng = setup(9)
    _, cache = gru_forward_tm(x, h0, Wx, Wh, b)
    g = gru_backward_tm(cache, dh_last=np.ones((N, H)), bptt_cut=T + 3)
    assert g.cut == T
    for a in (g.dx, g.dWx, g.dWh, g.db, g.dh):
        assert np.all(a == 0)
    h1, step_cache = gru_step_forward(x[0], h0, Wx, Wh, b)
    h, cache = gru_forward_tm(x[:1], h0, Wx, Wh, b)
    np.testing.assert_allclose(h[0], h1, rtol=1e-12)
    dlast = rng.standard_normal((N, H))
    g = gru_backward_tm(cache, dh_last=dlast)
    dx, dh0, dWx, dWh, db = gru_step_backward(dlast, step_cache)
    for a, s in ((g.dx[0], dx), (g.dh0, dh0), (g.dWx, dWx), (g.dWh, dWh), (g.db, db)):
        np.testing.assert_allclose(a, s, rtol=1e-11, atol=1e-14)
