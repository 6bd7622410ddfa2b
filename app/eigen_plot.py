"""Eigenvalues of W_hh on the complex plane, with the unit circle and the spectral radius.

Backpropagation multiplies the gradient by W_hh^T (and by tanh' <= 1) once per timestep, so
eigenvalues well inside the unit circle shrink it every step (vanishing) and eigenvalues
outside can grow it (exploding).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from app.plot_style import BAD


class EigenPlot(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.setObjectName("eigenPlot")
        pi = self.getPlotItem()
        pi.setLabel("bottom", "real part")
        pi.setLabel("left", "imaginary part")
        pi.showGrid(x=True, y=True, alpha=0.15)
        pi.getViewBox().setAspectLocked(True)
        pi.addLegend(offset=(-4, -4), labelTextSize="8pt", brush=pg.mkBrush(255, 255, 255, 220))
        th = np.linspace(0, 2 * np.pi, 361)
        self.unit = pi.plot(np.cos(th), np.sin(th), name="unit circle",
                            pen=pg.mkPen("#263238", width=1.5))
        self.radius = pi.plot([], [], name="spectral radius",
                              pen=pg.mkPen(BAD, width=1.5, style=QtCore.Qt.DashLine))
        self.points = pg.ScatterPlotItem(name="eigenvalues", size=6, pen=None,
                                         brush=pg.mkBrush(106, 27, 154, 170))
        self.points.hover_format = (
            lambda x, y: f"eigenvalue {x:+.3f} {y:+.3f}i (|λ| = {np.hypot(x, y):.3f})")
        pi.addItem(self.points)
        self.label = pg.TextItem("", color="#263238", anchor=(0, 0),
                                 fill=pg.mkBrush(255, 255, 255, 220),
                                 border=pg.mkPen("#cfd8dc"))
        pi.addItem(self.label, ignoreBounds=True)
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
        verdict = ("< 1: inside the unit circle,\ngradients shrink step by step" if rho < 0.98
                   else "> 1: outside the unit circle,\ngradients can grow" if rho > 1.02
                   else "≈ 1: on the unit circle,\ngradients keep their size")
        self.label.setText(f"spectral radius ρ = {rho:.3f}\n{verdict}")
        self.label.setPos(-lim * 0.98, lim * 0.98)
        return rho
