"""A plot with a title, an export button, a read-out line for the value under the mouse and
one sentence of help under it.

The title and the read-out are one line each and elide (full text in the tooltip), so a long
value or a narrow window never pushes the layout around. The read-out is cleared when the
mouse leaves the plot and when the plot's data changes (see app/hover.py).
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.elided_label import ElidedLabel
from app.hover import HoverReadout
from app.plot_export import export_plot
from app.plot_style import reserve_wrapped_height
from app.resources import icon
from app.settings import ask_save_path, window_settings
from core.errors import RnnscopeError

FOLDER_KEY = "plots"      # the export dialog's folder in app/settings.py's store


class PlotFrame(QtWidgets.QFrame):
    """Wrap ``plot`` (a pyqtgraph PlotWidget or a matplotlib canvas) for display and export;
    ``beside`` (optional) is shown to the right of the plot; ``scroll`` shows the plot at its
    own size in a scroll area.

    ``exported(png, csv)`` is emitted after a successful export; errors go to ``message``.
    The export dialog opens in the folder the last export went to (the window's QSettings).
    """

    exported = QtCore.Signal(str, str)
    message = QtCore.Signal(str)

    def __init__(self, title: str, plot: QtWidgets.QWidget, caption: str = "",
                 export_name: str = "plot", parent=None, hover: bool = True,
                 beside: QtWidgets.QWidget | None = None, scroll: bool = False):
        super().__init__(parent)
        self.setObjectName("plotFrame")
        self.plot = plot
        self.export_name = export_name
        self.title_label = ElidedLabel(title)
        self.title_label.setObjectName("plotTitle")
        self.readout = ElidedLabel("", elide=QtCore.Qt.ElideLeft)
        self.readout.setObjectName("hoverReadout")
        self.export_button = QtWidgets.QToolButton()
        self.export_button.setIcon(icon("export"))
        self.export_button.setToolTip("Export this plot: PNG image + CSV of its data")
        self.export_button.setAutoRaise(True)
        self.export_button.clicked.connect(self._ask_export)

        head = QtWidgets.QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.title_label, 1)
        head.addWidget(self.export_button)
        self._head = head
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(2)
        lay.addLayout(head)
        if scroll:   # shown at its own size (e.g. an image grid whose captions must stay legible)
            area = QtWidgets.QScrollArea()
            area.setObjectName("plotScroll")
            area.setWidget(plot)
            area.setAlignment(QtCore.Qt.AlignHCenter)
            lay.addWidget(area, 1)
        elif beside is None:
            lay.addWidget(plot, 1)
        else:   # e.g. a legend: to the right of the plot, never over its data
            row = QtWidgets.QHBoxLayout()
            row.setContentsMargins(0, 0, 0, 0)
            row.addWidget(plot, 1)
            row.addWidget(beside, 0, QtCore.Qt.AlignTop)
            lay.addLayout(row, 1)
        self.readout.setVisible(hover and hasattr(plot, "getPlotItem"))
        lay.addWidget(self.readout)
        self.caption = QtWidgets.QLabel(caption)
        self.caption.setObjectName("plotCaption")
        self.caption.setWordWrap(True)
        self.caption.setVisible(bool(caption))
        lay.addWidget(self.caption)
        self._hover = None
        if hover and hasattr(plot, "getPlotItem"):
            self._hover = HoverReadout(plot, self.readout.setText, self)

    def hasHeightForWidth(self) -> bool:
        # the caption's height is reserved as its minimum height (resizeEvent); a frame that
        # also answered height-for-width would be squeezed below that minimum by its column
        return False

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        reserve_wrapped_height(self.caption, self.contentsRect().width() - 12)

    def add_header_widget(self, widget: QtWidgets.QWidget):
        """Put ``widget`` (e.g. a selector of what the plot shows) in the title line, before
        the export button."""
        self._head.insertWidget(self._head.count() - 1, widget)

    def set_title(self, title: str):
        self.title_label.setText(title)

    def set_caption(self, text: str):
        self.caption.setText(text)
        self.caption.setVisible(bool(text))
        reserve_wrapped_height(self.caption, self.contentsRect().width() - 12)

    def export_to(self, png_path) -> tuple[Path, Path]:
        """Write ``png_path`` and the CSV beside it; returns both paths."""
        return export_plot(self.plot, png_path)

    def _ask_export(self):
        path = ask_save_path(self, window_settings(self), FOLDER_KEY, "Export plot (PNG + CSV)",
                             f"{self.export_name}.png", "PNG image (*.png)")
        if not path:
            return
        try:
            png, csv_path = self.export_to(path)
        except RnnscopeError as exc:     # core.fileio's one-line WriteError
            self.message.emit(f"Could not export the plot: {exc}")
            return
        self.exported.emit(str(png), str(csv_path))
        self.message.emit(f"Saved {png.name} and {csv_path.name} in {png.parent}")
