"""The hidden state h_t of every unit (rows) at every timestep (columns), filled as t advances.

Columns the network has not computed yet are blank (NaN = transparent). Colour: tanh units in
[-1, 1] on a diverging map (blue negative, red positive); ReLU units from 0 up.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from app.plot_style import ACCENT


class HiddenHeatmap(pg.PlotWidget):
    """``set_hidden(hidden (T, H))`` once per trace, ``show_until(t)`` per frame."""

    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.setObjectName("hiddenHeatmap")
        pi = self.getPlotItem()
        pi.setLabel("bottom", "timestep t")
        pi.setLabel("left", "hidden unit")
        pi.setMenuEnabled(False)
        pi.getViewBox().setMouseEnabled(x=False, y=False)
        pi.getViewBox().invertY(True)
        self.image_item = pg.ImageItem()
        self.image_item.export_name = "hidden_state"
        self.image_item.hover_format = self._hover
        pi.addItem(self.image_item)
        self.colorbar = pg.ColorBarItem(values=(-1, 1), colorMap=pg.colormap.get("CET-D1"),
                                        interactive=False, width=12, label="h")
        self.colorbar.setImageItem(self.image_item, insert_in=pi)
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen(ACCENT, width=1.5))
        pi.addItem(self.cursor, ignoreBounds=True)
        self.hidden = None  # (T, H) full trace
        self.levels = (-1.0, 1.0)
        self.t = 0
        self.setMinimumSize(220, 160)

    def set_hidden(self, hidden: np.ndarray, activation: str = "tanh"):
        """``hidden``: float (T, H), the hidden states of one image."""
        self.hidden = np.asarray(hidden, dtype=np.float32)
        T, H = self.hidden.shape
        if activation == "relu":
            hi = float(np.percentile(self.hidden, 99)) or 1.0
            self.colorbar.setColorMap(pg.colormap.get("viridis"))
            self.levels = (0.0, hi)
        else:
            self.colorbar.setColorMap(pg.colormap.get("CET-D1"))
            self.levels = (-1.0, 1.0)
        self.colorbar.setLevels(self.levels)
        self.show_until(self.t if 0 < self.t <= T else T)
        self.image_item.setRect(0.5, 0, T, H)  # after setImage: the rect scales by image size
        self.getPlotItem().getViewBox().setRange(xRange=(0.5, T + 0.5), yRange=(0, H),
                                                  padding=0)

    def show_until(self, t: int):
        """Show columns 1..t (1-based); the rest are blank."""
        if self.hidden is None:
            return
        T, H = self.hidden.shape
        self.t = int(np.clip(t, 0, T))
        img = np.full((H, T), np.nan, dtype=np.float32)
        img[:, : self.t] = self.hidden[: self.t].T
        self.image_item.setImage(img, autoLevels=False, levels=self.levels)
        self.cursor.setValue(self.t + 0.5)  # the edge after the newest column
        self.cursor.setVisible(self.t > 0)

    def _hover(self, col, row, value):
        if not np.isfinite(value):
            return f"unit {row}, t={col + 1}: not computed yet"
        return f"unit {row}, t={col + 1}: h = {float(value):+.3f}"
