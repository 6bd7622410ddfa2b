"""A plot with a title, an export button, a hover readout and one sentence of help under it."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets
from superqt import QElidingLabel

from app.hover import HoverReadout
from app.plot_export import export_plot
from app.resources import icon

_last_dir: list[Path] = [Path.home()]


class PlotFrame(QtWidgets.QFrame):
    """Wrap ``plot`` (a pyqtgraph PlotWidget or a matplotlib canvas) for display and export.

    ``exported(png, csv)`` is emitted after a successful export; errors go to ``message``.
    """

    exported = QtCore.Signal(str, str)
    message = QtCore.Signal(str)

    def __init__(self, title: str, plot: QtWidgets.QWidget, caption: str = "",
                 export_name: str = "plot", parent=None, hover: bool = True):
        super().__init__(parent)
        self.setObjectName("plotFrame")
        self.plot = plot
        self.export_name = export_name
        # a title longer than the frame is elided (the whole of it in the tooltip), so it
        # never sets the frame's minimum width
        self.title_label = QElidingLabel(title)
        self.title_label.setObjectName("plotTitle")
        self.title_label.setToolTip(title)
        self.readout = QtWidgets.QLabel("")
        self.readout.setObjectName("hoverReadout")
        self.readout.setAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
        self.readout.setMinimumWidth(10)
        self.readout.setSizePolicy(QtWidgets.QSizePolicy.Ignored,
                                   QtWidgets.QSizePolicy.Preferred)
        self.export_button = QtWidgets.QToolButton()
        self.export_button.setIcon(icon("export"))
        self.export_button.setToolTip("Export this plot: PNG image + CSV of its data")
        self.export_button.setAutoRaise(True)
        self.export_button.clicked.connect(self._ask_export)

        head = QtWidgets.QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.title_label, 3)
        head.addWidget(self.readout, 1)
        head.addWidget(self.export_button)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(2)
        lay.addLayout(head)
        lay.addWidget(plot, 1)
        self.caption = QtWidgets.QLabel(caption)
        self.caption.setObjectName("plotCaption")
        self.caption.setWordWrap(True)
        self.caption.setVisible(bool(caption))
        lay.addWidget(self.caption)
        if hover and hasattr(plot, "getPlotItem"):
            self._hover = HoverReadout(plot, self.readout.setText, self)

    def set_caption(self, text: str):
        self.caption.setText(text)
        self.caption.setVisible(bool(text))

    def export_to(self, png_path) -> tuple[Path, Path]:
        """Write ``png_path`` and the CSV beside it; returns both paths."""
        return export_plot(self.plot, png_path)

    def _ask_export(self):
        start = str(_last_dir[0] / f"{self.export_name}.png")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export plot (PNG + CSV)", start, "PNG image (*.png)")
        if not path:
            return
        try:
            png, csv_path = self.export_to(path)
        except OSError as exc:
            self.message.emit(f"Could not export to {path}: {exc.strerror or exc}")
            return
        _last_dir[0] = png.parent
        self.exported.emit(str(png), str(csv_path))
        self.message.emit(f"Saved {png.name} and {csv_path.name} in {png.parent}")
