"""The input image, large, with the rows the RNN is reading highlighted.

The rows behind each timestep come from the model (core.timesteps.step_bands, through the
trace): the row-RNN reads image row t at step t; a CNN+RNN step is centred on a 4-row band (two
2x2 poolings) but its receptive field is wider (each 3x3 convolution adds a row on both sides),
so the rows it actually sees are shaded more lightly around the band. Rows after the band are
dimmed: the network has not stepped over them yet. ``set_marked_rows`` outlines a band of
rows with a dashed frame (the memory-probe task's cue rows). The widget keeps itself about
square (its height follows its width), so the image fills it instead of floating in white.

A step may also cover only some columns: the CNN+RNN reading its map one position at a time
(``sequence='positions'``) steps over a square patch, with a wider receptive field around it;
then the rest of the patch's band to its right is dimmed too (read later, in raster order).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from app.plot_style import ACCENT, CUE_MARK


def _tint(colour: str, alpha: int) -> QtGui.QColor:
    c = QtGui.QColor(colour)
    c.setAlpha(alpha)
    return c


def _overlay(plot_item, z: float, edge: str | None, width: float = 1.0,
             fill: QtGui.QColor | None = None, dashed: bool = False,
             visible: bool = True) -> QtWidgets.QGraphicsRectItem:
    """A rectangle over the image (set with setRect), outlined in ``edge`` (None: no outline)
    ``width`` screen pixels wide whatever the image's size, filled with ``fill``."""
    rect = QtWidgets.QGraphicsRectItem()
    if edge is None:
        rect.setPen(QtGui.QPen(QtGui.Qt.NoPen))
    else:
        pen = QtGui.QPen(QtGui.QColor(edge))
        pen.setCosmetic(True)
        pen.setWidthF(width)
        if dashed:
            pen.setStyle(QtGui.Qt.DashLine)
        rect.setPen(pen)
    if fill is not None:
        rect.setBrush(fill)
    rect.setZValue(z)
    rect.setVisible(visible)
    plot_item.addItem(rect, ignoreBounds=True)
    return rect


class RowImageView(pg.PlotWidget):
    """Show an (R, C, 3) uint8 image or an (R, C) float map and highlight a band of rows."""

    def __init__(self, object_name: str = "imageView", title_rows: str = "image row", parent=None):
        super().__init__(parent=parent)
        self.setObjectName(object_name)
        pi = self.getPlotItem()
        pi.setLabel("left", title_rows)
        pi.hideAxis("bottom")
        pi.setMenuEnabled(False)
        vb = pi.getViewBox()
        vb.setAspectLocked(True)
        vb.invertY(True)
        vb.setMouseEnabled(x=False, y=False)
        self.setMinimumSize(180, 180)
        self.image_item = pg.ImageItem()
        self.image_item.export_name = "image"
        self.image_item.hover_format = self._hover
        pi.addItem(self.image_item)
        # the band being read, the wider rows it sees, the dimmed rows not yet read, the cue
        self.band = _overlay(pi, 10, ACCENT, 2.0, fill=_tint(ACCENT, 60))
        self.seen = _overlay(pi, 9, ACCENT, 1.0, fill=_tint(ACCENT, 25), dashed=True,
                             visible=False)
        self.dim = _overlay(pi, 5, None, fill=QtGui.QColor(255, 255, 255, 150))
        # right of a patch, in its band (the positions layout reads one patch at a time)
        self.dim_right = _overlay(pi, 5, None, fill=QtGui.QColor(255, 255, 255, 150),
                                  visible=False)
        self.mark = _overlay(pi, 12, CUE_MARK, 2.0, dashed=True, visible=False)
        self.marked_rows: tuple[int, int] | None = None   # 0-based first, last image row
        self.shape = (0, 0)
        self.rows_per_step = 1
        self.step_rows: np.ndarray | None = None   # (T, 2) rows each step is centred on
        self.seen_rows: np.ndarray | None = None   # (T, 2) rows each step sees
        self.step_cols: np.ndarray | None = None   # (T, 2) columns (None: every column)
        self.seen_cols: np.ndarray | None = None
        policy = QtWidgets.QSizePolicy(QtWidgets.QSizePolicy.Expanding,
                                       QtWidgets.QSizePolicy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    # --- keep about square -------------------------------------------------------------------
    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return max(self.minimumHeight(), width - 20)

    def sizeHint(self):
        return QtCore.QSize(320, 300)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        # layouts do not always ask heightForWidth; a maximum height does the same reliably
        self.setMaximumHeight(max(self.minimumHeight(), self.width() + 10))

    def set_image(self, image: np.ndarray, rows_per_step: int = 1, levels=None):
        """``image``: uint8 (R, C, 3) or float (R, C); ``rows_per_step`` rows = one timestep."""
        self.shape = image.shape[:2]
        self.rows_per_step = rows_per_step
        self.step_rows = self.seen_rows = self.step_cols = self.seen_cols = None
        if image.ndim == 2:
            self.image_item.setImage(np.asarray(image, dtype=np.float32),
                                     levels=levels, autoLevels=levels is None)
            self.image_item.setColorMap(pg.colormap.get("viridis"))
        else:
            self.image_item.setImage(np.asarray(image), levels=(0, 255), autoLevels=False)
        r, c = self.shape
        self.image_item.setRect(0, 0, c, r)
        ticks = [(i - 0.5, str(i)) for i in range(1, r + 1) if i == 1 or i % max(1, r // 8) == 0]
        self.getPlotItem().getAxis("left").setTicks([ticks, []])
        self.getPlotItem().getViewBox().setRange(xRange=(0, c), yRange=(0, r), padding=0.02)
        self._place_mark()

    def set_step_rows(self, step_rows, seen_rows=None, step_cols=None, seen_cols=None):
        """Per timestep, 0-based inclusive image rows: ``step_rows`` (T, 2) the band the step is
        centred on, ``seen_rows`` (T, 2) its receptive field (None: the band itself);
        ``step_cols`` / ``seen_cols`` (T, 2) the same for columns (None: every column)."""
        as_int = lambda a: None if a is None else np.asarray(a, dtype=np.int64)  # noqa: E731
        self.step_rows = as_int(step_rows)
        self.seen_rows = as_int(seen_rows)
        self.step_cols = as_int(step_cols)
        self.seen_cols = as_int(seen_cols)

    def _cols_at(self, cols, t: int) -> tuple[int, int]:
        c = self.shape[1]
        if cols is not None and 1 <= t <= len(cols):
            a, b = (int(v) for v in cols[t - 1])
            return a, b
        return 0, c - 1

    def set_marked_rows(self, rows: tuple[int, int] | None):
        """Outline image rows ``rows`` = (first, last), 0-based inclusive; None removes it."""
        self.marked_rows = None if rows is None else (int(rows[0]), int(rows[1]))
        self._place_mark()

    def _place_mark(self):
        r, c = self.shape
        if self.marked_rows is None or r == 0:
            self.mark.setVisible(False)
            return
        a, b = self.marked_rows
        self.mark.setRect(0.05 * c / 8, a, c - 0.1 * c / 8, b - a + 1)
        self.mark.setVisible(True)

    def set_step(self, t: int | None, dim_future: bool = True):
        """Highlight timestep ``t`` (1-based); None hides the band. Dims rows after the band."""
        r, c = self.shape
        if t is None or r == 0:
            self.band.setVisible(False)
            self.dim.setVisible(False)
            self.dim_right.setVisible(False)
            return
        if self.step_rows is not None and 1 <= t <= len(self.step_rows):
            y0, last = (int(v) for v in self.step_rows[t - 1])
            h = last - y0 + 1
        else:
            y0, h = (t - 1) * self.rows_per_step, self.rows_per_step
        x0, x1 = self._cols_at(self.step_cols, t)
        self.band.setRect(x0, y0, x1 - x0 + 1, h)
        self.band.setVisible(True)
        wider = False
        if self.seen_rows is not None and 1 <= t <= len(self.seen_rows):
            a, b = (int(v) for v in self.seen_rows[t - 1])
            sa, sb = self._cols_at(self.seen_cols if self.step_cols is not None else None, t)
            wider = (a, b, sa, sb) != (y0, y0 + h - 1, x0, x1)
            self.seen.setRect(sa, a, sb - sa + 1, b - a + 1)
        self.seen.setVisible(wider)
        self.dim.setRect(0, y0 + h, c, max(0, r - y0 - h))
        self.dim.setVisible(dim_future and y0 + h < r)
        self.dim_right.setRect(x1 + 1, y0, max(0, c - x1 - 1), h)
        self.dim_right.setVisible(dim_future and x1 + 1 < c)

    def band_rect(self) -> tuple[float, float, float, float]:
        """(x, y, width, height) of the highlighted band, in image pixels."""
        rect = self.band.rect()
        return rect.x(), rect.y(), rect.width(), rect.height()

    def seen_at(self, t: int) -> tuple[int, int] | None:
        """0-based first and last image row that step ``t`` (1-based) sees, if known."""
        if self.seen_rows is None or not 1 <= t <= len(self.seen_rows):
            return None
        a, b = self.seen_rows[t - 1]
        return int(a), int(b)

    def _step_of_row(self, row: int, col: int = 0) -> int:
        if self.step_rows is not None:
            inside = (self.step_rows[:, 0] <= row) & (row <= self.step_rows[:, 1])
            if self.step_cols is not None and len(self.step_cols) == len(self.step_rows):
                inside &= (self.step_cols[:, 0] <= col) & (col <= self.step_cols[:, 1])
            hit = np.flatnonzero(inside)
            if hit.size:
                return int(hit[0]) + 1
        return row // self.rows_per_step + 1

    def _hover(self, col, row, value):
        step = self._step_of_row(row, col)
        m = self.marked_rows
        cue = ", cue row" if m is not None and m[0] <= row <= m[1] else ""
        if np.ndim(value) == 0:
            return f"row {row + 1} (timestep {step}{cue}), column {col + 1}: {float(value):.3g}"
        rgb = ", ".join(str(int(v)) for v in value)
        return f"row {row + 1} (timestep {step}{cue}), column {col + 1}: RGB {rgb}"
