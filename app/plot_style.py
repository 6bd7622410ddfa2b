"""One look for every plot and panel: light background, dark ink, row-major images, the
colours every view shares, and legends that sit under a plot instead of over its data."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtWidgets
from shiboken6 import Shiboken

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w",
                    foreground="#263238")

# Ten distinguishable class colours (tab10), used by every per-class plot.
CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
ACCENT = "#ff8f00"      # current timestep / highlight
GOOD = "#2e7d32"
BAD = "#c62828"
MUTED = "#90a4ae"       # secondary curves (batch mean), truncated-BPTT shading
INK = "#263238"         # text and outlines drawn inside plots
SUBTLE = "#546e7a"      # hints inside plots, secondary text in panels
FRAME = "#cfd8dc"       # borders of text boxes inside plots
CUE = "#00838f"         # the memory-probe cue in text
CUE_MARK = "#00e5ff"    # the dashed frame around the cue rows of the image
CUE_TEXT = "#1b5e20"    # the "cue" label over the shaded cue steps
THIS_IMAGE = "#6a1b9a"  # the explorer's image in every gradient plot
WEIGHT_GRAD = "#00897b"  # a step's share of the weight gradient dW_hh
MEASURED = "#6a1b9a"    # a measured per-step factor
BOUND = "#ef6c00"       # the bound on it (largest singular value)

THUMBNAILS = 48   # thumbnails in the explorer's strip: a screen's width, cheap to redraw
READOUT_EMPTY = ""  # what a plot's read-out line shows while the mouse is not over data


def class_color(k: int) -> str:
    return CLASS_COLORS[k % len(CLASS_COLORS)]


SAMPLE_PIXELS = 20   # height of one legend entry (pyqtgraph's sample is 20 x 20 px)


class LegendBelow(pg.LegendItem):
    """A legend laid out in the PlotItem's grid under the bottom axis, never over the data.

    pyqtgraph's own legend floats inside the view box; this one takes its own row of the plot
    item's layout, in ``columns`` columns, and asks the layout for the room it needs.
    """

    ROW = 4   # PlotItem's layout: 0 title, 1 top axis, 2 view box, 3 bottom axis

    def __init__(self, columns: int = 3, size: str = "8pt"):
        super().__init__(offset=None, labelTextSize=size, colCount=columns)

    def sizeHint(self, which, constraint=None):
        """Any width will do (a narrow plot must not be widened by its legend's labels)."""
        from PySide6 import QtCore

        hint = super().sizeHint(which, constraint) if constraint is not None else \
            super().sizeHint(which)
        if which == QtCore.Qt.MinimumSize:
            return QtCore.QSizeF(0, hint.height())
        return hint

    def updateSize(self):
        rows = -(-len(self.items) // max(1, self.columnCount))
        height = rows * (SAMPLE_PIXELS + 2) + 2
        self.setMinimumHeight(height)
        self.setMaximumHeight(height)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)
        self.layout.setContentsMargins(0, 0, 0, 0)
        self.updateGeometry()


def legend_below(plot_item: pg.PlotItem, columns: int = 3) -> LegendBelow:
    """Give ``plot_item`` a legend under its bottom axis (items named later join it)."""
    legend = LegendBelow(columns)
    plot_item.layout.addItem(legend, LegendBelow.ROW, 1)
    plot_item.legend = legend
    return legend


def colorbar_beside(plot: pg.PlotWidget, image_item: pg.ImageItem,
                    **options) -> pg.ColorBarItem:
    """A ColorBarItem (``options`` as pyqtgraph's) for ``image_item``, right of ``plot``'s axes.

    Use this, not ``ColorBarItem.setImageItem(insert_in=...)`` alone: a colour bar is itself a
    PlotItem, and putting a PlotItem into another one's layout makes PySide hand the outer
    PlotItem to Python (it converts the new parent that itemChange returns), though the
    plot's scene holds it. Python then deletes it with its last Python reference: when the
    cyclic collector frees a dropped panel, that happens in the middle of the collection, and
    if the item's children hold the panel (an image's hover_format), the panel deletes the
    scene while the scene still lists the half-deleted item (a segfault). Setting it as the
    plot's central item again gives it back to the scene, which deletes it with the plot.
    """
    plot_item = plot.getPlotItem()
    bar = pg.ColorBarItem(**options)
    bar.setImageItem(image_item, insert_in=plot_item)
    if Shiboken.ownedByPython(plot_item):
        plot.setCentralItem(plot_item)
    return bar


def reserve_wrapped_height(label, width: int):
    """Make a word-wrapped QLabel's minimum height what its text needs at ``width``, so a
    crowded layout scrolls or shrinks its plots instead of drawing the text over them."""
    need = label.heightForWidth(max(1, width)) if not label.isHidden() and label.text() else 0
    if need != label.minimumHeight():
        label.setMinimumHeight(max(0, need))


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


def log_y_plot(widget: pg.PlotWidget, bottom: str, left: str, legend_columns: int = 2):
    """Set up ``widget`` (made with a DecadeLogAxis on the left) as a plot of positive values
    on a log y axis: axis labels, a light grid, y-only mouse zoom, a legend under the plot.
    Returns its PlotItem."""
    pi = widget.getPlotItem()
    pi.setLabel("bottom", bottom)
    pi.setLabel("left", left)
    pi.showGrid(x=True, y=True, alpha=0.2)
    pi.setLogMode(x=False, y=True)
    pi.getViewBox().setMouseEnabled(x=False, y=True)
    legend_below(pi, columns=legend_columns)
    return pi
