"""The Memory tab: a tiny bench run from the tab fills its plots, Stop stops it, a clicked
point opens that run's model in the Explorer, the plots export; the Explorer's connectivity
strip (rows per image row, class selector, per-pixel overlay)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("PySide6")


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow

    w = MainWindow(load=False)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    yield w
    assert w.shutdown()


def _tiny_form(panel, cells=("rnn:tanh:xavier", "gru"), distances="4,20", epochs=2):
    panel.set_cells(cells)
    panel.distances_edit.setText(distances)
    panel.seeds_spin.setValue(1)
    panel.hidden_spin.setValue(4)
    panel.epochs_spin.setValue(epochs)


def _run_tiny_bench(qtbot, panel):
    from PySide6 import QtCore

    _tiny_form(panel)
    with qtbot.waitSignal(panel.benchFinished, timeout=120000) as done:
        qtbot.mouseClick(panel.run_button, QtCore.Qt.LeftButton)
        assert panel.is_running() and panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=10000)
    return done.args[0]


def test_a_tiny_bench_fills_the_plots(window, qtbot, tmp_path):
    panel = window.memory
    assert window.tabs.tabText(window.tabs.count() - 1) == "Memory"
    assert panel.objectName() == "memoryPanel"
    doc = _run_tiny_bench(qtbot, panel)
    assert doc["complete"] and len(doc["results"]) == 4
    assert panel.run_button.isEnabled() and not panel.stop_button.isEnabled()
    for label in ("rnn-tanh-xavier", "gru"):
        items = panel._items[label]
        x, y = items.points.getData()
        assert sorted(x.tolist()) == [4, 20]
        assert all(0.0 <= v <= 1.0 for v in y)
        mx, my = items.mean.getData()
        assert mx.tolist() == [4, 20]
        cx, cy = items.conn_points.getData()
        assert len(cx) == 2 and all(0.0 <= v <= 1.0 for v in cy)
        gx, gy = items.dh.getData()
        assert len(gx) == 32     # the profile at the selected (longest) distance
    assert panel.selected_distance() == 20
    assert panel._items["rnn-tanh-xavier"].dc.getData()[0] is None or \
        len(panel._items["rnn-tanh-xavier"].dc.getData()[0]) == 0   # no cell state
    # the legend names every cell with its parameter count
    texts = [lab.text for _, lab in panel.acc_legend.items]
    assert any("gru" in t and "params" in t for t in texts)
    # the distance selector moves the gradient profile and the cue band
    before = panel._items["gru"].dh.getData()[1].copy()
    panel.distance_combo.setCurrentIndex(0)
    assert panel.selected_distance() == 4
    assert panel.cue_region.getRegion() == pytest.approx((24.5, 28.5))
    assert not np.allclose(panel._items["gru"].dh.getData()[1], before)
    # exports: PNG + CSV with the points of every cell
    for frame, name in ((panel.acc_frame, "acc"), (panel.grad_frame, "grad"),
                        (panel.conn_frame, "conn")):
        png, csv_path = frame.export_to(tmp_path / f"{name}.png")
        assert png.stat().st_size > 1000
        rows = list(csv.reader(open(csv_path)))
        assert rows[0] == ["series", "x", "y", "value"] and len(rows) > 2
        if name == "acc":
            assert sum(r[0] == "gru runs" for r in rows) == 2


def test_stop_ends_the_bench_early(window, qtbot):
    panel = window.memory
    _tiny_form(panel, cells=("lstm",), distances="4,8,12,16", epochs=50)
    with qtbot.waitSignal(panel.benchFinished, timeout=60000) as done:
        panel.run_button.click()
        qtbot.waitUntil(lambda: "step" in panel.status_label.text(), timeout=30000)
        panel.stop_button.click()
    doc = done.args[0]
    assert doc["stopped"] and not doc["complete"] and len(doc["results"]) == 0
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=10000)
    assert "Stopped" in panel.status_label.text()


def test_clicking_a_point_opens_the_run_in_the_explorer(window, qtbot):
    from PySide6 import QtCore

    panel = window.memory
    _run_tiny_bench(qtbot, panel)
    run_id, result = next((i, r) for i, r in panel.results.items()
                          if r["variant"] == "gru" and r["distance"] == 20)
    window.tabs.setCurrentWidget(panel)
    window.show()
    qtbot.waitExposed(window)
    items = panel._items["gru"]
    spot = next(p for p in items.points.points() if p.data() == run_id)
    vb = panel.acc_plot.getPlotItem().getViewBox()
    scene_pos = vb.mapViewToScene(spot.pos())
    pos = panel.acc_plot.mapFromScene(scene_pos)
    with qtbot.waitSignal(window.traceShown, timeout=60000):
        qtbot.mouseClick(panel.acc_plot.viewport(), QtCore.Qt.LeftButton, pos=pos)
    assert window.tabs.currentWidget() is window.explorer
    assert window.snapshot["config"] == result["trained"]["model_config"]
    tr = window.explorer.trace
    assert tr["cell_type"] == "gru" and tr["hidden"].shape == (32, 4)
    probe = window.splits.info["probe"]
    assert probe["cue_row"] == result["cue_row"] == 8
    assert window.explorer.cue_rows == (8, 11)
    # the model is the run's: its test accuracy on the reloaded data is the recorded one
    from core.models import build_model

    model = build_model(window.snapshot["config"])
    model.params.update(window.snapshot["params"])
    from core.datasets import Normalizer

    norm = Normalizer.from_dict(window.snapshot["normalizer"])
    x = model.input_from_images(norm.apply(window.splits.test.images, dtype=model.dtype))
    acc = float(np.mean(np.argmax(model.scores(x), 1) == window.splits.test.labels))
    assert acc == result["test_acc"]


# -- the Explorer's connectivity strip -----------------------------------------------------------
def _trace(kind, cell="rnn"):
    from app.trace_job import ModelCache, explorer_trace
    from tests.gated_fixtures import gated_snapshot, images

    x, y = images(4)
    names = [f"class {k}" for k in range(10)]
    return explorer_trace(ModelCache(), gated_snapshot(cell, kind=kind, hidden=6), x[0],
                          int(y[0]), "val", 0, names, batch_images=x[1:], batch_labels=y[1:])


@pytest.mark.parametrize("kind,steps", [("row-rnn", 32), ("cnn-rnn", 8)])
def test_connectivity_strip_rows_class_selector_and_overlay(explorer, kind, steps):
    from core.connectivity import connectivity
    from core.datasets import Normalizer
    from core.models import build_model
    from tests.gated_fixtures import gated_snapshot, images

    tr = _trace(kind)
    assert tr["T"] == steps
    explorer.set_trace(tr)
    strip = explorer.conn_strip
    x, _ = strip.curve.getOriginalDataset()
    assert len(x) == 32          # one value per image row, for either model
    y = int(tr["label"])
    assert explorer.conn_class_combo.currentData() == "true"
    assert explorer.connectivity_class() == y
    # the strip shows the core's connectivity of the true class
    snap = gated_snapshot("rnn", kind=kind, hidden=6)
    model = build_model(snap["config"])
    model.params.update(snap["params"])
    norm = Normalizer.from_dict(snap["normalizer"])
    img = images(4)[0][:1]
    want = connectivity(model, norm.apply(img, dtype=model.dtype), [y])["rows"][0]
    np.testing.assert_allclose(strip.values, want, rtol=1e-4)
    # another class: other values
    other = (y + 1) % 10
    explorer.conn_class_combo.setCurrentIndex(explorer.conn_class_combo.findData(other))
    assert explorer.connectivity_class() == other
    assert not np.allclose(strip.values, want)
    np.testing.assert_allclose(strip.values, tr["connectivity"]["rows"][other])
    # the per-pixel overlay toggles
    ov = explorer.conn_overlay
    assert not ov.isVisible() and ov.image is None
    explorer.conn_overlay_check.setChecked(True)
    assert ov.isVisible() and ov.image.shape == (32, 32)
    np.testing.assert_allclose(ov.image, tr["connectivity"]["log_pixels"][other])
    explorer.conn_overlay_check.setChecked(False)
    assert not ov.isVisible()
