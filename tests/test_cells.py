"""core.cells: the vanilla cell behind the interface, the registry, and a second cell plugged
in without touching the models."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import cells as cells_module
from core import rnn_layers
from core.cells import Cell, SeqGrads, get_cell
from core.errors import ConfigError
from core.models import CNNRNN, RowRNN

ROOT = Path(__file__).resolve().parents[1]
T, N, D, H = 5, 3, 4, 6


def test_vanilla_cell_is_the_rnn_layer_module():
    cell = get_cell("rnn")
    assert cell.name == "rnn" and cell.blocks == ("a",)
    assert cell.forward is rnn_layers.rnn_forward_tm
    assert cell.backward is rnn_layers.rnn_backward_tm
    assert cells_module.CELLS["rnn"] is cell


def test_vanilla_cell_shapes_through_the_interface():
    cell = get_cell("rnn")
    rng = np.random.default_rng(0)
    G = len(cell.blocks)
    p = cell.init(rng, D, H, np.float64, init="orthogonal", gain=0.9, activation="tanh")
    assert {k: v.shape for k, v in p.items()} == {"W_xh": (D, G * H), "W_hh": (H, G * H),
                                                  "b_h": (G * H,)}
    x = rng.standard_normal((T, N, D))
    h, cache = cell.forward(x, None, p["W_xh"], p["W_hh"], p["b_h"], activation="tanh")
    assert h.shape == (T, N, H)
    g = cell.backward(cache, dh_last=rng.standard_normal((N, H)), bptt_cut=2, need_dx=True)
    assert isinstance(g, SeqGrads) and g.cut == 2
    assert g.dx.shape == (T, N, D) and g.dh.shape == (T, N, H)
    assert g.dWx.shape == (D, G * H) and g.dWh.shape == (H, G * H) and g.db.shape == (G * H,)
    assert set(g.extra) == {"da"} and g.extra["da"].shape == (T, N, G * H)
    assert np.all(g.dh[:2] == 0) and np.all(g.extra["da"][:2] == 0) and np.any(g.dh[2:] != 0)
    assert cell.backward(cache, dh_last=np.ones((N, H)), need_dx=False).dx is None
    assert cell.trace(cache, g) == {}


def test_vanilla_cell_init_rejects_bad_options():
    cell = get_cell("rnn")
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="activation"):
        cell.init(rng, D, H, np.float32, activation="gelu")
    with pytest.raises(ConfigError, match="init"):
        cell.init(rng, D, H, np.float32, init="glorot")


def test_unknown_cell_is_a_config_error():
    with pytest.raises(ConfigError, match="cell"):
        get_cell("no-such-cell")
    with pytest.raises(ConfigError, match="cell"):
        RowRNN(cell="no-such-cell")


@pytest.mark.parametrize("first", ["core.rnn_layers", "core.cells", "core.models"])
def test_any_import_order_works(first):
    code = (f"import {first}\n"
            "from core.cells import CELLS\n"
            "assert CELLS['rnn'].backward.__module__ == 'core.rnn_layers'\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_a_registered_cell_drives_both_models_and_its_trace_extras(monkeypatch):
    """A new cell is a registry entry: the models take it by name, its trace extras reach
    the Trace, and the model config names it."""

    def trace_gates(cache, grads):
        return {"gates": {"a": np.ascontiguousarray(cache["a"].transpose(1, 0, 2))}}

    twin = dataclasses.replace(get_cell("rnn"), name="rnn-twin", trace=trace_gates)
    monkeypatch.setitem(cells_module.CELLS, "rnn-twin", twin)
    rng = np.random.default_rng(4)
    for make, X in ((lambda c: RowRNN(input_dim=6, hidden_dim=5, num_classes=3, cell=c,
                                      dtype=np.float64, seed=2),
                     rng.standard_normal((N, 7, 6))),
                    (lambda c: CNNRNN(channels=(2, 3), hidden_dim=4, num_classes=3, cell=c,
                                      dtype=np.float64, seed=2),
                     rng.standard_normal((N, 32, 32, 3)))):
        y = rng.integers(0, 3, N)
        ref, new = make("rnn"), make("rnn-twin")
        assert new.config["cell"] == "rnn-twin" and ref.config["cell"] == "rnn"
        l_ref, g_ref, tr_ref = ref.loss(X, y, trace=True)
        l_new, g_new, tr_new = new.loss(X, y, trace=True)
        assert l_new == l_ref and tr_ref.gates is None
        for k in g_ref:
            np.testing.assert_array_equal(g_new[k], g_ref[k])
        a = tr_new.gates["a"]
        assert a.shape == tr_new.hidden.shape
        np.testing.assert_allclose(np.tanh(a), tr_new.hidden, rtol=1e-12)
        copy = tr_new.copy()
        copy.gates["a"][0, 0, 0] += 1
        assert copy.gates["a"][0, 0, 0] != a[0, 0, 0]


def test_cell_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_cell("rnn").name = "x"
    assert {f.name for f in dataclasses.fields(Cell)} == {
        "name", "blocks", "forward", "backward", "init", "trace", "init_options",
        "forward_options"}


def test_gated_cells_are_registered_with_their_blocks_and_options():
    from core import gru_layers, lstm_layers

    assert list(cells_module.CELLS) == ["rnn", "lstm", "gru"]
    lstm, gru = get_cell("lstm"), get_cell("gru")
    assert lstm.blocks == ("i", "f", "o", "g") and gru.blocks == ("z", "r", "n")
    assert lstm.forward is lstm_layers.lstm_forward_tm
    assert gru.backward is gru_layers.gru_backward_tm
    assert lstm.init_options == ("forget_bias",) and lstm.forward_options == ()
    assert gru.init_options == ("forget_bias",) and gru.forward_options == ()
    assert get_cell("rnn").init_options == get_cell("rnn").forward_options == ("activation",)
    rng = np.random.default_rng(0)
    for cell in (lstm, gru):
        G = len(cell.blocks)
        p = cell.init(rng, D, H, np.float64, init="orthogonal")
        assert {k: v.shape for k, v in p.items()} == {"W_xh": (D, G * H), "W_hh": (H, G * H),
                                                      "b_h": (G * H,)}
        x = rng.standard_normal((T, N, D))
        h, cache = cell.forward(x, None, p["W_xh"], p["W_hh"], p["b_h"])
        g = cell.backward(cache, dh_last=rng.standard_normal((N, H)), bptt_cut=2)
        assert isinstance(g, SeqGrads) and g.cut == 2 and g.dh0 is None
        tr = cell.trace(cache, g)
        assert set(tr["gates"]) == set(cell.blocks)
        assert all(a.shape == (N, T, H) for a in tr["gates"].values())
