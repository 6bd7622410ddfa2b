"""A scroll area for a tab's views: they fill the window, and scroll only when the window is
smaller than their minimum size (instead of being drawn over each other or forcing the window
to grow past a laptop screen)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class FillScrollArea(QtWidgets.QScrollArea):
    """A scroll area whose widget fills the viewport and scrolls only below its minimum size.

    QScrollArea's own resizable mode sizes a widget with wrapped captions by height-for-width,
    which adds up every plot's preferred height and makes the views scroll at any window size.
    """

    def setWidget(self, w):
        super().setWidget(w)
        w.installEventFilter(self)

    def eventFilter(self, obj, ev):
        if obj is self.widget() and ev.type() == QtCore.QEvent.LayoutRequest:
            QtCore.QTimer.singleShot(0, self._fit)
        return False

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._fit()

    def _fit(self):
        w = self.widget()
        if w is None:
            return
        vp, least = self.viewport().size(), w.minimumSizeHint()
        w.resize(max(vp.width(), least.width()), max(vp.height(), least.height()))
