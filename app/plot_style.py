"""One look for every pyqtgraph plot: light background, dark ink, row-major images."""

from __future__ import annotations

import pyqtgraph as pg

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w",
                    foreground="#263238")

# Ten distinguishable class colours (tab10), used by every per-class plot.
CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
ACCENT = "#ff8f00"      # current timestep / highlight
GOOD = "#2e7d32"
BAD = "#c62828"
MUTED = "#90a4ae"


def class_color(k: int) -> str:
    return CLASS_COLORS[k % len(CLASS_COLORS)]


def make_plot(object_name: str | None = None, *, x_label: str = "", y_label: str = "",
              log_y: bool = False, grid: bool = True, menu: bool = True) -> pg.PlotWidget:
    """A PlotWidget with labelled axes, a light grid and the given objectName."""
    w = pg.PlotWidget()
    if object_name:
        w.setObjectName(object_name)
    pi = w.getPlotItem()
    if x_label:
        pi.setLabel("bottom", x_label)
    if y_label:
        pi.setLabel("left", y_label)
    if grid:
        pi.showGrid(x=True, y=True, alpha=0.15)
    if log_y:
        pi.setLogMode(x=False, y=True)
    pi.setMenuEnabled(menu)
    w.setMinimumSize(160, 120)
    return w
