"""What each backward step does to the gradient along one image: the measured factor
||dl/dh_{t-1}|| / ||dl/dh_t|| against its bound σ_max of the step's Jacobian and σ_max(W_hh)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from app.log_axis import DecadeLogAxis, decade_range
from app.plot_style import BOUND, INK, MEASURED, MUTED, log_y_plot


class BackwardFactorPlot(pg.PlotWidget):
    """Per backward step t -> t-1: the measured ||dl/dh_{t-1}|| / ||dl/dh_t|| and its bound
    σ_max(diag(act'(a_t)) W_hh^T); flat lines at 1 and at σ_max(W_hh) (no saturation)."""

    def __init__(self, parent=None):
        super().__init__(parent=parent, axisItems={"left": DecadeLogAxis("left")})
        self.setObjectName("backwardFactorPlot")
        pi = log_y_plot(self, "timestep t (the step from h_t back to h_t-1)", "factor per step")
        self.one = pi.plot([], [], name="1",
                           pen=pg.mkPen(INK, width=1, style=QtCore.Qt.DashLine))
        self.whh = pi.plot([], [], name="σ_max(W_hh)",
                           pen=pg.mkPen(MUTED, width=1.5, style=QtCore.Qt.DotLine))
        self.bound = pi.plot([], [], name="σ_max(J_t)", pen=pg.mkPen(BOUND, width=1.5),
                             connect="finite")
        self.measured = pi.plot([], [], name="measured",
                                pen=pg.mkPen(MEASURED, width=2), symbol="o", symbolSize=5,
                                symbolBrush=MEASURED, connect="finite")
        self.bound.hover_format = lambda x, y: f"t={int(x)}: σ_max(J_t) = {y:.3g}"
        self.measured.hover_format = (
            lambda x, y: f"t={int(x)} → {int(x) - 1}: ||dl/dh|| multiplied by {y:.3g}")
        self.whh.hover_format = lambda x, y: f"σ_max(W_hh) = {y:.3g}"
        self.one.hover_format = lambda x, y: "factor 1: the gradient keeps its size"
        self.legend = self.getPlotItem().legend
        self.setMinimumSize(200, 120)

    def set_factors(self, measured, jacobian_sigma, whh_sigma: float):
        """``measured``, ``jacobian_sigma``: float (T,), index t = the step from h_t to h_{t-1}
        (0-based; NaN where undefined), drawn at 1-based timestep t + 1. A NaN ``whh_sigma``
        (a gated cell: no single W_hh) hides both bounds."""
        m = np.asarray(measured, dtype=np.float64)
        s = np.asarray(jacobian_sigma, dtype=np.float64)
        T = len(m)
        x = np.arange(1, T + 1, dtype=np.float64)
        pos = lambda v: np.where(np.isfinite(v) & (v > 0), v, np.nan)  # noqa: E731
        bounds = bool(np.isfinite(whh_sigma))
        entries = [(self.one, "1"), (self.whh, "σ_max(W_hh)"), (self.bound, "σ_max(J_t)"),
                   (self.measured, "measured")]
        for item in (self.whh, self.bound):
            item.setVisible(bounds)
        want = [(item, label) for item, label in entries if bounds or item not in
                (self.whh, self.bound)]
        # rebuilt rather than edited: pyqtgraph leaves a removed entry's cell empty
        if [(smp.item, lab.text) for smp, lab in self.legend.items] != want:
            self.legend.clear()
            for item, label in want:
                self.legend.addItem(item, label)
        self.measured.setData(x, pos(m), connect="finite")
        self.bound.setData(x, pos(s), connect="finite")
        self.one.setData([0.5, T + 0.5], [1.0, 1.0])
        self.whh.setData([0.5, T + 0.5], [whh_sigma, whh_sigma])
        vals = np.concatenate([pos(m), pos(s) if bounds else [],
                               [1.0, whh_sigma if bounds and whh_sigma > 0 else 1.0]])
        vals = vals[np.isfinite(vals)]
        pi = self.getPlotItem()
        pi.setXRange(0.5, T + 0.5, padding=0)
        y0, y1 = decade_range(vals.min(), vals.max())
        pi.setYRange(y0, y1, padding=0)
