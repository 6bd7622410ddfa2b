"""GUI panels on their own (no training): the vanishing tab's words and empty state, the log
axis, W_hh's eigenvalue plot, the probe's cue marking, the clip record export, workers=1."""

import numpy as np
import pytest

pytest.importorskip("PySide6")

from core.config import TrainConfig  # noqa: E402
from core.datasets import load_data  # noqa: E402
from tests.app_traces import untrained_trace  # noqa: E402


@pytest.fixture(scope="module")
def probe():
    return load_data("probe", subset=200)


def test_ratio_sentence_is_graded():
    from app.vanishing_panel import ratio_sentence

    T = 32
    fall = np.geomspace(1e-6, 1.0, T)
    assert "vanished" in ratio_sentence(fall, None)
    assert "0.64" in ratio_sentence(fall, None)  # (1e-6) ** (1/31) per step back
    mild = np.linspace(0.5, 1.0, T)
    text = ratio_sentence(mild, None)
    assert "mildly" in text and "vanished" not in text
    assert "exploding" in ratio_sentence(np.geomspace(100, 1, T), None)
    assert "about as strong" in ratio_sentence(np.ones(T), None)
    cut = np.r_[np.zeros(24), np.linspace(0.9, 1, 8)]
    assert "row 25 (the earliest inside the window)" in ratio_sentence(cut, 24)
    over_positions = ratio_sentence(np.geomspace(1e-2, 1.0, 64), None, "position")
    assert "position 1 is 100x weaker than at the last position" in over_positions
    assert "row" not in over_positions
    assert ratio_sentence(np.zeros(T), None) == "No gradient yet."


def test_decade_axis_labels_only_whole_decades(qapp):
    from app.log_axis import DecadeLogAxis, decade_label, decade_range

    ax = DecadeLogAxis("left")
    labels = ax.logTickStrings([-3.0, np.log10(2e-3), -2.0, np.log10(0.05), 0.0], 1.0, 1.0)
    assert labels == ["10⁻³", "", "0.01", "", "1"]
    assert decade_label(-7) == "10⁻⁷" and decade_label(1) == "10"
    lo, hi = decade_range(0.02, 0.03)
    assert hi - lo >= 1.2 and lo < np.log10(0.02) and hi > np.log10(0.03)


def test_vanishing_tab_empty_state_then_history(qtbot, probe):
    from app.vanishing_panel import VanishingPanel

    p = VanishingPanel()
    qtbot.addWidget(p)
    gp = p.gtt_plot.getPlotItem()
    assert p.gtt_empty.isVisible()
    (x0, x1), (y0, y1) = gp.getViewBox().viewRange()   # timesteps along x, steps along y
    assert (x0, x1) == pytest.approx((0.5, 32.5)) and (y0, y1) == pytest.approx((0, 100))
    tr = untrained_trace(probe)
    p.set_cue_rows((24, 27))
    p.set_trace(tr)
    words = p.ratio_label.text()
    assert "Batch mean:" in words and "This image (#0 of val)" in words
    assert p.profile.cue_steps == (25, 28) and p.profile.cue_region.isVisible()
    assert not p.profile.cursor.isVisible()  # no 'current timestep' in this tab
    rows = np.geomspace(1e-4, 1, 32)[None, :] * np.linspace(1, 2, 5)[:, None]
    p.add_rows([10, 20, 30, 40, 50], rows)
    p._redraw_history(force=True)
    assert not p.gtt_empty.isVisible()
    np.testing.assert_allclose(p.gtt_image.image, np.log10(rows), rtol=1e-6)
    bottom = p.gtt_plot.getPlotItem().getAxis("bottom")
    assert [t for t, _ in bottom._tickLevels[0]] == [1, 4, 8, 12, 16, 20, 24, 28, 32]
    p.clear_history()
    assert p.gtt_empty.isVisible() and p.gtt_image.image is None


def test_eigen_plot_radius_and_verdict(qtbot):
    from app.eigen_plot import EigenPlot

    w = EigenPlot()
    qtbot.addWidget(w)
    ev = np.array([0.5 + 0.5j, 0.5 - 0.5j, -0.3])
    rho = w.set_eigenvalues(ev)
    assert rho == pytest.approx(np.sqrt(0.5))
    assert "0.707" in w.label.text and "inside the unit circle" in w.label.text
    assert "outside" in (w.set_eigenvalues(np.array([1.5, 0.2])) and w.label.text)
    names = [label.text for _, label in w.getPlotItem().legend.items]
    assert names == ["unit circle", "spectral radius", "eigenvalues"]


def test_explorer_marks_the_probe_cue(qtbot, probe):
    from app.explorer_panel import ExplorerPanel

    e = ExplorerPanel()
    qtbot.addWidget(e)
    e.set_data({"val": probe.val.images, "test": probe.test.images},
               {"val": probe.val.labels, "test": probe.test.labels},
               probe.class_names, cue_rows=(24, 27))
    e.set_trace(untrained_trace(probe))
    assert e.image_view.mark.isVisible()
    r = e.image_view.mark.rect()
    assert (r.top(), r.bottom()) == (24, 28)
    assert e.grad_norm.cue_steps == (25, 28)
    assert "rows 25–28" in e.prediction_label.text()
    assert "cue row" in e.image_view._hover(3, 25, np.array([1, 2, 3]))
    assert "cue row" not in e.image_view._hover(3, 2, np.array([1, 2, 3]))
    # CNN+RNN: 4 image rows per step, so the cue is feature row / timestep 7
    e.set_trace(untrained_trace(probe, "cnn-rnn"))
    assert e.grad_norm.cue_steps == (7, 7)
    assert e.feature_view.marked_rows == (6, 6)
    # CIFAR-10: no cue
    e.set_data({"val": probe.val.images, "test": probe.test.images},
               {"val": probe.val.labels, "test": probe.test.labels}, probe.class_names)
    e.set_trace(untrained_trace(probe))
    assert not e.image_view.mark.isVisible() and not e.grad_norm.cue_region.isVisible()


def test_clip_record_exports_png_and_csv(qtbot, probe, tmp_path):
    from app.explorer_panel import ExplorerPanel

    e = ExplorerPanel()
    qtbot.addWidget(e)
    e.set_data({"val": probe.val.images, "test": probe.test.images},
               {"val": probe.val.labels, "test": probe.test.labels}, probe.class_names)
    tr = untrained_trace(probe)
    e.set_trace(tr)
    e.set_frame(2 * e.T)  # end of the backward pass: the clip record is shown
    assert e.clip_view.record == tr["clip"]
    png, csv = e.clip_frame.export_to(tmp_path / "clip.png")
    assert png.stat().st_size > 0
    lines = csv.read_text().splitlines()
    assert lines[0] == "series,x,y,value"
    assert f"global,norm_before,,{tr['clip']['norm_before']}" in lines
    assert any(ln.startswith("W_hh,fraction_clipped,,") for ln in lines)


def test_data_panel_describes_the_probe_from_row_one(qtbot):
    from app.data_panel import DataPanel, describe

    splits = load_data("probe", subset=100, probe_params={"cue_row": 2})
    assert "image rows 3–6" in describe(splits)
    p = DataPanel()
    qtbot.addWidget(p)
    p.set_splits(splits, "probe")
    assert p.cue_spin.value() == 3 and "rows 3–6" in p.dataset_label.text()
    p.cue_spin.setValue(1)
    assert p.probe_params() == {"cue_row": 0}


def test_app_trains_on_one_thread_whatever_the_config_says(qtbot):
    from app.model_panel import ModelPanel
    from app.train_worker import TrainWorker, app_resume_overrides

    p = ModelPanel()
    qtbot.addWidget(p)
    p.set_config(TrainConfig(hidden=16, workers=3))
    assert p.config().workers == 1
    assert TrainWorker(TrainConfig(workers=4)).config.workers == 1
    assert app_resume_overrides() == {"workers": 1}


def test_invalid_settings_are_explained_in_place(qtbot):
    from app.main_window import MainWindow

    w = MainWindow(load=False)
    qtbot.addWidget(w)
    mp = w.model_panel
    mp.lr_edit.setText("fast")
    assert "learning rate 'fast' is not a number" in mp.error_label.text()
    assert not mp.is_valid() and not w.toolbar.train_button.isEnabled()
    mp.lr_edit.setText("-1")
    assert mp.error_label.text() and "lr" in mp.error_label.text()
    mp.lr_edit.setText("0.001")
    assert mp.error_label.text() == "" and mp.is_valid()
    mp.activation_combo.setCurrentIndex(mp.activation_combo.findData("relu"))
    mp.clip_combo.setCurrentIndex(mp.clip_combo.findData("none"))
    assert "relu without clipping" in mp.warning_label.text() and mp.is_valid()
    w.start_training()  # no data yet: nothing happens, no exception
    assert not w.is_training()
    assert w.shutdown()


def test_key_widgets_have_their_object_names(qtbot):
    from PySide6 import QtWidgets

    from app.main_window import MainWindow

    w = MainWindow(load=False)
    qtbot.addWidget(w)
    for name in ("datasetLabel", "downloadButton", "modelSelect", "trainButton", "pauseButton",
                 "stopButton", "lossPlot", "imageView", "timestepSlider", "playButton",
                 "hiddenHeatmap", "stepProbsPlot", "gradNormPlot", "clipView", "eigenPlot"):
        found = w.findChildren(QtWidgets.QWidget, name)
        assert len(found) == 1, name
    assert w.shutdown()


def test_training_curves_smooth_over_a_tenth_of_an_epoch(qtbot):
    from app.training_panel import EMA, TrainingPanel, ema_weight

    assert ema_weight(None) == EMA and ema_weight(80) == pytest.approx(1 - 1 / 8)
    assert ema_weight(10) == pytest.approx(0.8) and ema_weight(10000) == pytest.approx(0.98)
    p = TrainingPanel()
    qtbot.addWidget(p)
    p.set_steps_per_epoch(50)            # window of 5 steps
    p.add_steps([{"step": i + 1, "loss": 1.0 if i < 10 else 0.0, "acc": 0.5,
                  "clip": {"fired": i % 4 == 0}} for i in range(40)])
    p.flush()
    _, smooth = p.loss_smooth.getOriginalDataset()
    assert smooth[-1] < 0.01     # caught up within 30 steps (a 0.95 average is still 0.2)
    assert p.n_clipped == 10 and "<b>10 of 40</b> steps (25.0%)" in p.stats.text()
    p.add_steps([{"step": 41 + i, "loss": 0.0, "clip": {}} for i in range(360)])
    p.flush()
    assert "<b>10 of 400</b> steps (2.5%)" in p.stats.text()   # rare clips are not '0%'

    p.load_history({"steps": [{"step": s, "epoch": s / 200, "loss": 1.0} for s in (1, 2, 3)]})
    assert p.ema == pytest.approx(1 - 1 / 20)
    names = [label.text for _, label in p.loss_plot.getPlotItem().legend.items]
    assert len(names) == len(set(names)) and "clipping fired" in names


def test_training_curves_redraw_once_per_interval_without_losing_steps(qtbot):
    """Step batches arrive up to 20 times a second; redrawing each costs the training thread
    the GIL, so batches arriving within REFRESH_MS share one redraw."""
    from app.training_panel import REFRESH_MS, TrainingPanel

    p = TrainingPanel()
    qtbot.addWidget(p)
    draws = []
    set_data = p.loss_raw.setData
    p.loss_raw.setData = lambda *a, **kw: (draws.append(len(a[0]) if a else 0),
                                           set_data(*a, **kw))
    for i in range(10):
        p.add_steps([{"step": i + 1, "loss": 1.0 / (i + 1), "acc": 0.5, "clip": {}}])
    assert draws == []
    qtbot.waitUntil(lambda: len(draws) == 1, timeout=5 * REFRESH_MS)
    qtbot.wait(2 * REFRESH_MS)
    assert draws == [10]
    x, y = p.loss_raw.getOriginalDataset()
    assert list(x) == list(range(1, 11)) and y[-1] == pytest.approx(0.1)


def test_a_config_shows_its_preset_without_reapplying_it(qtbot):
    from app.model_panel import ModelPanel

    p = ModelPanel()
    qtbot.addWidget(p)
    cfg = TrainConfig.from_preset("best-cnn", lr=0.05, epochs=7)   # as a checkpoint holds it
    p.set_config(cfg)
    assert p.preset_combo.currentData() == "best-cnn"
    got = p.config()
    assert (got.lr, got.epochs, got.optimizer, got.model) == (0.05, 7, "nesterov", "cnn-rnn")


def test_live_curves_widen_with_headroom_and_fit_a_finished_run(qtbot):
    from app.training_panel import TrainingPanel, nice_ceiling

    assert [nice_ceiling(v) for v in (7, 10, 11, 151, 2400, 0.3)] == [10, 10, 20, 200, 2500, 0.5]
    p = TrainingPanel()
    qtbot.addWidget(p)
    vb = p.loss_plot.getPlotItem().getViewBox()
    p.add_steps([{"step": i + 1, "loss": 2.0, "acc": 0.5, "clip": {}} for i in range(100)])
    p.flush()
    assert vb.viewRange()[0][1] == pytest.approx(200)      # 1.25 x 100 -> 200
    p.add_steps([{"step": i + 101, "loss": 1.0, "acc": 0.5, "clip": {}} for i in range(50)])
    p.flush()
    assert vb.viewRange()[0][1] == pytest.approx(200)      # still fits: the axes stay put
    p.set_finished("done")
    assert vb.viewRange()[0][1] == pytest.approx(153)      # a finished run fits its data
    vb.setXRange(10, 20, padding=0)
    vb.sigRangeChangedManually.emit(vb.state["mouseEnabled"])  # as a mouse zoom does
    p.add_steps([{"step": 151, "loss": 1.0, "acc": 0.5, "clip": {}}])
    p.flush()
    assert vb.viewRange()[0] == pytest.approx([10, 20])     # the user's zoom is kept
