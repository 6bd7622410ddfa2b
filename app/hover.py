"""Values on hover: the nearest data point (or image pixel) under the mouse, as one line of text.

``HoverReadout(plot_widget, callback)`` calls ``callback(text)`` whenever the mouse moves over
the plot; text is '' when nothing is near, when the mouse leaves the plot, and when the plot's
content changes while the mouse is elsewhere (a read-out must never describe data that is no
longer drawn; with the mouse still on the plot the value under it is read again). Curves and
scatters report their name and (x, y) in data units (log axes are undone); images report
(column, row, value) or whatever the image's ``hover_format(col, row, value)`` attribute
returns.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

PICK_PIXELS = 14  # how close (in screen pixels) the mouse must be to a point


def _fmt(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        return f"{v:.3e}"
    return f"{v:.4g}"


class HoverReadout(QtCore.QObject):
    """Track the mouse over ``plot_widget`` and report the nearest value through ``callback``."""

    def __init__(self, plot_widget: pg.PlotWidget, callback, parent=None):
        super().__init__(parent or plot_widget)
        self.plot_widget = plot_widget
        self.callback = callback
        self._proxy = pg.SignalProxy(
            plot_widget.scene().sigMouseMoved, rateLimit=30, slot=self._moved
        )
        self._pos = None      # scene position of the last mouse move over the plot
        self._text = ""
        plot_widget.scene().changed.connect(self._content_changed)
        plot_widget.installEventFilter(self)
        plot_widget.viewport().installEventFilter(self)

    def _show(self, text: str):
        if text != self._text:
            self._text = text
            self.callback(text)

    def clear(self):
        self._pos = None
        self._show("")

    def _moved(self, evt):
        self._pos = evt[0]
        self._show(self.describe(self._pos) or "")

    def _content_changed(self, *_):
        if self._pos is not None and self.plot_widget.underMouse():
            self._show(self.describe(self._pos) or "")
        elif self._text:
            self.clear()

    def eventFilter(self, obj, ev):
        if ev.type() == QtCore.QEvent.Leave:
            self.clear()
        return False

    def describe(self, scene_pos) -> str | None:
        pi = self.plot_widget.getPlotItem()
        vb = pi.getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        log_x, log_y = pi.ctrl.logXCheck.isChecked(), pi.ctrl.logYCheck.isChecked()
        best = None  # (pixel distance, text)
        mouse = vb.mapSceneToView(scene_pos)
        px_w, px_h = (abs(v) or 1.0 for v in vb.viewPixelSize())
        for item in pi.items:
            if not item.isVisible():
                continue
            if isinstance(item, pg.ImageItem) and item.image is not None:
                p = item.mapFromScene(scene_pos)
                col, row = int(math.floor(p.x())), int(math.floor(p.y()))
                img = item.image
                if 0 <= row < img.shape[0] and 0 <= col < img.shape[1]:
                    value = img[row, col]
                    fmt = getattr(item, "hover_format", None)
                    if fmt is not None:
                        text = fmt(col, row, value)
                    elif np.ndim(value) == 0:
                        text = f"col {col}, row {row}: {_fmt(float(value))}"
                    else:
                        text = f"col {col}, row {row}: {tuple(int(v) for v in value)}"
                    if text and best is None:
                        best = (PICK_PIXELS, text)
                continue
            if isinstance(item, pg.PlotDataItem):
                x, y = item.getData()
                name = item.name()
            elif isinstance(item, pg.ScatterPlotItem):
                x, y = item.getData()
                name = item.name()
            else:
                continue
            if x is None or len(x) == 0:
                continue
            x = np.asarray(x, dtype=float)
            y = np.asarray(y, dtype=float)
            ok = np.isfinite(x) & np.isfinite(y)
            if not ok.any():
                continue
            d = np.hypot((x[ok] - mouse.x()) / px_w, (y[ok] - mouse.y()) / px_h)
            j = int(np.argmin(d))
            if d[j] > PICK_PIXELS or (best is not None and d[j] >= best[0]):
                continue
            xv, yv = float(x[ok][j]), float(y[ok][j])
            if log_x:
                xv = 10**xv
            if log_y:
                yv = 10**yv
            fmt = getattr(item, "hover_format", None)
            if fmt is not None:
                text = fmt(xv, yv)
            else:
                text = f"{name or 'value'}: x={_fmt(xv)}, y={_fmt(yv)}"
            best = (d[j], text)
        return best[1] if best else None
