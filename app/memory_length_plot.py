"""How long each unit remembers: the keep gate's mean per unit (the LSTM's forget gate f, the
GRU's update gate z) as an effective memory length 1 / (1 - mean) in steps, sorted from the
longest (core.gate_stats).

A unit that keeps a share k of its state every step forgets geometrically, with mean lifetime
1 / (1 - k) steps; the gradient flowing back along that state shrinks by the same k per step.
The dashed line is the sequence length T: units above it hold information (and pass gradient)
across the whole image. The y axis is logarithmic; a unit whose mean gate is exactly 1 is drawn
at the top of the axis.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from app.log_axis import DecadeLogAxis, decade_range
from app.plot_style import INK, THIS_IMAGE, log_y_plot

CAP = 1e6   # memory lengths drawn at most this long (a mean gate of 1 is infinite)


class MemoryLengthPlot(pg.PlotWidget):
    """``set_memory(memory_steps (H,), T, gate='f')`` per trace."""

    def __init__(self, parent=None):
        super().__init__(parent=parent, axisItems={"left": DecadeLogAxis("left")})
        self.setObjectName("memoryLengthPlot")
        pi = log_y_plot(self, "unit (sorted, longest memory first)", "memory [steps]")
        pi.setMenuEnabled(False)
        self.curve = pi.plot([], [], name="units", pen=None, symbol="o", symbolSize=5,
                             symbolPen=None, symbolBrush=THIS_IMAGE, stepMode=None)
        self.t_line = pi.plot([], [], name="sequence length T",
                              pen=pg.mkPen(INK, width=1, style=QtCore.Qt.DashLine))
        self.curve.hover_format = self._hover
        self.t_line.hover_format = lambda x, y: f"T = {y:.0f} steps"
        self.order = np.zeros(0, dtype=np.int64)
        self.memory = np.zeros(0)
        self.T = 0
        self.gate = "f"
        self.setMinimumSize(200, 150)

    def set_memory(self, memory_steps: np.ndarray, T: int, gate: str = "f"):
        """``memory_steps``: float (H,) 1 / (1 - mean keep gate) per unit (inf allowed)."""
        self.gate = gate
        self.memory = np.asarray(memory_steps, dtype=np.float64).copy()
        self.T = int(T)
        m = np.minimum(np.asarray(memory_steps, dtype=np.float64), CAP)
        self.order = np.argsort(-m, kind="stable")
        y = m[self.order]
        x = np.arange(1, len(y) + 1, dtype=np.float64)
        self.curve.setData(x, y)
        H = max(1, len(y))
        self.t_line.setData([0.5, H + 0.5], [float(T), float(T)])
        pi = self.getPlotItem()
        pi.setXRange(0.5, H + 0.5, padding=0)
        vals = np.concatenate([y[np.isfinite(y) & (y > 0)], [float(T), 1.0]])
        y0, y1 = decade_range(vals.min(), vals.max())
        pi.setYRange(max(y0, -0.1), y1, padding=0)

    def export_rows(self):
        """CSV rows: ('memory_steps', unit, steps, mean gate) per unit, in unit order (inf
        where the mean gate is 1), then the sequence length."""
        m = self.memory
        for unit, steps in enumerate(m):
            keep = 1.0 if not np.isfinite(steps) else 1.0 - 1.0 / steps
            yield ["memory_steps", str(unit), f"{steps:.9g}", f"{keep:.9g}"]
        yield ["sequence_length_T", "", f"{self.T:g}", ""]

    def _hover(self, x, y):
        i = int(round(x)) - 1
        unit = int(self.order[i]) if 0 <= i < len(self.order) else -1
        longest = " (or longer: the gate is 1)" if y >= CAP else ""
        return (f"unit {unit}: mean {self.gate} = {1 - 1 / y:.3f}, remembers ≈ {y:.3g} "
                f"steps{longest}")
