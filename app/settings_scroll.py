"""The settings dock's scroll area, and value widgets that ignore the wheel until focused.

A spin box or combo box under the mouse takes every wheel event by default, so scrolling down
a form of them changes whichever value passes under the pointer. Guarded widgets take the
wheel only once they have keyboard focus (a click or Tab); otherwise the wheel goes to their
parent, which scrolls the panel.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

VALUE_WIDGETS = (QtWidgets.QAbstractSpinBox, QtWidgets.QComboBox)


class _WheelNeedsFocus(QtCore.QObject):
    """Event filter: a wheel event on an unfocused value widget scrolls the scroll area it is
    in (if any) instead of changing the value."""

    def eventFilter(self, obj, event):
        if event.type() == QtCore.QEvent.Wheel and isinstance(obj, QtWidgets.QWidget):
            if not obj.hasFocus():
                area = obj.parentWidget()
                while area is not None and not isinstance(area, QtWidgets.QAbstractScrollArea):
                    area = area.parentWidget()
                if area is not None:
                    QtCore.QCoreApplication.sendEvent(area.verticalScrollBar(), event)
                return True
        return False


_FILTER: list[_WheelNeedsFocus] = []   # one filter object for the whole app


def guard_wheel(root: QtWidgets.QWidget) -> None:
    """Make every spin box and combo box under ``root`` take the wheel only when focused."""
    if not _FILTER:
        _FILTER.append(_WheelNeedsFocus(QtWidgets.QApplication.instance()))
    for cls in VALUE_WIDGETS:
        for w in root.findChildren(cls):
            if w.property("wheelGuarded"):
                continue
            w.setFocusPolicy(QtCore.Qt.StrongFocus)
            w.installEventFilter(_FILTER[0])
            w.setProperty("wheelGuarded", True)


def shrinkable_combos(root: QtWidgets.QWidget, chars: int = 10) -> None:
    """Let combo boxes get narrower than their longest item (the popup still shows it all)."""
    for c in root.findChildren(QtWidgets.QComboBox):
        c.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
        c.setMinimumContentsLength(chars)


class SettingsScroll(QtWidgets.QScrollArea):
    """Scrolls ``content`` vertically; never narrower than the content's minimum width, so
    every control stays entirely visible, and a horizontal bar only as a last resort."""

    def __init__(self, content: QtWidgets.QWidget, parent=None):
        super().__init__(parent)
        self.setObjectName("settingsScroll")
        self.setWidget(content)
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.NoFrame)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOn)
        self.update_minimum_width()

    def showEvent(self, event):
        super().showEvent(event)
        self.update_minimum_width()   # the style sheet and fonts are final now

    def update_minimum_width(self) -> None:
        content = self.widget()
        bar = self.style().pixelMetric(QtWidgets.QStyle.PM_ScrollBarExtent)
        self.setMinimumWidth(content.minimumSizeHint().width() + bar
                             + 2 * self.frameWidth() + 2)

    def preferred_width(self) -> int:
        """Wide enough for the content at its preferred size (the width to restore)."""
        bar = self.style().pixelMetric(QtWidgets.QStyle.PM_ScrollBarExtent)
        return max(self.minimumWidth(), self.widget().sizeHint().width() + bar + 4)
