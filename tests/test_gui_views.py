"""The explorer's picker (only misclassified, random), values on hover, and the Reports tab
built on a worker thread and exported - on the untrained preview model, so no training."""

import numpy as np
import pytest

pytest.importorskip("PySide6")


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow

    w = MainWindow(load=False)
    qtbot.addWidget(w)
    w.resize(1500, 920)
    with qtbot.waitSignal(w.dataLoaded, timeout=60000):
        w.load_data("probe", 256)
    qtbot.waitUntil(lambda: w.explorer.trace is not None, timeout=60000)   # the preview
    yield w
    assert w.shutdown()


def test_only_misclassified_and_random(window, qtbot):
    w = window
    e = w.explorer
    e.wrong_check.setChecked(True)
    qtbot.waitUntil(lambda: "val" in e.mistakes, timeout=60000)
    wrong = e.mistakes["val"]
    assert 0 < len(wrong) <= len(w.splits.val)     # a random model gets many wrong
    # the listed images really are misclassified by the current model
    from app.trace_job import ModelCache

    model, norm = ModelCache().model(w.snapshot)
    x = model.input_from_images(norm.apply(np.asarray(w.splits.val.images[wrong[:20]])))
    assert (model.scores(x).argmax(1) != np.asarray(w.splits.val.labels[wrong[:20]])).all()
    assert e.thumbs.count() == min(48, len(wrong))
    for _ in range(5):
        e.random_button.click()
        assert e.index_spin.value() in set(wrong.tolist())
    qtbot.waitUntil(lambda: e.trace["index"] == e.index_spin.value(), timeout=60000)
    item = e.thumbs.item(1)
    e.thumbs.itemClicked.emit(item)                 # a thumbnail click picks that image
    assert e.index_spin.value() == int(wrong[1])
    e.split_combo.setCurrentText("test")
    qtbot.waitUntil(lambda: e.trace["split"] == "test", timeout=60000)


def _scene_pos(plot_widget, x, y):
    vb = plot_widget.getPlotItem().getViewBox()
    from PySide6 import QtCore

    return vb.mapViewToScene(QtCore.QPointF(x, y))


def test_values_on_hover(window, qtbot):
    w = window
    w.show()
    w.tabs.setCurrentWidget(w.explorer)
    e = w.explorer
    qtbot.waitExposed(w)
    e.set_frame(2 * e.T)
    tr = e.trace
    qtbot.wait(100)
    # the hidden state: unit 3 at t = 5
    text = e.heat_frame._hover.describe(_scene_pos(e.heatmap, 4.9, 3.5))
    assert text == f"unit 3, t=5: h = {tr['hidden'][4, 3]:+.3f}"
    # ||dl/dh_t|| at t = 10 (log axis: the view's y is log10 of the value)
    g = tr["dh_norm_t"][9]
    text = e.grad_frame._hover.describe(_scene_pos(e.grad_norm, 10, np.log10(g)))
    assert text == f"this image, t=10: ||dl/dh_t|| = {g:.3e}"
    p = tr["step_probs"][6, tr["label"]]
    text = e.probs_frame._hover.describe(_scene_pos(e.step_probs, 7, p))
    assert text is not None and f"{p:.3f}" in text
    # the eigenvalues of W_hh
    w.tabs.setCurrentWidget(w.vanishing)
    qtbot.wait(100)
    ev = w.vanishing.eigen.eigvals[0]
    text = w.vanishing.eigen_frame._hover.describe(
        _scene_pos(w.vanishing.eigen, ev.real, ev.imag))
    assert text is not None and f"|λ| = {abs(ev):.3f}" in text


def test_reports_tab_builds_and_exports(window, qtbot, tmp_path):
    w = window
    w.tabs.setCurrentWidget(w.reports)
    w.reports.split_combo.setCurrentText("val")
    w.reports.build_button.click()
    assert not w.reports.build_button.isEnabled()        # built in the background
    qtbot.waitUntil(lambda: "report" not in w._workers, timeout=300000)
    assert w.reports.build_button.isEnabled()
    assert set(w.reports.frames) == {"curves", "confusion", "reliability", "tsne", "gallery",
                                     "predictions", "grad_through_time"}
    assert "accuracy" in w.reports.status.text() and "ECE" in w.reports.status.text()
    png, csv = w.reports.frames["confusion"].export_to(tmp_path / "confusion.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    rows = csv.read_text().splitlines()
    assert rows[0] == "series,x,y,value" and len(rows) > 100   # the 10 x 10 matrix
    # every live plot exports too
    for frame in (w.training_panel.loss_frame, w.explorer.heat_frame, w.explorer.probs_frame,
                  w.vanishing.eigen_frame, w.vanishing.profile_frame):
        png, csv = frame.export_to(tmp_path / f"{frame.export_name}.png")
        assert png.stat().st_size > 0 and csv.read_text().startswith("series,x,y,value")


def test_truncated_bptt_cut_is_shown(window, qtbot):
    w = window
    e = w.explorer
    w.model_panel.bptt_spin.setValue(8)      # the preview model is rebuilt with the window
    qtbot.waitUntil(lambda: e.trace is not None and e.trace.get("bptt_cut") == 24,
                    timeout=60000)
    assert e.grad_norm.cut_region.isVisible()
    assert e.grad_norm.cut_region.getRegion() == pytest.approx((0.5, 24.5))
    assert np.all(e.trace["dh_norm_t"][:24] == 0) and np.all(e.trace["dh_norm_t"][24:] > 0)
    e.set_frame(2 * e.T + 1 - 10)            # backward pass at t = 10
    assert "no gradient" in e.narration.text()
    assert "row 25 (the earliest inside the window)" in w.vanishing.ratio_label.text()


def test_traces_follow_training_only_while_their_tab_is_open(window):
    """Each followed snapshot costs a traced pass and a redraw: with the Training tab in front
    only the first and the final model are traced; opening the Explorer catches up."""
    w = window
    preview = dict(w.snapshot)
    asked = []
    real = w.request_trace
    w.request_trace = lambda *a: (asked.append(w.snapshot["step"]), real())

    def snap(step, **kw):
        return {**preview, "untrained": False, "step": step, **kw}

    w.explorer.follow_check.setChecked(True)
    w.tabs.setCurrentWidget(w.training_panel)
    w._on_train_snapshot(snap(10))            # the first trained model
    w._on_train_snapshot(snap(20))            # Training tab in front: skipped
    assert asked == [10]
    w.tabs.setCurrentWidget(w.explorer)       # catches up with step 20
    assert asked == [10, 20]
    w._on_train_snapshot(snap(30))            # Explorer open: followed
    w.tabs.setCurrentWidget(w.training_panel)
    w._on_train_snapshot(snap(40))
    w._on_train_snapshot(snap(50, final=True))  # the end of the run is always traced
    assert asked == [10, 20, 30, 50]
