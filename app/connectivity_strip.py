"""Which image rows did this decision use? ||d logit_k / d x_r|| per image row, beside the image.

The values come with the trace (app.trace_job: core.connectivity for every class k of the
image shown; for the CNN+RNN per image row through the convolutions). The strip is a narrow
plot whose rows are linked to the image view's, so each value sits beside its image row, on a
log axis. ``PixelOverlay`` draws the same gradient per pixel over the image (log colour, the
faintest values transparent). Nothing is computed here beyond picking a class's row.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtGui, QtWidgets

from app.log_axis import DecadeLogAxis
from app.plot_style import THIS_IMAGE

OVERLAY_DECADES = 2.5   # the overlay's colour runs over this many decades below the maximum


class ConnectivityStrip(pg.PlotWidget):
    """||d logit_k / d x_r|| against image row r (rows linked to ``image_view``'s)."""

    def __init__(self, image_view: pg.PlotWidget | None = None, parent=None):
        super().__init__(parent=parent, axisItems={"bottom": DecadeLogAxis("bottom")})
        self.setObjectName("connectivityStrip")
        pi = self.getPlotItem()
        pi.setLogMode(x=True, y=False)
        pi.hideAxis("left")
        pi.setMenuEnabled(False)
        pi.showGrid(x=True, y=False, alpha=0.2)
        pi.getAxis("bottom").setStyle(tickTextOffset=2, maxTickLevel=0)
        vb = pi.getViewBox()
        vb.invertY(True)
        vb.setMouseEnabled(x=False, y=False)
        vb.enableAutoRange(y=False)
        self.curve = pg.PlotDataItem(pen=pg.mkPen(THIS_IMAGE, width=1.5), symbol="o",
                                     symbolSize=4, symbolBrush=THIS_IMAGE, symbolPen=None)
        self.curve.opts["name"] = "||d logit/d x_row||"
        pi.addItem(self.curve)
        self.cue = pg.LinearRegionItem((0, 1), orientation="horizontal", movable=False,
                                       brush=pg.mkBrush(0, 131, 143, 45), pen=pg.mkPen(None))
        self.cue.setVisible(False)
        pi.addItem(self.cue, ignoreBounds=True)
        self.setFixedWidth(84)
        # as tall as the image beside it: the image sets the row's height, never the strip
        self.setSizePolicy(QtWidgets.QSizePolicy.Fixed, QtWidgets.QSizePolicy.Ignored)
        self.setMinimumHeight(0)
        self.getPlotItem().getViewBox().setDefaultPadding(0)
        self.values: np.ndarray | None = None
        vb.setYRange(0, 32, padding=0)
        self._image_vb = None
        if image_view is not None:
            # one-way: the strip follows the image's rows on screen (a two-way link would let
            # the strip's range push the aspect-locked image around)
            self._image_vb = image_view.getPlotItem().getViewBox()
            self._image_vb.sigYRangeChanged.connect(self._follow_image)
            self._image_vb.sigResized.connect(self._follow_image)
            vb.sigResized.connect(self._follow_image)
        self.setToolTip("||d logit / d x|| of the chosen class per image row, log scale: "
                        "the rows this decision depends on")

    def _follow_image(self, *_):
        self.getPlotItem().getViewBox().linkedViewChanged(self._image_vb, pg.ViewBox.YAxis)

    def set_rows(self, values, cue_rows: tuple[int, int] | None = None):
        """values (R,) >= 0 of one class (None clears); cue_rows 0-based first, last."""
        if values is None:
            self.values = None
            self.curve.setData([], [])
            self.cue.setVisible(False)
            return
        v = np.asarray(values, dtype=np.float64)
        self.values = v
        rows = np.arange(len(v)) + 0.5     # the centre of image row r (the image spans 0..R)
        shown = np.where(v > 0, v, np.nan)
        self.curve.setData(shown, rows, connect="finite")
        finite = shown[np.isfinite(shown)]
        if finite.size:
            hi = float(np.log10(finite.max()))
            lo = float(np.log10(finite.min()))
            lo = min(lo, hi - 1.0)
            pad = 0.15 * (hi - lo)
            self.getPlotItem().setXRange(lo - pad, hi + pad, padding=0)
        if cue_rows is not None:
            self.cue.setRegion((cue_rows[0], cue_rows[1] + 1))
        self.cue.setVisible(cue_rows is not None)


class PixelOverlay(pg.ImageItem):
    """log10 ||d logit_k / d pixel|| over the image: bright where the decision looks."""

    def __init__(self, plot_item: pg.PlotItem):
        super().__init__()
        self.export_name = "connectivity_log10"
        self.hover_format = lambda col, row, value: (
            f"d logit/d pixel (column {col + 1}, row {row + 1}): 10^{value:.2f}")
        cmap = pg.colormap.get("inferno")
        lut = cmap.getLookupTable(0.0, 1.0, 256, alpha=True)
        lut[:, 3] = np.linspace(0, 215, 256).astype(np.uint8)   # faint = see-through
        self.setLookupTable(lut)
        self.setZValue(8)   # over the image, under the step band and the cue frame
        self.setVisible(False)
        plot_item.addItem(self)
        self.setCompositionMode(QtGui.QPainter.CompositionMode_SourceOver)

    def set_pixels(self, log_pixels):
        """log_pixels (R, W) log10 values of one class (None clears)."""
        if log_pixels is None:
            self.clear()
            return
        a = np.asarray(log_pixels, dtype=np.float32)
        finite = a[np.isfinite(a)]
        hi = float(finite.max()) if finite.size else 0.0
        self.setImage(np.where(np.isfinite(a), a, hi - 10), autoLevels=False,
                      levels=(hi - OVERLAY_DECADES, hi))

