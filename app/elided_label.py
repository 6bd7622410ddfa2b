"""A one-line label that shortens its text with '…' when it is too narrow (superqt's
QElidingLabel) and then shows the whole text as its tooltip: titles and read-outs never get
cut mid-word without a way to read them, and never make their panel wider."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets
from superqt import QElidingLabel


class ElidedLabel(QElidingLabel):
    """Plain text on one line; ``full_text()`` is what was set, ``shown_text()`` what is shown."""

    def __init__(self, text: str = "", parent=None, elide=QtCore.Qt.ElideRight):
        super().__init__(parent)
        self.setTextFormat(QtCore.Qt.PlainText)
        self.setElideMode(elide)
        self.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Fixed)
        self.setFixedHeight(self.fontMetrics().height() + 2)
        self.setText(text)

    def full_text(self) -> str:
        return self.text()

    def shown_text(self) -> str:
        return QtWidgets.QLabel.text(self)

    def is_elided(self) -> bool:
        return self.shown_text() != self.full_text()

    def setText(self, text: str):
        super().setText(text or "")
        self._sync_tooltip()

    def resizeEvent(self, ev: QtGui.QResizeEvent):
        super().resizeEvent(ev)
        self._sync_tooltip()

    def changeEvent(self, ev: QtCore.QEvent):
        super().changeEvent(ev)
        if ev.type() in (QtCore.QEvent.FontChange, QtCore.QEvent.StyleChange):
            self.setFixedHeight(self.fontMetrics().height() + 2)
            super().setText(self.full_text())
            self._sync_tooltip()

    def _sync_tooltip(self):
        self.setToolTip(self.full_text() if self.is_elided() else "")
