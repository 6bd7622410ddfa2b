"""A one-line label that shortens its text with '…' when it is too narrow, and then shows the
whole text as its tooltip: titles and read-outs never get cut mid-word without a way to read
them, and never make their panel wider."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


class ElidedLabel(QtWidgets.QLabel):
    """Plain text on one line; ``full_text()`` is what was set, ``text()`` what is shown."""

    def __init__(self, text: str = "", parent=None, elide=QtCore.Qt.ElideRight):
        super().__init__(parent)
        self._full = ""
        self._elide = elide
        self.setTextFormat(QtCore.Qt.PlainText)
        self.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Fixed)
        self.setFixedHeight(self.fontMetrics().height() + 2)
        self.setText(text)

    def full_text(self) -> str:
        return self._full

    def setText(self, text: str):
        self._full = text or ""
        self._refit()

    def is_elided(self) -> bool:
        return super().text() != self._full

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(10, self.height())

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(self.fontMetrics().horizontalAdvance(self._full) + 4, self.height())

    def resizeEvent(self, ev: QtGui.QResizeEvent):
        super().resizeEvent(ev)
        self._refit()

    def changeEvent(self, ev: QtCore.QEvent):
        super().changeEvent(ev)
        if ev.type() in (QtCore.QEvent.FontChange, QtCore.QEvent.StyleChange):
            self.setFixedHeight(self.fontMetrics().height() + 2)
            self._refit()

    def _refit(self):
        shown = self.fontMetrics().elidedText(self._full, self._elide, max(0, self.width() - 2))
        super().setText(shown)
        self.setToolTip(self._full if shown != self._full else "")
