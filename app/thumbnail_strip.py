"""A one-row strip of small image thumbnails; clicking one emits its index."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets


def to_pixmap(image: np.ndarray, size: int) -> QtGui.QPixmap:
    """uint8 (R, C, 3) -> a QPixmap scaled to ``size`` px without smoothing."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = img.shape[:2]
    qimg = QtGui.QImage(img.data, w, h, 3 * w, QtGui.QImage.Format_RGB888).copy()
    return QtGui.QPixmap.fromImage(qimg).scaled(
        size, size, QtCore.Qt.KeepAspectRatio, QtCore.Qt.FastTransformation)


class ThumbnailStrip(QtWidgets.QListWidget):
    """``set_images(images (N,32,32,3), indices, captions)``; ``picked(index)`` on click."""

    picked = QtCore.Signal(int)

    def __init__(self, size: int = 40, parent=None):
        super().__init__(parent)
        self.setObjectName("thumbnailStrip")
        self.setViewMode(QtWidgets.QListView.IconMode)
        self.setFlow(QtWidgets.QListView.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QtWidgets.QListView.Static)
        self.setIconSize(QtCore.QSize(size, size))
        self.setSpacing(1)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        self.setFixedHeight(size + 22)
        self.size = size
        self.itemClicked.connect(lambda it: self.picked.emit(int(it.data(QtCore.Qt.UserRole))))

    def set_images(self, images, indices, captions):
        self.clear()
        for img, idx, cap in zip(images, indices, captions):
            it = QtWidgets.QListWidgetItem(QtGui.QIcon(to_pixmap(img, self.size)), "")
            it.setData(QtCore.Qt.UserRole, int(idx))
            it.setToolTip(f"#{idx}: {cap}")
            self.addItem(it)
