"""The hidden state h_t of every unit (rows) at every timestep (columns), filled as t advances.

Columns the network has not computed yet are blank (NaN = transparent). Colour: tanh units in
[-1, 1] on a diverging map (blue negative, red positive); ReLU units from 0 up.

A gated cell has more per-unit quantities than h_t: the LSTM's cell state c_t and its gates
i, f, o, g, the GRU's gates z, r, n. ``set_quantities`` takes them all and ``show_quantity``
picks the one drawn, in the same unit x timestep layout, each on its own fixed colour scale:
sigmoid gates 0..1 (sequential: dark = shut, bright = open), tanh quantities (h, g, n) -1..1,
c_t (unbounded) symmetric around 0 up to its largest magnitude in this image.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from app.plot_style import ACCENT, colorbar_beside


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
        self.colorbar = colorbar_beside(self, self.image_item, values=(-1, 1),
                                        colorMap=pg.colormap.get("CET-D1"),
                                        interactive=False, width=12, label="h")
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen(ACCENT, width=1.5))
        pi.addItem(self.cursor, ignoreBounds=True)
        self.hidden = None  # (T, H) the quantity drawn, full trace
        self.quantities: dict[str, np.ndarray] = {}   # name -> (T, H)
        self.quantity = "h"
        self.activation = "tanh"
        self.levels = (-1.0, 1.0)
        self.t = 0
        self.setMinimumSize(220, 160)

    def set_hidden(self, hidden: np.ndarray, activation: str = "tanh"):
        """``hidden``: float (T, H), the hidden states of one image (the only quantity)."""
        self.set_quantities({"h": hidden}, activation)

    def set_quantities(self, quantities: dict, activation: str = "tanh", show: str | None = None):
        """``quantities``: {name: float (T, H)} of one image, 'h' first ('c' = the LSTM's cell
        state, a gate's block letter otherwise); ``show``: the one to draw (default: the one
        drawn before if there is one, else 'h')."""
        self.quantities = {k: np.asarray(v, dtype=np.float32) for k, v in quantities.items()}
        self.activation = activation
        name = show if show in self.quantities else (
            self.quantity if self.quantity in self.quantities else next(iter(self.quantities)))
        self.show_quantity(name)

    def show_quantity(self, name: str):
        """Draw quantity ``name`` (one of ``set_quantities``'s keys) on its own colour scale."""
        self.quantity = name
        self.hidden = self.quantities[name]
        T, H = self.hidden.shape
        cmap, self.levels = quantity_scale(name, self.hidden, self.activation)
        self.colorbar.setColorMap(pg.colormap.get(cmap))
        self.colorbar.setLevels(self.levels)
        self.colorbar.getAxis("left").setLabel(name)
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
        return f"unit {row}, t={col + 1}: {self.quantity} = {float(value):+.3f}"


SIGMOID = frozenset("ifozr")   # the gates squashed to 0..1 (LSTM i, f, o; GRU z, r)


def quantity_scale(name: str, values: np.ndarray, activation: str = "tanh"):
    """(colour map name, (low, high)) for quantity ``name`` with ``values`` (T, H)."""
    if name in SIGMOID:
        return "viridis", (0.0, 1.0)
    if name == "h" and activation == "relu":
        return "viridis", (0.0, float(np.percentile(values, 99)) or 1.0)
    if name == "c":
        hi = float(np.max(np.abs(values))) if values.size else 0.0
        hi = hi if np.isfinite(hi) and hi > 0 else 1.0
        return "CET-D1", (-hi, hi)
    return "CET-D1", (-1.0, 1.0)
