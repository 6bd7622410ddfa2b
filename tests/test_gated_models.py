"""RowRNN / CNNRNN with every cell and both CNN+RNN layouts: centred-difference gradients
(full and truncated BPTT), dl_i/dh_t and dl_i/dc_t in the trace against finite differences
of the image's own loss, the trace contract, options, and checkpoints."""

import json

import numpy as np
import pytest
from gradcheck import numeric_grad, random_indices, rel_error
from tiny_models import gradcheck_input, gradcheck_model

from core.checkpoint import load_checkpoint, save_checkpoint
from core.config import TrainConfig
from core.errors import ConfigError
from core.gru_layers import gru_step_forward
from core.lstm_layers import lstm_step_forward
from core.models import CNNRNN, RowRNN, build_model
from core.rnn_layers import rnn_step_forward
from core.trainer import build_model_from_config

N, K = 3, 4
CELLS = ["rnn", "lstm", "gru"]
# (model kind, CNN+RNN layout, T)
LAYOUTS = [("row-rnn", "rows", 7), ("cnn-rnn", "rows", 8), ("cnn-rnn", "positions", 64)]


def small_model(kind, cell, sequence="rows", bptt_window=None, seed=1):
    options = dict(cell=cell, bptt_window=bptt_window)
    if cell == "lstm":
        options["forget_bias"] = 0.5
    if kind == "cnn-rnn":
        options["sequence"] = sequence
    return gradcheck_model(kind, seed, K, **options)


def small_input(kind, rng):
    return gradcheck_input(kind, rng, N)


# --- an independent reference: the step functions in a plain loop, on the model's sequence ---


def ref_sequence(model, X):
    """RNN input (N, T, D) from the model's encoder, re-laid out from the feature map."""
    if model.kind == "row-rnn":
        return X
    fmap = model._features(model._encode(X)[1], model._encode(X)[0])["conv2"]
    n, r, w, c = fmap.shape
    if model.sequence == "rows":
        return fmap.reshape(n, r, w * c)
    return np.stack([fmap[:, t // w, t % w] for t in range(r * w)], axis=1)


def ref_run(model, seq, start=0, state=None, bump=None):
    """States from ``state`` (h[, c]) before step ``start`` to the end -> final h (N, H).

    bump: (t, 'h' | 'c', delta (N, H)) added to that state as step t computes it (c_t before
    h_t = o_t tanh(c_t) is formed from it, h_t at the end of the step).
    Computed in extended precision (np.longdouble), so that a centred difference of a small
    gradient is not lost in the last bits of a float64 loss."""
    p = {k: v.astype(np.longdouble) for k, v in model.params.items()}
    seq = seq.astype(np.longdouble)
    H = p["W_hh"].shape[0]
    zero = np.zeros((seq.shape[0], H), dtype=np.longdouble)
    h, c = (zero, zero) if state is None else state
    for t in range(start, seq.shape[1]):
        x = seq[:, t]
        if model.cell.name == "rnn":
            h, _ = rnn_step_forward(x, h, p["W_xh"], p["W_hh"], p["b_h"], model.activation)
        elif model.cell.name == "lstm":
            h, c, cache = lstm_step_forward(x, h, c, p["W_xh"], p["W_hh"], p["b_h"])
            if bump is not None and bump[0] == t and bump[1] == "c":
                c = c + bump[2]  # before h_t = o_t tanh(c_t) reads it
                h = cache[7] * np.tanh(c)
                continue
        else:
            h, _ = gru_step_forward(x, h, p["W_xh"], p["W_hh"], p["b_h"])
        if bump is not None and bump[0] == t:
            h = h + bump[2]
    return h, c


def ref_sample_losses(model, h_last, y):
    p = {k: model.params[k].astype(np.longdouble) for k in ("W_hq", "b_q")}
    s = h_last @ p["W_hq"] + p["b_q"]
    s = s - s.max(axis=1, keepdims=True)
    return np.log(np.exp(s).sum(axis=1)) - s[np.arange(len(y)), y]


def ref_loss(model, X, y, reg, frozen=None, cut=0):
    """Mean CE + L2; with ``frozen`` (h, c) the states before step ``cut`` are constants."""
    seq = ref_sequence(model, X)
    h, _ = ref_run(model, seq, cut, frozen)
    wsum = sum(np.sum(w.astype(np.longdouble) ** 2) for k, w in model.params.items()
               if k.startswith("W_"))
    return ref_sample_losses(model, h, y).mean() + 0.5 * reg * wsum


def frozen_states(model, X, cut):
    """(h, c) after step cut - 1 at the current parameters (copies), or None for cut 0."""
    if cut == 0:
        return None
    seq = ref_sequence(model, X)
    h, c = ref_run(model, seq[:, :cut])
    return h.copy(), c.copy()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("kind, sequence, T", LAYOUTS)
@pytest.mark.parametrize("window", [None, 3])
def test_gradients_match_centred_differences(cell, kind, sequence, T, window):
    rng = np.random.default_rng(0)
    m = small_model(kind, cell, sequence, window)
    X, y, reg = small_input(kind, rng), rng.integers(0, K, N), 0.05
    loss, grads = m.loss(X, y, reg=reg)
    cut = m.bptt_cut(T)
    assert (m.T == T or kind == 'row-rnn') and cut == (0 if window is None else T - window)
    frozen = frozen_states(m, X, cut)
    assert loss == pytest.approx(ref_loss(m, X, y, reg), rel=1e-12)
    for name, p in m.params.items():
        assert grads[name].shape == p.shape and grads[name].dtype == np.float64
        idx = random_indices(p.shape, 10, rng)
        num = numeric_grad(lambda: ref_loss(m, X, y, reg, frozen, cut), p, idx=idx)
        assert rel_error(grads[name], num) < 1e-6, name


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("kind, sequence, T", LAYOUTS[:2] + [("cnn-rnn", "positions", 64)])
@pytest.mark.parametrize("window", [None, 4])
def test_traced_state_gradients_are_each_images_own(cell, kind, sequence, T, window):
    """Trace.dh[i, t] = dl_i/dh_t and (LSTM) Trace.dc[i, t] = dl_i/dc_t: the state after step
    t is perturbed inside a re-run of the cell loop; zeros before the cut."""
    rng = np.random.default_rng(2)
    m = small_model(kind, cell, sequence, window)
    X, y = small_input(kind, rng), rng.integers(0, K, N)
    _, _, tr = m.loss(X, y, trace=True)
    seq = ref_sequence(m, X)
    H = m.params["W_hh"].shape[0]
    cut = m.bptt_cut(T)
    states = ("h", "c") if cell == "lstm" else ("h",)
    steps = sorted({cut, (cut + T) // 2, T - 2, T - 1})
    for which in states:
        traced = tr.dh if which == "h" else tr.dc
        assert traced.shape == (N, T, H)
        assert np.all(traced[:, :cut] == 0)
        for t in steps:
            delta = np.zeros((N, H))

            def total(t=t, which=which, delta=delta):
                h, _ = ref_run(m, seq, bump=(t, which, delta))
                return ref_sample_losses(m, h, y).sum()  # image i's loss sees only delta[i]

            # Entries that have vanished below 1e-6 (over up to 64 steps) are held to an
            # absolute 1e-12, ~16x what the extended-precision difference resolves.
            num = numeric_grad(total, delta)
            assert rel_error(traced[:, t], num, floor=1e-6) < 1e-6, (which, t)
    np.testing.assert_allclose(tr.dh_norm, np.linalg.norm(tr.dh, axis=2).mean(axis=0),
                               rtol=1e-12)
    if cell == "lstm":
        np.testing.assert_allclose(tr.dc_norm, np.linalg.norm(tr.dc, axis=2).mean(axis=0),
                                   rtol=1e-12)
    else:
        assert tr.dc is None and tr.dc_norm is None


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("kind, sequence, T", LAYOUTS)
def test_trace_contract(cell, kind, sequence, T):
    rng = np.random.default_rng(3)
    m = small_model(kind, cell, sequence)
    X, y = small_input(kind, rng), rng.integers(0, K, N)
    _, grads, tr = m.loss(X, y, trace=True)
    H = m.params["W_hh"].shape[0]
    assert tr.hidden.shape == tr.dh.shape == (N, T, H) and tr.step_probs.shape == (N, T, K)
    np.testing.assert_allclose(tr.step_probs[:, -1], tr.probs, rtol=1e-12)
    assert m.config["cell"] == cell and m.config.get("sequence", "rows") == sequence
    if cell == "rnn":
        assert tr.gates is None and tr.cell is None
    else:
        assert set(tr.gates) == set(m.cell.blocks)
        for name, g in tr.gates.items():
            assert g.shape == (N, T, H)
            lo = -1 if name in ("g", "n") else 0  # tanh blocks; the rest are sigmoids
            assert g.min() >= lo and g.max() <= 1
    if cell == "lstm":
        i, f, o, g = (tr.gates[k] for k in "ifog")
        c_prev = np.concatenate([np.zeros((N, 1, H)), tr.cell[:, :-1]], axis=1)
        np.testing.assert_allclose(tr.cell, f * c_prev + i * g, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(tr.hidden, o * np.tanh(tr.cell), rtol=1e-12, atol=1e-15)
    if cell == "gru":
        z, n = tr.gates["z"], tr.gates["n"]
        h_prev = np.concatenate([np.zeros((N, 1, H)), tr.hidden[:, :-1]], axis=1)
        np.testing.assert_allclose(tr.hidden, (1 - z) * n + z * h_prev, rtol=1e-12,
                                   atol=1e-15)
    # the per-step weight-gradient parts sum to the weight gradients (no L2 here)
    whh_parts = tr.dWhh_norm_t
    assert whh_parts.shape == tr.dWxh_norm_t.shape == (T,) and whh_parts[0] == 0
    assert np.linalg.norm(grads["W_hh"]) <= whh_parts.sum() * (1 + 1e-12)
    assert np.linalg.norm(grads["W_xh"]) <= tr.dWxh_norm_t.sum() * (1 + 1e-12)
    _, _, norms = m.loss(X, y, trace="norms")
    np.testing.assert_array_equal(norms.dh_norm, tr.dh_norm)
    if cell == "lstm":
        np.testing.assert_array_equal(norms.dc_norm, tr.dc_norm)
    else:
        assert norms.dc_norm is None


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_step_weight_gradient_norms_are_the_per_step_outer_products(cell):
    """Trace.dWhh_norm_t[t] / dWxh_norm_t[t] = || step t's weight gradient ||, each step's
    gradient from the step function's own backward (core.lstm_layers / core.gru_layers) fed
    with the naive twin's gradients arriving at that step (core.naive)."""
    from core import naive
    from core.gru_layers import gru_step_backward
    from core.layers import softmax
    from core.lstm_layers import lstm_step_backward

    rng = np.random.default_rng(4)
    m = small_model("row-rnn", cell)
    X, y = small_input("row-rnn", rng), rng.integers(0, K, N)
    _, _, tr = m.loss(X, y, trace=True)
    p = m.params
    if cell == "lstm":
        h, _, caches = naive.lstm_forward_naive(X, None, p["W_xh"], p["W_hh"], p["b_h"])
    else:
        h, caches = naive.gru_forward_naive(X, None, p["W_xh"], p["W_hh"], p["b_h"])
    dscores = softmax(h[:, -1] @ p["W_hq"] + p["b_q"])
    dscores[np.arange(N), y] -= 1
    dh = np.zeros_like(h)
    dh[:, -1] = dscores / N @ p["W_hq"].T  # the batch-mean loss, as the model's grads
    T = h.shape[1]
    whh, wxh = np.zeros(T), np.zeros(T)
    if cell == "lstm":
        *_, dh_tot, dc_tot = naive.lstm_backward_naive(dh, caches)
    else:
        *_, dh_tot = naive.gru_backward_naive(dh, caches)
    for t in range(T):
        if cell == "lstm":  # the part of dL/dc_t that arrives from c_{t+1}
            o, tanh_c = caches[t][7], caches[t][9]
            dc_next = dc_tot[:, t] - dh_tot[:, t] * o * (1 - tanh_c ** 2)
            *_, dWx, dWh, _ = lstm_step_backward(dh_tot[:, t], dc_next, caches[t])
        else:
            *_, dWx, dWh, _ = gru_step_backward(dh_tot[:, t], caches[t])
        whh[t], wxh[t] = np.linalg.norm(dWh), np.linalg.norm(dWx)
    np.testing.assert_allclose(tr.dWhh_norm_t, whh, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(tr.dWxh_norm_t, wxh, rtol=1e-10, atol=1e-14)


def test_cell_options_and_their_errors():
    lstm = RowRNN(hidden_dim=8, cell="lstm", forget_bias=2.0, seed=1)
    b = lstm.params["b_h"]
    assert lstm.params["W_hh"].shape == (8, 32) and lstm.params["W_xh"].shape == (96, 32)
    np.testing.assert_array_equal(b[8:16], 2.0)
    assert not b[:8].any() and not b[16:].any()
    assert RowRNN(hidden_dim=8, cell="lstm").params["b_h"][8:16].tolist() == [1.0] * 8
    gru = CNNRNN(channels=(4, 6), hidden_dim=8, cell="gru", sequence="positions")
    assert gru.params["W_xh"].shape == (6, 24) and gru.params["W_hh"].shape == (8, 24)
    assert CNNRNN(channels=(4, 6), hidden_dim=8).params["W_xh"].shape == (48, 8)
    q = RowRNN(hidden_dim=16, cell="gru", init="orthogonal", gain=1.0).params["W_hh"]
    for k in range(3):  # orthogonal per H x H block
        blk = q[:, 16 * k : 16 * (k + 1)].astype(np.float64)
        np.testing.assert_allclose(blk @ blk.T, np.eye(16), atol=1e-5)
    x = RowRNN(hidden_dim=256, cell="lstm").params["W_xh"]
    assert x[:, 256:512].std() == pytest.approx(1 / np.sqrt(96), rel=0.05)  # xavier per block
    with pytest.raises(ConfigError, match="activation 'relu' applies to the vanilla cell"):
        RowRNN(cell="lstm", activation="relu")
    with pytest.raises(ConfigError, match="init: 'identity' is not available for gated cells"):
        CNNRNN(cell="gru", init="identity")
    gru = RowRNN(hidden_dim=8, cell="gru", forget_bias=2.0, seed=1)  # its update gate z
    np.testing.assert_array_equal(gru.params["b_h"], np.r_[np.full(8, 2.0), np.zeros(16)])
    with pytest.raises(ConfigError, match="forget_bias applies to the gated cells"):
        RowRNN(cell="rnn", forget_bias=2.0)
    with pytest.raises(ConfigError, match="sequence"):
        CNNRNN(sequence="columns")
    with pytest.raises(ConfigError, match="forget_bias"):
        RowRNN(cell="lstm", forget_bias=float("nan"))
    for bad, match in ((dict(cell="lstm", activation="relu"), "activation"),
                       (dict(cell="gru", init="identity"), "init"),
                       (dict(cell="rnn", forget_bias=0.0), "forget_bias"),
                       (dict(sequence="positions"), "sequence"),
                       (dict(cell="cnn"), "cell")):
        with pytest.raises(ConfigError, match=match):
            TrainConfig(**bad).validate()
    cfg = TrainConfig(model="cnn-rnn", sequence="positions", bptt_window=64).validate()
    assert cfg.timesteps == 64
    with pytest.raises(ConfigError, match="bptt_window"):
        TrainConfig(model="cnn-rnn", bptt_window=64).validate()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("kind, sequence", [("row-rnn", "rows"), ("cnn-rnn", "positions")])
def test_config_and_checkpoint_round_trip(tmp_path, cell, kind, sequence):
    tc = TrainConfig(model=kind, hidden=6, cell=cell, sequence=sequence, channels=(2, 3),
                     forget_bias=1.5 if cell != "rnn" else 1.0, init="orthogonal", seed=7)
    m = build_model_from_config(tc.validate())
    assert m.config["cell"] == cell and m.config["forget_bias"] == tc.forget_bias
    again = build_model(json.loads(json.dumps(m.config)))
    assert again.config == m.config
    rng = np.random.default_rng(0)
    for p in m.params.values():
        p += rng.standard_normal(p.shape).astype(p.dtype)
    path = save_checkpoint(tmp_path / "m.npz", m, None, None,
                           {"model_kind": kind, "train_config": tc.to_dict()})
    ck = load_checkpoint(path)
    assert type(ck.model) is type(m) and ck.model.config == m.config
    assert ck.model.cell.name == cell and getattr(ck.model, "sequence", "rows") == sequence
    for k in m.params:
        np.testing.assert_array_equal(ck.model.params[k], m.params[k])
    X = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)
    if kind == "row-rnn":
        X = m.input_from_images(X)
    np.testing.assert_array_equal(ck.model.scores(X), m.scores(X))


def test_an_old_config_without_the_new_fields_builds_a_vanilla_row_layout_model():
    old = {"kind": "cnn-rnn", "hidden_dim": 4, "num_classes": 10, "activation": "tanh",
           "init": "xavier", "gain": 1.0, "bptt_window": None, "dtype": "float32", "seed": 0,
           "channels": [2, 3]}
    m = build_model(old)
    assert m.cell.name == "rnn" and m.sequence == "rows" and m.T == 8
    assert TrainConfig.from_dict({"model": "cnn-rnn"}).sequence == "rows"
