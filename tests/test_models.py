"""RowRNN / CNNRNN: gradients (full and truncated BPTT), API, dtypes, and an overfit check."""

import json

import numpy as np
import pytest
from gradcheck import numeric_grad, random_indices, rel_error
from tiny_models import gradcheck_input, gradcheck_model

from core.conv import conv3x3_forward, maxpool2x2_forward
from core.errors import ConfigError
from core.models import CNNRNN, MODELS, RowRNN, build_model

N, K = 3, 4


def small_model(kind, activation="tanh", bptt_window=None, seed=1):
    return gradcheck_model(kind, seed, K, activation=activation, bptt_window=bptt_window)


def small_input(kind, rng):
    return gradcheck_input(kind, rng, N)


# --- an independent reference forward pass (textbook order, unfused ops) ----------------------


def ref_sequence(model, X):
    """RNN input (N, T, D) computed with the unfused layers: conv + b -> ReLU -> pool."""
    if model.kind == "row-rnn":
        return X
    p = model.params
    x = X
    for i in (1, 2):
        y, _ = conv3x3_forward(x, p[f"W_conv{i}"], p[f"b_conv{i}"])
        x, _ = maxpool2x2_forward(np.maximum(y, 0))
    n, t, w, c = x.shape
    return x.reshape(n, t, w * c)


def ref_states(model, seq, start=0, h=None):
    """States h_t for t = start..T-1 from state ``h`` before step ``start`` -> list of (N, H)."""
    p = model.params
    act = np.tanh if model.activation == "tanh" else (lambda a: np.maximum(a, 0))
    if h is None:
        h = np.zeros((seq.shape[0], p["W_hh"].shape[0]))
    out = []
    for t in range(start, seq.shape[1]):
        h = act(seq[:, t] @ p["W_xh"] + h @ p["W_hh"] + p["b_h"])
        out.append(h)
    return out


def ref_sample_losses(model, h_last, y):
    s = h_last @ model.params["W_hq"] + model.params["b_q"]
    s = s - s.max(axis=1, keepdims=True)
    return np.log(np.exp(s).sum(axis=1)) - s[np.arange(len(y)), y]


def ref_loss(model, X, y, reg, frozen=None, cut=0):
    """Mean CE + L2; with ``frozen`` (N, H) the state before step ``cut`` is that constant."""
    seq = ref_sequence(model, X)
    h = ref_states(model, seq, cut, frozen)[-1]
    wsum = sum(np.sum(w * w) for k, w in model.params.items() if k.startswith("W_"))
    return ref_sample_losses(model, h, y).mean() + 0.5 * reg * wsum


KINDS = ["row-rnn", "cnn-rnn"]
ACTS = ["tanh", "relu"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("window", [None, 3])
def test_gradients_match_centred_differences(kind, activation, window):
    rng = np.random.default_rng(0)
    m = small_model(kind, activation, window)
    X, y, reg = small_input(kind, rng), rng.integers(0, K, N), 0.05
    loss, grads = m.loss(X, y, reg=reg)
    T = 7 if kind == "row-rnn" else 8
    cut = m.bptt_cut(T)
    assert cut == (0 if window is None else T - window)
    # the state before the cut, computed once at the base parameters, then held constant
    frozen = ref_states(m, ref_sequence(m, X))[cut - 1].copy() if cut > 0 else None
    assert loss == pytest.approx(ref_loss(m, X, y, reg), rel=1e-12)
    for name, p in m.params.items():
        assert grads[name].shape == p.shape and grads[name].dtype == np.float64
        idx = random_indices(p.shape, 12, rng)
        num = numeric_grad(lambda: ref_loss(m, X, y, reg, frozen, cut), p, idx=idx)
        assert rel_error(grads[name], num) < 1e-6, name


def test_truncation_changes_only_what_it_should():
    rng = np.random.default_rng(3)
    full, cut3 = small_model("row-rnn"), small_model("row-rnn", bptt_window=3)
    X, y = small_input("row-rnn", rng), rng.integers(0, K, N)
    lf, gf = full.loss(X, y)
    lt, gt = cut3.loss(X, y)
    assert lf == lt  # truncation changes gradients, never the loss
    np.testing.assert_array_equal(gf["W_hq"], gt["W_hq"])
    assert np.abs(gf["W_hh"] - gt["W_hh"]).max() > 1e-6
    # a window as long as the sequence is full BPTT
    same = small_model("row-rnn", bptt_window=7)
    np.testing.assert_allclose(same.loss(X, y)[1]["W_xh"], gf["W_xh"], rtol=1e-12)


def test_contract_shapes_config_and_rebuild():
    row = RowRNN()
    assert row.kind == "row-rnn" and row.T == 32
    assert {k: v.shape for k, v in row.params.items()} == {
        "W_xh": (96, 256), "W_hh": (256, 256), "b_h": (256,), "W_hq": (256, 10), "b_q": (10,)}
    assert all(v.dtype == np.float32 for v in row.params.values())
    cnn = CNNRNN()
    assert cnn.kind == "cnn-rnn" and cnn.T == 8
    assert {k: v.shape for k, v in cnn.params.items()} == {
        "W_conv1": (3, 3, 3, 64), "b_conv1": (64,), "W_conv2": (3, 3, 64, 64), "b_conv2": (64,),
        "W_xh": (512, 128), "W_hh": (128, 128), "b_h": (128,), "W_hq": (128, 10), "b_q": (10,)}
    for m in (RowRNN(hidden_dim=16, activation="relu", init="identity", bptt_window=5, seed=4,
                     dtype=np.float64),
              CNNRNN(channels=(4, 6), hidden_dim=8, init="orthogonal", gain=0.9, seed=2)):
        cfg = json.loads(json.dumps(m.config))
        again = build_model(cfg)
        assert type(again) is type(m) and again.config == m.config
        for k in m.params:
            np.testing.assert_array_equal(again.params[k], m.params[k])
    images = np.random.default_rng(0).random((5, 32, 32, 3)).astype(np.float32)
    x = row.input_from_images(images)
    assert x.shape == (5, 32, 96) and x.dtype == np.float32
    np.testing.assert_array_equal(x[2, 7, 3:6], images[2, 7, 1])  # pixel 1 of row 7, RGB
    assert row.scores(x).shape == (5, 10) and cnn.scores(cnn.input_from_images(images)).shape \
        == (5, 10)
    loss, grads = cnn.loss(images, np.arange(5))
    assert all(grads[k].dtype == np.float32 and grads[k].shape == v.shape
               for k, v in cnn.params.items())
    assert np.isfinite(loss)


def test_bad_options_raise_config_error():
    with pytest.raises(ConfigError, match="activation"):
        RowRNN(activation="sigmoid")
    with pytest.raises(ConfigError, match="init"):
        CNNRNN(init="glorot")
    with pytest.raises(ConfigError, match="bptt_window"):
        RowRNN(bptt_window=0)
    with pytest.raises(ConfigError, match="dtype"):
        RowRNN(dtype=np.int32)
    with pytest.raises(ConfigError, match="kind"):
        build_model({"kind": "lstm"})
    with pytest.raises(ConfigError):
        build_model({"kind": "row-rnn", "hidden": 3})


def test_models_are_built_from_the_registry():
    from core.config import TrainConfig
    from core.trainer import build_model_from_config

    assert MODELS == {"row-rnn": RowRNN, "cnn-rnn": CNNRNN}
    for kind, cls in MODELS.items():
        m = build_model_from_config(TrainConfig(model=kind, hidden=8, seed=3))
        assert type(m) is cls and m.config["hidden_dim"] == 8 and m.config["cell"] == "rnn"
    with pytest.raises(ConfigError, match="kind"):
        build_model_from_config(TrainConfig(model="gru-rnn"))  # not validated: still refused


def test_inits_shape_the_recurrent_matrix():
    eye = RowRNN(hidden_dim=32, init="identity", activation="relu").params["W_hh"]
    np.testing.assert_array_equal(eye, np.eye(32, dtype=np.float32))
    q = RowRNN(hidden_dim=32, init="orthogonal").params["W_hh"].astype(np.float64)
    np.testing.assert_allclose(q @ q.T, np.eye(32), atol=1e-5)
    big = RowRNN(hidden_dim=256, init="normal", gain=3.0).params["W_hh"]
    assert big.std() == pytest.approx(3.0 / 16, rel=0.05)
    xav = RowRNN(hidden_dim=256).params["W_hh"]
    assert xav.std() == pytest.approx(1.0 / 16, rel=0.05)
    assert CNNRNN().params["W_conv2"].std() == pytest.approx(np.sqrt(2 / 576), rel=0.05)


def test_float64_on_request_matches_float32():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((8, 32, 96)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    m32, m64 = RowRNN(hidden_dim=64, seed=3), RowRNN(hidden_dim=64, seed=3, dtype="float64")
    l32, g32 = m32.loss(X, y, reg=1e-3)
    l64, g64 = m64.loss(X, y, reg=1e-3)
    assert g64["W_hh"].dtype == np.float64 and g32["W_hh"].dtype == np.float32
    assert l32 == pytest.approx(l64, rel=1e-5)
    np.testing.assert_allclose(g32["W_hh"], g64["W_hh"], rtol=1e-3, atol=1e-6)


def test_row_rnn_overfits_100_images():
    """The seed's sanity check: 100 images, full-batch Adam, >= 99% training accuracy."""
    rng = np.random.default_rng(0)
    images = rng.random((100, 32, 32, 3)).astype(np.float32) - 0.5
    y = rng.integers(0, 10, 100)
    m = RowRNN(seed=0)
    X = m.input_from_images(images)
    acc0 = (m.scores(X).argmax(1) == y).mean()
    lr, b1, b2 = 2e-3, 0.9, 0.999
    mom = {k: np.zeros_like(v) for k, v in m.params.items()}
    vel = {k: np.zeros_like(v) for k, v in m.params.items()}
    for step in range(1, 301):
        loss, grads = m.loss(X, y)
        for k, p in m.params.items():
            mom[k] = b1 * mom[k] + (1 - b1) * grads[k]
            vel[k] = b2 * vel[k] + (1 - b2) * grads[k] ** 2
            p -= lr * (mom[k] / (1 - b1**step)) / (np.sqrt(vel[k] / (1 - b2**step)) + 1e-8)
        if step % 10 == 0 and (m.scores(X).argmax(1) == y).mean() >= 0.99:
            break
    acc = (m.scores(X).argmax(1) == y).mean()
    assert acc0 < 0.3 and acc >= 0.99, (acc0, acc, step, loss)


def test_unknown_trace_mode_is_rejected():
    m = small_model("row-rnn")
    with pytest.raises(ValueError, match="trace"):
        m.loss(np.zeros((2, 7, 6)), np.array([0, 1]), trace="full")
