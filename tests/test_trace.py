"""Traces: every field checked against an independent computation (finite differences of each
sample's loss for dh / dh_norm, the reference forward pass for states and probabilities)."""

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error
from test_models import (
    KINDS,
    K,
    N,
    ref_sample_losses,
    ref_sequence,
    ref_states,
    small_input,
    small_model,
)

from core.trace import Trace


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("window", [None, 3])
def test_trace_dh_is_per_sample_gradient_wrt_hidden_state(kind, window):
    rng = np.random.default_rng(1)
    m = small_model(kind, "tanh", window)
    X, y = small_input(kind, rng), rng.integers(0, K, N)
    loss, grads, tr = m.loss(X, y, reg=0.1, trace=True)
    seq = ref_sequence(m, X)
    T, H = seq.shape[1], m.params["W_hh"].shape[0]
    cut = m.bptt_cut(T)
    assert tr.bptt_cut == (cut if cut else None)
    states = ref_states(m, seq)
    np.testing.assert_allclose(tr.hidden, np.stack(states, axis=1), rtol=1e-10, atol=1e-12)
    num = np.zeros((N, T, H))
    for t in range(cut, T):
        for i in range(N):
            h_t = states[t][i : i + 1].copy()

            def l_i(h_t=h_t, t=t, i=i):
                rest = ref_states(m, seq[i : i + 1], t + 1, h_t)
                h_last = rest[-1] if rest else h_t
                return ref_sample_losses(m, h_last, y[i : i + 1])[0]

            num[i, t] = numeric_grad(l_i, h_t, h=1e-4)[0]
    # early steps' gradients vanish to ~1e-12, below the centred difference's own roundoff
    # (~1e-12 for h = 1e-4), hence the 1e-5 floor on the denominator
    assert rel_error(tr.dh[:, cut:], num[:, cut:], floor=1e-5) < 1e-6
    assert np.all(tr.dh[:, :cut] == 0)
    expected_norm = np.linalg.norm(num, axis=2).mean(axis=0)
    np.testing.assert_allclose(tr.dh_norm, expected_norm, rtol=1e-6, atol=1e-12)
    # 'norms' gives the same dh_norm and losses and nothing else
    _, _, cheap = m.loss(X, y, reg=0.1, trace="norms")
    np.testing.assert_allclose(cheap.dh_norm, tr.dh_norm, rtol=1e-12)
    np.testing.assert_allclose(cheap.sample_losses, tr.sample_losses, rtol=1e-12)
    assert cheap.hidden is None and cheap.dh is None and cheap.dWhh_norm_t is None
    assert cheap.bptt_cut == tr.bptt_cut


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("window", [None, 3])
def test_trace_fields_are_consistent(kind, window):
    rng = np.random.default_rng(2)
    m = small_model(kind, "relu", window)
    X, y = small_input(kind, rng), rng.integers(0, K, N)
    loss, grads, tr = m.loss(X, y, trace=True)
    p = m.params
    T = tr.hidden.shape[1]
    s = tr.hidden @ p["W_hq"] + p["b_q"]
    e = np.exp(s - s.max(axis=2, keepdims=True))
    np.testing.assert_allclose(tr.step_probs, e / e.sum(axis=2, keepdims=True), rtol=1e-10)
    np.testing.assert_allclose(tr.probs, tr.step_probs[:, -1], rtol=1e-10)
    assert loss == pytest.approx(tr.sample_losses.mean(), rel=1e-12)
    # per-step weight-gradient contributions, rebuilt from dh (checked above) and the states
    da = tr.dh / N * (tr.hidden > 0)
    h_prev = np.concatenate([np.zeros_like(tr.hidden[:, :1]), tr.hidden[:, :-1]], axis=1)
    seq = ref_sequence(m, X)
    pre = seq @ p["W_xh"] + h_prev @ p["W_hh"] + p["b_h"]  # a_t, from the traced states
    np.testing.assert_allclose(np.maximum(pre, 0), tr.hidden, rtol=1e-12, atol=1e-15)
    c_hh = np.einsum("nti,ntj->tij", h_prev, da)
    c_xh = np.einsum("nti,ntj->tij", seq, da)
    np.testing.assert_allclose(c_hh.sum(0), grads["W_hh"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(c_xh.sum(0), grads["W_xh"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(tr.dWhh_norm_t, np.linalg.norm(c_hh, axis=(1, 2)), rtol=1e-10,
                               atol=1e-14)
    np.testing.assert_allclose(tr.dWxh_norm_t, np.linalg.norm(c_xh, axis=(1, 2)), rtol=1e-10,
                               atol=1e-14)
    cut = m.bptt_cut(T)
    assert np.all(tr.dWxh_norm_t[:cut] == 0) and np.all(tr.dWxh_norm_t[cut:] > 0)
    assert tr.dWhh_norm_t[0] == 0  # h_{-1} = 0
    if kind == "cnn-rnn":
        f = tr.features
        assert f["conv1"].shape == (N, 16, 16, 2) and f["conv2"].shape == (N, 8, 8, 3)
        np.testing.assert_allclose(f["seq"], seq, rtol=1e-12)
        # map row t -> x_t laid out (W, C)
        np.testing.assert_array_equal(f["seq"][1, 5, 2 * 3 + 1], f["conv2"][1, 5, 2, 1])
    else:
        assert tr.features is None
    copy = tr.copy()
    copy.hidden[0, 0, 0] += 1
    assert copy.hidden[0, 0, 0] != tr.hidden[0, 0, 0]
    assert tr is not copy and m.trace(X, y).dh_norm.shape == (T,)


def test_trace_defaults_and_copy():
    tr = Trace()
    assert tr.hidden is None and tr.features is None and tr.bptt_cut is None
    tr = Trace(dh_norm=np.ones(3), features={"seq": np.zeros((1, 3, 2))}, bptt_cut=2)
    c = tr.copy()
    c.dh_norm[0] = 5
    c.features["seq"][0, 0, 0] = 1
    assert tr.dh_norm[0] == 1 and tr.features["seq"][0, 0, 0] == 0 and c.bptt_cut == 2
