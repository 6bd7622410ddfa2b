"""The app's views of gated cells (LSTM, GRU) and of the CNN+RNN reading 64 map positions:
the model form's cell and sequence selectors, the explorer's heatmap quantities, ||dl/dc_t||
and narration, the vanishing tab's gate saturation and memory lengths, their exports.

Traces come from the app's own path (app/trace_job.explorer_trace) over models built with the
real LSTM / GRU layers (tests/gated_fixtures.py)."""

import csv
import dataclasses

import numpy as np
import pytest

pytest.importorskip("PySide6")

from tests.gated_fixtures import gated_cells, gated_snapshot, images  # noqa: E402

H = 12


def _trace(cell, kind="row-rnn", batch=6):
    from app.trace_job import ModelCache, explorer_trace

    snap = gated_snapshot(cell, kind=kind, hidden=H) if cell != "rnn" else None
    if snap is None:
        from app.trace_job import snapshot_of
        from core.datasets import Normalizer
        from core.models import RowRNN

        x, _ = images(10, seed=3)
        snap = snapshot_of(RowRNN(hidden_dim=H), Normalizer("per-channel").fit(x),
                           {"clip": "norm"}, 0, "random rnn")
    x, y = images(batch + 1)
    names = [f"class {k}" for k in range(10)]
    return explorer_trace(ModelCache(), snap, x[0], int(y[0]), "val", 0, names,
                          batch_images=x[1:], batch_labels=y[1:])


@pytest.fixture
def gated(monkeypatch):
    gated_cells(monkeypatch)


@pytest.fixture
def vanishing(qtbot):
    from app.vanishing_panel import VanishingPanel

    v = VanishingPanel()
    qtbot.addWidget(v)
    v.resize(1300, 800)
    return v


def _combo_keys(combo):
    return [combo.itemData(i) for i in range(combo.count())]


# --- the trace job ------------------------------------------------------------------------------
def test_trace_job_passes_the_gated_quantities_through(gated):
    from core.gate_stats import gate_stats

    tr = _trace("lstm")
    T = tr["T"]
    assert tr["cell_type"] == "lstm" and tr["eigvals"] is None
    assert set(tr["gates"]) == {"i", "f", "o", "g"}
    assert tr["cell"].shape == tr["dc"].shape == (T, H)
    np.testing.assert_allclose(tr["dc_norm_t"], np.linalg.norm(tr["dc"], axis=1), rtol=1e-5)
    assert tr["batch_dc_norm"].shape == (T,)
    stats = tr["gate_stats"]
    assert set(stats["left"]) == {"i", "f", "o"} and stats["keep_gate"] == "f"
    assert stats["samples"] == 6 * T
    # the statistics are those of core.gate_stats over the batch
    from app.trace_job import ModelCache

    snap = gated_snapshot("lstm", hidden=H)
    model, norm = ModelCache().model(snap)
    x, y = images(7)
    _, _, trb = model.loss(model.input_from_images(norm.apply(x[1:], dtype=model.dtype)), y[1:],
                           trace=True)
    np.testing.assert_allclose(stats["memory_steps"], gate_stats("lstm", trb.gates).memory_steps)
    assert np.isnan(tr["factor_sigma"]).all() and np.isfinite(tr["factor_measured"][1:]).any()
    g = _trace("gru")
    assert set(g["gates"]) == {"z", "r", "n"} and "cell" not in g and "dc_norm_t" not in g
    assert g["gate_stats"]["keep_gate"] == "z"
    r = _trace("rnn")
    assert r["cell_type"] == "rnn" and "gates" not in r and r["gate_stats"] is None
    assert r["eigvals"].shape == (H,)


# --- the explorer -------------------------------------------------------------------------------
def test_heatmap_selector_offers_each_cells_quantities(gated, explorer):
    e = explorer
    e.set_trace(_trace("lstm"))
    assert _combo_keys(e.quantity_combo) == ["h", "c", "i", "f", "o", "g"]
    assert e.quantity_combo.isVisibleTo(e)
    e.set_trace(_trace("gru"))
    assert _combo_keys(e.quantity_combo) == ["h", "z", "r", "n"]
    e.set_trace(_trace("rnn"))
    assert _combo_keys(e.quantity_combo) == ["h"]
    assert not e.quantity_combo.isVisibleTo(e)


def test_heatmap_image_and_scale_follow_the_selected_quantity(gated, explorer):
    e = explorer
    tr = _trace("lstm")
    e.set_trace(tr)
    e.set_frame(tr["T"])                     # the whole forward pass is drawn
    h_img = np.array(e.heatmap.image_item.image, copy=True)
    np.testing.assert_allclose(h_img, tr["hidden"].T, rtol=1e-6)
    e.quantity_combo.setCurrentIndex(e.quantity_combo.findData("f"))
    f_img = e.heatmap.image_item.image
    np.testing.assert_allclose(f_img, tr["gates"]["f"].T, rtol=1e-6)
    assert not np.allclose(f_img, h_img)
    assert e.heatmap.levels == (0.0, 1.0)    # a gate: 0..1
    assert "survives each step" in e.heat_frame.caption.text()   # the forget gate's sentence
    e.quantity_combo.setCurrentIndex(e.quantity_combo.findData("c"))
    lo, hi = e.heatmap.levels
    assert lo == -hi and hi == pytest.approx(float(np.abs(tr["cell"]).max()))
    e.quantity_combo.setCurrentIndex(e.quantity_combo.findData("g"))
    assert e.heatmap.levels == (-1.0, 1.0)
    # a new trace of the same cell keeps the chosen quantity
    e.set_trace(_trace("lstm"))
    assert e.quantity_combo.currentData() == "g" and e.heatmap.quantity == "g"


def test_cell_gradient_curve_only_for_the_lstm(gated, explorer):
    e = explorer
    tr = _trace("lstm")
    e.set_trace(tr)
    e.set_frame(2 * tr["T"])                 # the backward pass has reached t = 1
    gp = e.grad_norm
    assert gp.cell_curve.isVisible()
    x, y = gp.cell_curve.getOriginalDataset()
    np.testing.assert_allclose(y, tr["dc_norm_t"], rtol=1e-6)
    labels = [label.text for _, label in gp.legend.items]
    assert "||dl/dc_t|| (cell state)" in labels
    assert "dl/dc_t" in e.grad_frame.title_label.full_text()
    for cell in ("gru", "rnn"):
        e.set_trace(_trace(cell))
        e.set_frame(2 * e.T)
        assert not gp.cell_curve.isVisible()
        assert "||dl/dc_t|| (cell state)" not in [lab.text for _, lab in gp.legend.items]
        assert "dl/dc_t" not in e.grad_frame.title_label.full_text()


def test_narration_says_what_the_keep_gate_did(gated, explorer):
    e = explorer
    tr = _trace("lstm")
    e.set_trace(tr)
    t = 5
    e.set_frame(t)                           # forward, step 5
    text = e.narration.text()
    f = tr["gates"]["f"][t - 1]
    assert f"mean f_{t} = {f.mean():.2f}" in text
    c_prev = tr["cell"][t - 2].astype(np.float64)
    kept = np.linalg.norm(f * c_prev) / np.linalg.norm(c_prev)
    assert f"keeps {kept:.0%} of c_{t - 1}" in text
    e.set_frame(1)
    assert "c_0 = 0" in e.narration.text()
    e.set_frame(2 * tr["T"] + 1 - t)         # backward, step 5
    assert f"||dl/dc_{t}|| = {tr['dc_norm_t'][t - 1]:.2e}" in e.narration.text()
    g = _trace("gru")
    e.set_trace(g)
    e.set_frame(t)
    assert f"mean z_{t} = {g['gates']['z'][t - 1].mean():.2f}" in e.narration.text()


def _positions_trace():
    """A CNN+RNN trace re-cut to the 64-position reading (T = 64, D = C2), as the trace job
    gives it for sequence='positions'."""
    from core.timesteps import step_bands

    tr = _trace("rnn")
    tr = dict(tr)
    rng = np.random.default_rng(0)
    T, K, C2 = 64, 10, 6
    bands = step_bands("cnn-rnn", 32, "positions", 32)
    tr.update({
        "kind": "cnn-rnn", "sequence": "positions", "T": T,
        "hidden": np.tanh(rng.normal(size=(T, H))).astype(np.float32),
        "step_probs": np.full((T, K), 0.1), "dh_norm_t": np.geomspace(1e-4, 1.0, T),
        "dh": rng.normal(size=(T, H)), "seq": rng.uniform(0, 1, (T, C2)).astype(np.float32),
        "factor_measured": np.full(T, 0.8), "factor_sigma": np.full(T, 0.9),
        "mean_derivative": np.full(T, 0.5), "dWhh_norm_t": np.full(T, 1e-3),
        "rows_per_step": bands.rows_per_step, "step_rows": bands.rows, "seen_rows": bands.seen,
        "step_cols": bands.cols, "seen_cols": bands.seen_cols, "map_rows": bands.map_rows,
        "map_cols": bands.map_cols})
    return tr


def test_positions_band_follows_the_receptive_field(explorer):
    e = explorer
    tr = _positions_trace()
    e.set_trace(tr)
    t = 8 * 2 + 5 + 1                        # 1-based: map row 2, column 5
    e.set_frame(t)
    assert e.image_view.band_rect() == (20, 8, 4, 4)      # the 4x4 patch
    seen = e.image_view.seen.rect()
    assert (seen.x(), seen.y(), seen.width(), seen.height()) == (17, 5, 10, 10)
    assert e.image_view.dim_right.isVisible()             # the rest of its band comes later
    assert e.feature_view.band_rect() == (5, 2, 1, 1)      # one cell of the 8x8 map
    assert "map position (3, 6)" in e.narration.text()
    assert "4x4 patch" in e.feature_frame.caption.text()
    # rows: the band spans the image's width, as before
    e.set_trace(_trace("rnn"))
    e.set_frame(3)
    assert e.image_view.band_rect() == (0, 2, 32, 1)
    assert not e.image_view.dim_right.isVisible()


# --- the vanishing tab --------------------------------------------------------------------------
@pytest.mark.parametrize("cell,gates", [("lstm", 3), ("gru", 2)])
def test_saturation_scatter_has_one_point_per_unit_and_gate(gated, vanishing, cell, gates):
    v = vanishing
    tr = _trace(cell)
    v.set_trace(tr)
    assert v.saturation.point_count() == H * gates
    for name, item in v.saturation.points.items():
        x, y = item.getData()
        np.testing.assert_allclose(x, tr["gate_stats"]["left"][name])
        np.testing.assert_allclose(y, tr["gate_stats"]["right"][name])
    assert v.saturation_frame.isVisibleTo(v) and v.memory_frame.isVisibleTo(v)
    assert not v.eigen.isVisibleTo(v)
    assert "vanilla RNN only" in v.eigen_frame.title_label.full_text()
    keep = "forget gate" if cell == "lstm" else "update gate"
    assert keep in v.eigen_frame.caption.text()
    m = np.minimum(tr["gate_stats"]["memory_steps"], 1e6)
    np.testing.assert_allclose(v.memory.curve.getOriginalDataset()[1], np.sort(m)[::-1])
    assert (v.profile.cell_curve.isVisible()) == (cell == "lstm")
    # back to the vanilla cell: the spectrum returns, the gate plots go
    v.set_trace(_trace("rnn"))
    assert v.eigen.isVisibleTo(v) and not v.saturation_frame.isVisibleTo(v)
    assert v.eigen_frame.title_label.full_text() == "Eigenvalues of W_hh"
    assert v.factor_plot.bound.isVisible()


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_gate_plots_export_png_and_csv(gated, vanishing, explorer, tmp_path):
    v = vanishing
    tr = _trace("lstm")
    v.set_trace(tr)
    png, csv_path = v.saturation_frame.export_to(tmp_path / "sat.png")
    assert png.stat().st_size > 0 and png.read_bytes()[:4] == b"\x89PNG"
    rows = _csv_rows(csv_path)
    assert rows[0] == ["series", "x", "y", "value"] and len(rows) == 1 + 3 * H
    assert {r[0] for r in rows[1:]} == {"i (input)", "f (forget)", "o (output)"}
    png, csv_path = v.memory_frame.export_to(tmp_path / "mem.png")
    rows = _csv_rows(csv_path)
    mem = [r for r in rows if r[0] == "memory_steps"]
    assert len(mem) == H
    np.testing.assert_allclose([float(r[2]) for r in mem], tr["gate_stats"]["memory_steps"],
                               rtol=1e-6)
    assert png.read_bytes()[:4] == b"\x89PNG"
    explorer.set_trace(tr)
    explorer.set_frame(2 * tr["T"])
    png, csv_path = explorer.grad_frame.export_to(tmp_path / "grad.png")
    series = {r[0] for r in _csv_rows(csv_path)[1:]}
    assert "dl/dc_t this image" in series
    explorer.quantity_combo.setCurrentIndex(explorer.quantity_combo.findData("f"))
    png, csv_path = explorer.heat_frame.export_to(tmp_path / "heat.png")
    rows = _csv_rows(csv_path)
    assert len(rows) == 1 + tr["T"] * H
    assert float(rows[1][3]) == pytest.approx(float(tr["gates"]["f"][0, 0]), rel=1e-6)


# --- the model form -----------------------------------------------------------------------------
@pytest.fixture
def panel(qtbot, monkeypatch):
    """The model form, on a TrainConfig with the fields 'cell' and 'sequence' (this build's own
    if it has them, else one extended with them) so the form's output can be read back."""
    import app.model_panel as mp
    from core.config import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    if not {"cell", "sequence"} <= names:
        @dataclasses.dataclass
        class GatedTrainConfig(TrainConfig):
            cell: str = "rnn"
            sequence: str = "rows"

        monkeypatch.setattr(mp, "TrainConfig", GatedTrainConfig)
        monkeypatch.setattr(mp, "TRAIN_FIELDS", names | {"cell", "sequence"})
    p = mp.ModelPanel()
    qtbot.addWidget(p)
    return p


def test_cell_and_sequence_reach_the_train_config(panel):
    p = panel
    assert _combo_keys(p.cell_combo) == ["rnn", "lstm", "gru"]
    assert _combo_keys(p.sequence_combo) == ["rows", "positions"]
    p.model_combo.setCurrentIndex(p.model_combo.findData("row-rnn"))
    assert p.activation_combo.isEnabled() and not p.sequence_combo.isEnabled()
    p.cell_combo.setCurrentIndex(p.cell_combo.findData("lstm"))
    assert not p.activation_combo.isEnabled()
    cfg = p.config()
    assert cfg.cell == "lstm" and cfg.sequence == "rows"
    p.model_combo.setCurrentIndex(p.model_combo.findData("cnn-rnn"))
    assert p.sequence_combo.isEnabled()
    p.sequence_combo.setCurrentIndex(p.sequence_combo.findData("positions"))
    assert p.bptt_spin.maximum() == 64
    p.cell_combo.setCurrentIndex(p.cell_combo.findData("gru"))
    cfg = p.config()
    assert (cfg.model, cfg.cell, cfg.sequence) == ("cnn-rnn", "gru", "positions")
    # the row-RNN has no positions: the form says rows whatever the disabled combo shows
    p.model_combo.setCurrentIndex(p.model_combo.findData("row-rnn"))
    assert p.config().sequence == "rows" and p.bptt_spin.maximum() == 32
    # a loaded config shows its cell; locking and unlocking keeps the activation disabled
    p.set_config(cfg)
    assert p.cell_combo.currentData() == "gru" and p.sequence_combo.currentData() == "positions"
    p.set_editable(False)
    p.set_editable(True)
    assert not p.activation_combo.isEnabled() and p.sequence_combo.isEnabled()


def test_irnn_preset_is_offered(panel):
    p = panel
    labels = [p.preset_combo.itemText(i) for i in range(p.preset_combo.count())]
    assert labels.count("IRNN (Le et al. 2015)") == 1
    p.preset_combo.setCurrentIndex(labels.index("IRNN (Le et al. 2015)"))
    cfg = p.config()
    assert (cfg.cell, cfg.activation, cfg.init) == ("rnn", "relu", "identity")
    assert p.activation_combo.isEnabled()


def test_a_cell_the_engine_lacks_is_a_form_error(qtbot, monkeypatch):
    import app.model_panel as mp

    monkeypatch.setattr(mp, "TRAIN_FIELDS", mp.TRAIN_FIELDS - {"cell", "sequence"})
    p = mp.ModelPanel()
    qtbot.addWidget(p)
    p.cell_combo.setCurrentIndex(p.cell_combo.findData("lstm"))
    assert "cell 'lstm' is not available" in p.error_label.text()
    assert not p.is_valid()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_narration_fits_its_fixed_lines(gated, qtbot, cell):
    """The gate sentences make the narration longer; at a 1100 px wide explorer every frame's
    text must still fit the fixed height (the playback controls above never move)."""
    from app.explorer_panel import ExplorerPanel

    e = ExplorerPanel()
    qtbot.addWidget(e)
    e.split_sizes = {"val": 10}
    e.index_spin.setRange(0, 9)
    e.resize(1100, 700)
    e.show()
    qtbot.waitExposed(e)
    e.set_trace(_trace(cell))
    heights = set()
    for frame in range(1, 2 * e.T + 1):
        e.set_frame(frame)
        heights.add(e.narration.height())
        assert e.narration.heightForWidth(e.narration.width()) <= e.narration.height(), \
            e.narration.text()
    assert len(heights) == 1
