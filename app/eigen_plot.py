"""Eigenvalues of W_hh on the complex plane, with the unit circle and the spectral radius.

Backpropagation multiplies the gradient by diag(act'(a_t)) W_hh^T once per timestep. With no
saturation (act' = 1) eigenvalues well inside the unit circle shrink it every step (vanishing)
and eigenvalues outside can grow it (exploding); saturated units (tanh' < 1) shrink every step
further, so the spectrum alone predicts vanishing but not exploding. The plot states where the
spectrum lies (above the data, never over it); the vanishing tab's sentence under it compares
that with the factor measured along an image (app/vanishing_panel.py).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from app.plot_style import BAD, INK, THIS_IMAGE, legend_below


class EigenPlot(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.setObjectName("eigenPlot")
        pi = self.getPlotItem()
        pi.setLabel("bottom", "real part")
        pi.setLabel("left", "imaginary part")
        pi.showGrid(x=True, y=True, alpha=0.15)
        pi.getViewBox().setAspectLocked(True)
        legend_below(pi, columns=3)
        th = np.linspace(0, 2 * np.pi, 361)
        self.unit = pi.plot(np.cos(th), np.sin(th), name="unit circle",
                            pen=pg.mkPen(INK, width=1.5))
        self.radius = pi.plot([], [], name="spectral radius",
                              pen=pg.mkPen(BAD, width=1.5, style=QtCore.Qt.DashLine))
        self.points = pg.ScatterPlotItem(name="eigenvalues", size=6, pen=None,
                                         brush=pg.mkBrush(pg.mkColor(THIS_IMAGE + "aa")))
        self.points.hover_format = (
            lambda x, y: f"eigenvalue {x:+.3f} {y:+.3f}i (|λ| = {np.hypot(x, y):.3f})")
        pi.addItem(self.points)
        pi.setTitle(" ", size="9pt", color=INK)
        self.label = pi.titleLabel   # above the view box
        self.eigvals = None
        self.setMinimumSize(200, 200)

    def set_eigenvalues(self, eigvals: np.ndarray):
        """``eigvals``: complex (H,) eigenvalues of W_hh."""
        ev = np.asarray(eigvals)
        self.eigvals = ev
        self.points.setData(x=ev.real.astype(float), y=ev.imag.astype(float))
        rho = float(np.abs(ev).max()) if ev.size else 0.0
        th = np.linspace(0, 2 * np.pi, 361)
        self.radius.setData(rho * np.cos(th), rho * np.sin(th))
        lim = max(1.1, rho * 1.1)
        self.getPlotItem().setRange(xRange=(-lim, lim), yRange=(-lim, lim), padding=0)
        where = ("< 1: inside the unit circle" if rho < 0.98
                 else "> 1: outside the unit circle" if rho > 1.02 else "≈ 1: on the unit circle")
        self.label.setText(f"ρ = {rho:.3f} {where}", size="9pt", color=INK)
        return rho
