"""A word-wrapped rich-text label exactly as tall as its text at its current width.

QLabel's own heightForWidth overestimates rich text in a padded, bordered style by more than
2x (the vanishing tab's sentences got 254 px for 104 px of text), and a layout hands the surplus
to the label instead of the plot above it. This label lays its text out in a QTextDocument at
its contents width and fixes its height to that, on every resize and new text.
"""

from __future__ import annotations

import math

from PySide6 import QtGui, QtWidgets


class FittedLabel(QtWidgets.QLabel):
    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.setWordWrap(True)
        self._fit()

    def setText(self, text: str):
        super().setText(text)
        self._fit()

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        if ev.oldSize().width() != ev.size().width():
            self._fit()

    def changeEvent(self, ev):
        super().changeEvent(ev)
        if ev.type() in (ev.Type.FontChange, ev.Type.StyleChange):
            self._fit()

    def text_height(self) -> int:
        """Pixels the text needs at the current contents width."""
        doc = QtGui.QTextDocument()
        doc.setDefaultFont(self.font())
        doc.setDocumentMargin(0)
        if self.textFormat() == QtGui.Qt.PlainText:
            doc.setPlainText(self.text())
        else:
            doc.setHtml(self.text())
        doc.setTextWidth(max(1, self.contentsRect().width()))
        return int(math.ceil(doc.size().height()))

    def _fit(self):
        if not self.text():
            self.setFixedHeight(0)
            return
        chrome = self.height() - self.contentsRect().height()
        self.setFixedHeight(self.text_height() + chrome + 2)
