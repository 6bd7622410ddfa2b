"""||dl/dh_t||: how much of the loss gradient reaches the hidden state at each timestep.

Backpropagation through time starts at the last row (t = T) and walks back to t = 1; the plot
reveals the norms in that order so the curve grows leftwards. The y axis is logarithmic: a
straight downward slope to the left means the gradient shrinks by the same factor every step
(vanishing); upward means exploding. Timesteps cut off by truncated BPTT get no gradient and are
shaded. On the memory-probe task the timesteps that read the cue rows are shaded green: the
gradient that reaches them is what teaches the network to remember the cue.

In the explorer a second curve shows where the weight gradient comes from: the norm of step t's
term h_{t-1}^T da_t of dW_hh (the terms of all steps add up to dW_hh). A step whose hidden
gradient has vanished adds almost nothing to the weights, whatever its input was.

For the LSTM a second gradient is drawn on the same axis: ||dl/dc_t||, the part carried by the
cell state. Backwards along c it is only multiplied by the forget gate f_t (elementwise, no
weight matrix, no squashing derivative), the "constant error carousel" that keeps it alive where
||dl/dh_t|| of a vanilla cell would have vanished. Every curve's legend entry sits under the
plot, never over its data.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from app.log_axis import DecadeLogAxis, decade_range
from app.plot_style import (
    ACCENT,
    CUE_TEXT,
    MUTED,
    SUBTLE,
    THIS_IMAGE,
    WEIGHT_GRAD,
    legend_below,
)

CELL_GRAD = "#e65100"   # ||dl/dc_t||, the LSTM's cell-state gradient


def _positive(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).copy()
    v[~(v > 0)] = np.nan  # zeros cannot be drawn on a log axis
    return v


class GradNormPlot(pg.PlotWidget):
    """``set_norms(norms (T,), cut, batch_mean=None, weight_norms=None)``, then
    ``reveal_from(t)`` per frame."""

    def __init__(self, object_name: str = "gradNormPlot", parent=None, cursor: bool = True,
                 legend_columns: int = 2):
        super().__init__(parent=parent, axisItems={"left": DecadeLogAxis("left")})
        self.setObjectName(object_name)
        pi = self.getPlotItem()
        pi.setLabel("bottom", "timestep t")
        pi.setLabel("left", "||dl/dh_t||")
        pi.showGrid(x=True, y=True, alpha=0.2)
        pi.setLogMode(x=False, y=True)
        pi.getAxis("left").enableAutoSIPrefix(False)
        pi.getViewBox().setMouseEnabled(x=False, y=True)
        self.legend = legend_below(pi, columns=legend_columns)
        self.cut_region = pg.LinearRegionItem(values=(0.5, 0.5), movable=False,
                                              brush=pg.mkBrush(120, 120, 120, 50),
                                              pen=pg.mkPen(MUTED, width=1))
        self.cut_region.setZValue(-10)
        pi.addItem(self.cut_region, ignoreBounds=True)
        self.cut_label = pg.TextItem("truncated:\nno gradient", color=SUBTLE, anchor=(0, 0))
        pi.addItem(self.cut_label, ignoreBounds=True)
        self.cue_region = pg.LinearRegionItem(values=(0.5, 0.5), movable=False,
                                              brush=pg.mkBrush(0, 200, 83, 45),
                                              pen=pg.mkPen((0, 150, 60, 120), width=1))
        self.cue_region.setZValue(-11)
        self.cue_region.setVisible(False)
        pi.addItem(self.cue_region, ignoreBounds=True)
        self.cue_label = pg.TextItem("cue", color=CUE_TEXT, anchor=(0.5, 0))
        self.cue_label.setVisible(False)
        pi.addItem(self.cue_label, ignoreBounds=True)
        self.cue_steps: tuple[int, int] | None = None
        self.batch_curve = pi.plot([], [], name="batch mean",
                                   pen=pg.mkPen(MUTED, width=2, style=pg.QtCore.Qt.DashLine))
        self.batch_curve.hover_format = lambda x, y: f"batch mean, t={int(x)}: {y:.3e}"
        self.curve = pi.plot([], [], name="this image", pen=pg.mkPen(THIS_IMAGE, width=2),
                             symbol="o", symbolSize=6, symbolBrush=THIS_IMAGE,
                             connect="finite")
        self.curve.hover_format = lambda x, y: f"this image, t={int(x)}: ||dl/dh_t|| = {y:.3e}"
        self.weight_curve = pi.plot([], [], pen=pg.mkPen(WEIGHT_GRAD, width=1.5),
                                    symbol="s", symbolSize=5, symbolBrush=WEIGHT_GRAD,
                                    symbolPen=None, connect="finite")
        self.weight_curve.hover_format = (
            lambda x, y: f"step t={int(x)} adds ||h_{{t-1}}ᵀ da_t|| = {y:.3e} to dW_hh")
        self.weight_curve.setVisible(False)
        self.weight_norms = None
        self.batch_cell_curve = pi.plot([], [], pen=pg.mkPen(CELL_GRAD, width=1.5,
                                                             style=pg.QtCore.Qt.DashLine))
        self.batch_cell_curve.hover_format = (
            lambda x, y: f"batch mean, t={int(x)}: ||dl/dc_t|| = {y:.3e}")
        self.batch_cell_curve.setVisible(False)
        self.cell_curve = pi.plot([], [], pen=pg.mkPen(CELL_GRAD, width=2), symbol="t",
                                  symbolSize=7, symbolBrush=CELL_GRAD, symbolPen=None,
                                  connect="finite")
        self.cell_curve.hover_format = (
            lambda x, y: f"this image, t={int(x)}: ||dl/dc_t|| = {y:.3e}")
        self.cell_curve.setVisible(False)
        # named for the CSV export only: a name given to plot() would put a hidden curve
        # in the legend
        self.cell_curve.opts["name"] = "dl/dc_t this image"
        self.batch_cell_curve.opts["name"] = "dl/dc_t batch mean"
        self.cell_norms = None
        self._legend_labels = {self.batch_curve: "batch mean", self.curve: "this image"}
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen(ACCENT, width=2))
        pi.addItem(self.cursor, ignoreBounds=True)
        self.show_cursor = cursor   # the explorer's current timestep; off in the vanishing tab
        self.norms = None
        self.cut = None
        self.t_from = 1
        self.setMinimumSize(220, 150)

    def _legend_entry(self, item, label: str, on: bool):
        item.setVisible(on)
        self._legend_labels[item] = label if on else None
        self._sync_legend()

    def _sync_legend(self):
        """The legend lists the drawn curves in a fixed order, with no gaps (pyqtgraph leaves
        a removed entry's grid cell empty, and the fixed-height legend would cut the last)."""
        order = (self.batch_curve, self.curve, self.weight_curve, self.cell_curve,
                 self.batch_cell_curve)
        want = [(item, self._legend_labels.get(item)) for item in order]
        want = [(item, label) for item, label in want if label]
        have = [(sample.item, label.text) for sample, label in self.legend.items]
        if have != want:
            self.legend.clear()
            for item, label in want:
                self.legend.addItem(item, label)

    def set_norms(self, norms: np.ndarray, cut: int | None = None,
                  batch_mean: np.ndarray | None = None, weight_norms: np.ndarray | None = None,
                  cell_norms: np.ndarray | None = None,
                  batch_cell_mean: np.ndarray | None = None):
        """``norms``: float (T,) ||dl/dh_t|| of one image; ``cut``: leading steps without any;
        ``weight_norms``: float (T,) the norm of each step's term of dW_hh; ``cell_norms`` /
        ``batch_cell_mean``: float (T,) ||dl/dc_t|| of the image / the batch (LSTM); None:
        not drawn."""
        self.norms = np.asarray(norms, dtype=np.float64)
        self.weight_norms = (None if weight_norms is None
                             else np.asarray(weight_norms, dtype=np.float64))
        self._legend_entry(self.weight_curve, "step t's part of dW_hh",
                           self.weight_norms is not None)
        self.cell_norms = (None if cell_norms is None
                           else np.asarray(cell_norms, dtype=np.float64))
        self._legend_entry(self.cell_curve, "||dl/dc_t|| (cell state)",
                           self.cell_norms is not None)
        self.cut = cut
        T = len(self.norms)
        if batch_mean is not None:
            self.batch_curve.setData(np.arange(1, T + 1, dtype=np.float64),
                                     _positive(batch_mean), connect="finite")
        self._legend_entry(self.batch_curve, "batch mean", batch_mean is not None)
        if batch_cell_mean is not None:
            self.batch_cell_curve.setData(np.arange(1, T + 1, dtype=np.float64),
                                          _positive(batch_cell_mean), connect="finite")
        self._legend_entry(self.batch_cell_curve, "||dl/dc_t|| batch mean",
                           batch_cell_mean is not None)
        has_cut = bool(cut)
        self.cut_region.setRegion((0.5, (cut or 0) + 0.5))
        self.cut_region.setVisible(has_cut)
        self.cut_label.setVisible(has_cut)
        pi = self.getPlotItem()
        pi.setXRange(0.5, T + 0.5, padding=0)
        finite = _positive(self.norms)
        if batch_mean is not None:
            finite = np.concatenate([finite, _positive(batch_mean)])
        for extra in (self.weight_norms, self.cell_norms, batch_cell_mean):
            if extra is not None:
                finite = np.concatenate([finite, _positive(extra)])
        if np.isfinite(finite).any():
            y0, y1 = decade_range(np.nanmin(finite), np.nanmax(finite))
            pi.setYRange(y0, y1, padding=0)
            self.cut_label.setPos(0.6, y1 - 0.05)
            self._place_cue_label()
        self.reveal_from(self.t_from if 1 <= self.t_from <= T + 1 else 1)

    def set_cue_steps(self, steps: tuple[int, int] | None):
        """Shade timesteps ``steps`` = (first, last), 1-based inclusive (None: no shading)."""
        self.cue_steps = None if steps is None else (int(steps[0]), int(steps[1]))
        on = self.cue_steps is not None
        if on:
            a, b = self.cue_steps
            self.cue_region.setRegion((a - 0.5, b + 0.5))
        self.cue_region.setVisible(on)
        self.cue_label.setVisible(on)
        self._place_cue_label()

    def _place_cue_label(self):
        if self.cue_steps is not None:
            a, b = self.cue_steps
            y1 = self.getPlotItem().getViewBox().viewRange()[1][1]
            self.cue_label.setPos((a + b) / 2, y1 - 0.05)

    def reveal_from(self, t: int):
        """Show the norms for timesteps t..T (1-based); t = T + 1 shows nothing yet."""
        if self.norms is None:
            return
        T = len(self.norms)
        self.t_from = int(np.clip(t, 1, T + 1))
        x = np.arange(self.t_from, T + 1, dtype=np.float64)
        self.curve.setData(x, _positive(self.norms[self.t_from - 1:]))
        if self.weight_norms is not None:
            self.weight_curve.setData(x, _positive(self.weight_norms[self.t_from - 1:]))
        if self.cell_norms is not None:
            self.cell_curve.setData(x, _positive(self.cell_norms[self.t_from - 1:]))
        self.cursor.setValue(self.t_from)
        self.cursor.setVisible(self.show_cursor and self.t_from <= T)
