"""Views that do not mislead or overlap: the clipping factor and whose gradient it is, the
backward factor against the spectrum, the CNN+RNN's receptive field and feature-map steps,
dW_hh per step, one orientation for gradient through time, legends outside the data, read-outs
cleared on leave and new data, a narration of fixed height, eliding titles."""

import numpy as np
import pytest

pytest.importorskip("PySide6")

from core.datasets import load_data  # noqa: E402
from tests.app_traces import untrained_trace  # noqa: E402


@pytest.fixture(scope="module")
def probe():
    return load_data("probe", subset=200)


def _explorer(qtbot, probe, cue=(24, 27)):
    from app.explorer_panel import ExplorerPanel

    e = ExplorerPanel()
    qtbot.addWidget(e)
    e.set_data({"val": probe.val.images, "test": probe.test.images},
               {"val": probe.val.labels, "test": probe.test.labels}, probe.class_names,
               cue_rows=cue)
    return e


def _shown_explorer(qtbot, probe, size=(1100, 700)):
    """An explorer panel shown (exposed) at ``size``."""
    e = _explorer(qtbot, probe)
    e.resize(*size)
    e.show()
    qtbot.waitExposed(e)
    return e


def _scene_rect(item):
    return item.mapRectToScene(item.boundingRect())


# --- clipping ---------------------------------------------------------------------------------
def test_norm_clipping_shows_the_scale_factor_not_percent_clipped(qtbot):
    from app.clip_view import ClipView

    v = ClipView()
    qtbot.addWidget(v)
    rec = {"mode": "norm", "threshold": 1.0, "norm_before": 5.2632, "norm_after": 1.0,
           "fired": True, "cosine": 1.0,
           "per_param": {"W_hh": {"norm_before": 4.0, "norm_after": 0.76,
                                  "fraction_clipped": 1.0}}}
    v.set_record(rec)
    assert "scaled x0.19" in v.summary.text() and "no element zeroed" in v.summary.text()
    assert v.table.horizontalHeaderItem(3).text() == "scaled"
    headers = [v.table.horizontalHeaderItem(j).text() for j in range(3)]
    assert headers == ["param", "before", "after"]
    v.resize(300, 240)
    v.show()
    for j in range(4):      # no column narrower than its contents
        assert v.table.columnWidth(j) >= v.table.sizeHintForColumn(j), j
    assert v.table.item(0, 3).text() == "x0.19"
    assert "100" not in v.table.item(0, 3).text()
    v.set_record(dict(rec, fired=False, norm_before=0.5, norm_after=0.5))
    assert "not clipped" in v.summary.text() and v.table.item(0, 3).text() == "x1"
    value = {"mode": "value", "threshold": 0.1, "norm_before": 2.0, "norm_after": 1.0,
             "fired": True, "cosine": 0.9,
             "per_param": {"W_hh": {"norm_before": 2.0, "norm_after": 1.0,
                                    "fraction_clipped": 0.25}}}
    v.set_record(value)
    assert v.table.horizontalHeaderItem(3).text() == "% clipped"
    assert v.table.item(0, 3).text() == "25.0%"
    v.set_record(rec)
    factor = [r for r in v.export_rows() if r[1] == "scale_factor"]
    assert len(factor) == 1 and float(factor[0][3]) == pytest.approx(1 / 5.2632)


def test_explorer_says_whose_gradient_is_clipped(qtbot, probe):
    e = _explorer(qtbot, probe)
    e.set_trace(untrained_trace(probe, batch_size=64))
    e.set_frame(2 * e.T)                    # end of the backward pass: the clip record
    note = e.clip_view.scope
    assert not note.isHidden()
    assert "one image's gradient" in note.text() and "a batch of 64 images" in note.text()


# --- spectrum against the measured factor -----------------------------------------------------
def test_spectrum_sentence_says_when_saturation_overrides_it():
    from app.vanishing_panel import spectrum_sentence

    T = 10
    shrink = np.r_[np.nan, np.full(T - 1, 0.5)]
    grow = np.r_[np.nan, np.full(T - 1, 1.3)]
    low_bound = np.r_[np.nan, np.full(T - 1, 0.8)]
    high_bound = np.r_[np.nan, np.full(T - 1, 2.0)]
    deriv = np.full(T, 0.3)
    text = spectrum_sentence(1.94, 2.5, shrink, low_bound, deriv)
    assert "> 1 would let the gradient grow" in text and "saturation overrides it" in text
    assert "0.50" in text and "0.80 < 1" in text and "0.30" in text
    text = spectrum_sentence(1.94, 2.5, shrink, high_bound, deriv)
    assert "yet along this image" in text and "does not line up" in text
    assert "agrees" in spectrum_sentence(0.7, 0.9, shrink, low_bound, deriv)
    assert "exploding" in spectrum_sentence(1.5, 2.0, grow, high_bound, np.full(T, 0.95))
    assert "not normal" in spectrum_sentence(0.8, 1.6, grow, high_bound, deriv)
    assert "No backward step" in spectrum_sentence(1.2, 1.3, np.full(T, np.nan), high_bound,
                                                   deriv)


def test_vanishing_tab_shows_the_measured_factor_and_its_sentence(qtbot, probe):
    from app.vanishing_panel import VanishingPanel

    p = VanishingPanel()
    qtbot.addWidget(p)
    tr = untrained_trace(probe)
    p.set_trace(tr)
    x, y = p.factor_plot.measured.getOriginalDataset()
    ok = np.isfinite(tr["factor_measured"])
    np.testing.assert_allclose(np.asarray(y)[ok], tr["factor_measured"][ok])
    np.testing.assert_array_equal(x, np.arange(1, tr["T"] + 1))
    g = tr["dh_norm_t"]
    np.testing.assert_allclose(tr["factor_measured"][1:], g[:-1] / g[1:], rtol=1e-5)
    caption = p.eigen_frame.caption.text()
    assert f"ρ(W_hh) = {tr['spectral_radius']:.2f}" in caption
    assert "each step back multiplies" in caption


# --- CNN+RNN steps ----------------------------------------------------------------------------
def test_cnn_rnn_shows_its_receptive_field_and_says_feature_map_step(qtbot, probe):
    e = _explorer(qtbot, probe)
    tr = untrained_trace(probe, "cnn-rnn")
    e.set_trace(tr)
    e.set_frame(4)                                   # forward, step 4
    band, seen = e.image_view.band.rect(), e.image_view.seen.rect()
    assert (band.top(), band.height()) == (12, 4)
    assert e.image_view.seen.isVisible() and (seen.top(), seen.height()) == (9, 10)
    text = e.narration.text()
    assert "feature-map step 4" in text and "image rows 13–16, seeing 10–19" in text
    assert "row 1" not in text and "last row" not in text
    e.set_frame(2 * e.T)                             # backward, step 1
    assert "feature-map step 1" in e.narration.text()
    assert "last row" not in e.narration.text()
    fv = e.feature_view
    assert fv.colorbar.isVisible() and fv.channels == 4
    assert "mean over the 4 channels" in e.feature_frame.caption.text()
    # the row-RNN reads one row per step: no wider band
    e.set_trace(untrained_trace(probe))
    e.set_frame(5)
    assert not e.image_view.seen.isVisible() and "image row 5" in e.narration.text()


# --- dW_hh in the backward pass -----------------------------------------------------------------
def test_backward_pass_shows_each_steps_part_of_dW_hh(qtbot, probe):
    e = _explorer(qtbot, probe)
    tr = untrained_trace(probe)
    e.set_trace(tr)
    T = e.T
    e.set_frame(2 * T + 1 - 10)                      # backward at t = 10
    x, y = e.grad_norm.weight_curve.getOriginalDataset()
    np.testing.assert_array_equal(x, np.arange(10, T + 1))
    w = tr["dWhh_norm_t"]
    np.testing.assert_allclose(y, w[9:], rtol=1e-6)
    assert e.grad_norm.weight_curve.isVisible()
    assert f"adds {w[9]:.2e} to dW_hh" in e.narration.text()
    names = [label.text for _, label in e.grad_norm.legend.items]
    assert "step t's part of dW_hh" in names


# --- one orientation for gradient through time ---------------------------------------------
def test_gradient_through_time_has_timesteps_along_x_in_the_tab_and_the_report(qtbot):
    from app.vanishing_panel import VanishingPanel
    from report.figures import grad_through_time_figure

    p = VanishingPanel()
    qtbot.addWidget(p)
    rows = np.geomspace(1e-3, 1, 8)[None, :] * np.linspace(1, 2, 4)[:, None]   # (S, T)
    p.add_rows([1, 2, 3, 4], rows)
    p._redraw_history(force=True)
    gp = p.gtt_plot.getPlotItem()
    assert gp.getAxis("bottom").labelText.startswith("timestep")
    assert gp.getAxis("left").labelText == "training step"
    assert p.gtt_image.image.shape == (4, 8)         # rows = training steps, columns = t
    fig = grad_through_time_figure(np.array([1, 2, 3, 4]), rows)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("timestep") and ax.get_ylabel() == "training step"
    assert not gp.getViewBox().state["yInverted"]   # later steps up, as in the figure
    assert ax.get_ylim()[1] > ax.get_ylim()[0]


# --- legends outside the data ---------------------------------------------------------------
def test_legends_sit_outside_the_view_box(qtbot, probe):
    from app.training_panel import TrainingPanel
    from app.vanishing_panel import VanishingPanel

    v = VanishingPanel()
    t = TrainingPanel()
    for w in (v, t):
        qtbot.addWidget(w)
        w.resize(1100, 640)
        w.show()
    v.set_trace(untrained_trace(probe))
    qtbot.wait(50)
    for plot in (v.profile, v.eigen, v.factor_plot, t.loss_plot, t.acc_plot):
        pi = plot.getPlotItem()
        legend = pi.legend
        assert legend.items, plot.objectName()
        box = _scene_rect(pi.getViewBox())
        leg = _scene_rect(legend)
        assert not box.intersects(leg), plot.objectName()
        assert leg.top() >= box.bottom() - 1
        assert plot.mapFromScene(leg.bottomLeft()).y() <= plot.height(), plot.objectName()
    names = [label.text for _, label in t.loss_plot.getPlotItem().legend.items]
    assert "validation loss" in names


# --- read-outs ------------------------------------------------------------------------------------
def test_hover_readout_has_its_own_line_and_is_cleared_on_leave_and_new_data(qtbot, probe):
    from PySide6 import QtCore, QtGui

    e = _shown_explorer(qtbot, probe)
    e.set_trace(untrained_trace(probe))
    e.set_frame(2 * e.T)
    frame = e.heat_frame
    assert frame.layout().indexOf(frame.readout) > frame.layout().indexOf(frame.plot)
    vb = e.heatmap.getPlotItem().getViewBox()
    pos = vb.mapViewToScene(QtCore.QPointF(4.9, 3.5))
    frame._hover._moved((pos,))
    assert frame.readout.full_text().startswith("unit 3, t=5: h = ")
    QtCore.QCoreApplication.sendEvent(e.heatmap.viewport(), QtCore.QEvent(QtCore.QEvent.Leave))
    assert frame.readout.full_text() == ""
    frame._hover._moved((pos,))
    assert frame.readout.full_text() != ""
    e.set_trace(untrained_trace(probe, index=1))             # new data, the mouse is elsewhere
    qtbot.waitUntil(lambda: frame.readout.full_text() == "", timeout=2000)
    # a long read-out elides from the left and keeps the whole text in the tooltip
    frame.readout.setText("x" * 400 + " the end")
    assert frame.readout.is_elided() and frame.readout.shown_text().endswith("the end")
    assert frame.readout.toolTip().endswith("the end")
    assert QtGui.QFontMetrics(frame.readout.font()).height() <= frame.readout.height()


def test_titles_elide_with_a_tooltip(qtbot, probe):
    e = _shown_explorer(qtbot, probe)
    title = e.grad_frame.title_label
    title.resize(120, title.height())
    assert title.is_elided() and title.shown_text().endswith("…")
    assert title.toolTip() == title.full_text()
    title.resize(2000, title.height())
    assert not title.is_elided() and title.toolTip() == ""


# --- narration --------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["row-rnn", "cnn-rnn"])
def test_narration_height_and_the_controls_stay_put_over_all_frames(qtbot, probe, model):
    e = _shown_explorer(qtbot, probe)
    e.set_trace(untrained_trace(probe, model, bptt_window=5))
    heights, slider_y = set(), set()
    for frame in range(1, 2 * e.T + 1):
        e.set_frame(frame)
        qtbot.wait(1)
        heights.add(e.narration.height())
        slider_y.add(e.slider.mapTo(e, e.slider.rect().topLeft()).y())
        doc_height = e.narration.heightForWidth(e.narration.width())
        assert doc_height <= e.narration.height(), e.narration.text()
    assert len(heights) == 1 and len(slider_y) == 1


# --- nothing drawn over anything at a small window ------------------------------------------
def test_explorer_frames_do_not_overlap_at_1100x700(qtbot, probe):
    e = _shown_explorer(qtbot, probe, size=(1100, 600))
    e.set_trace(untrained_trace(probe))
    e.set_frame(2 * e.T)
    qtbot.wait(100)
    frames = [e.image_frame, e.heat_frame, e.probs_frame, e.grad_frame, e.clip_frame]
    root = e.views_area.widget()

    def rect(w):
        r = w.rect()
        return r.translated(w.mapTo(root, r.topLeft()))

    for i, a in enumerate(frames):
        for b in frames[i + 1:]:
            assert not rect(a).intersects(rect(b)), (a.title_label.full_text(),
                                                      b.title_label.full_text())
        inner = [a.plot, a.caption] + ([a.readout] if a.readout.isVisibleTo(a) else [])
        for j, x in enumerate(inner):
            for y in inner[j + 1:]:
                if x.isVisibleTo(a) and y.isVisibleTo(a):
                    assert not rect(x).intersects(rect(y)), a.title_label.full_text()


# --- report image grids ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["gallery", "predictions"])
def test_image_grid_captions_are_legible_and_apart(kind):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from report.figures import gallery_figure, prediction_grid_figure

    names = ["yellow stripes", "green checks", "cyan stripes", "airplane"]
    rng = np.random.default_rng(0)
    n = 24
    images = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(n) % 4
    predicted = (labels + 1) % 4
    if kind == "gallery":
        fig = gallery_figure(images, labels, predicted, np.full(n, 0.99), names)
    else:
        fig = prediction_grid_figure(images, labels, predicted, names)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    titles = [ax.title for ax in fig.axes if ax.title.get_text()]
    assert len(titles) == n
    assert min(t.get_fontsize() for t in titles) >= 9
    boxes = [t.get_window_extent(renderer) for t in titles]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)
