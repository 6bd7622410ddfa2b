"""Gate saturation (Karpathy, Johnson & Fei-Fei 2015, fig. 3): one point per unit and sigmoid
gate, at (fraction of steps the gate is shut, < 0.1; fraction it is open, > 0.9), over a batch
of validation images (core.gate_stats).

Points near the origin are gates that rarely saturate (they weigh their inputs); along the y
axis gates that are mostly open (a forget gate there keeps its memory: an integrator), along
the x axis mostly shut; the diagonal x + y = 1 bounds every point (a gate cannot be both), and
points on it switch between the two like a binary switch.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from app.plot_style import INK, legend_below

# one colour per gate, as the LSTM blocks i, f, o and the GRU blocks z, r
GATE_COLORS = {"i": "#1e88e5", "f": "#e53935", "o": "#43a047", "z": "#e53935", "r": "#1e88e5"}
GATE_NAMES = {"i": "i (input)", "f": "f (forget)", "o": "o (output)", "z": "z (update)",
              "r": "r (reset)"}


class GateSaturationPlot(pg.PlotWidget):
    """``set_stats(gate_stats dict)`` (core.gate_stats.GateStats.to_dict()) per trace."""

    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.setObjectName("gateSaturationPlot")
        pi = self.getPlotItem()
        pi.setLabel("bottom", "shut: fraction of steps below 0.1")
        pi.setLabel("left", "open: fraction above 0.9")
        pi.showGrid(x=True, y=True, alpha=0.15)
        pi.getViewBox().setMouseEnabled(x=False, y=False)
        pi.setMenuEnabled(False)
        self.legend = legend_below(pi, columns=3)
        self.bound = pi.plot([0, 1], [1, 0], pen=pg.mkPen(INK, width=1,
                                                          style=QtCore.Qt.DashLine))
        self.bound.opts["name"] = "x + y = 1"
        self.bound.hover_format = lambda x, y: "x + y = 1: no gate is both shut and open"
        self.points: dict[str, pg.ScatterPlotItem] = {}
        pi.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.03)
        self.setMinimumSize(200, 180)

    def set_stats(self, stats: dict | None):
        """Draw ``stats['left'][gate]`` (x) against ``stats['right'][gate]`` (y), (H,) each."""
        pi = self.getPlotItem()
        gates = list(stats["left"]) if stats else []
        for name in list(self.points):
            if name not in gates:
                item = self.points.pop(name)
                self.legend.removeItem(item)
                pi.removeItem(item)
        for name in gates:
            item = self.points.get(name)
            if item is None:
                color = GATE_COLORS.get(name, INK)
                item = pg.ScatterPlotItem(size=7, pen=None, brush=pg.mkBrush(color + "99"),
                                          name=GATE_NAMES.get(name, name))
                item.hover_format = self._hover_for(name)
                pi.addItem(item)
                self.points[name] = item
            x = np.asarray(stats["left"][name], dtype=float)
            y = np.asarray(stats["right"][name], dtype=float)
            item.setData(x=x, y=y)
        pi.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.03)

    def export_rows(self):
        """CSV rows: (gate, fraction shut, fraction open, unit) per unit and gate."""
        for name, item in self.points.items():
            x, y = item.getData()
            for unit, (xv, yv) in enumerate(zip(x, y)):
                yield [GATE_NAMES.get(name, name), f"{xv:.9g}", f"{yv:.9g}", str(unit)]

    def point_count(self) -> int:
        return sum(len(item.getData()[0]) for item in self.points.values())

    @staticmethod
    def _hover_for(name):
        label = GATE_NAMES.get(name, name)
        return lambda x, y: f"{label}: shut {x:.0%} of steps, open {y:.0%}"
