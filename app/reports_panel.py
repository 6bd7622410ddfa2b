"""Reports: the figures of `python main.py report` for the current model, shown in the app.

The data and the matplotlib Figures are built on a worker thread (app/report_worker.py); this
panel only wraps each Figure in a FigureCanvasQTAgg on the GUI thread.
"""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from PySide6 import QtCore, QtWidgets

from app.plot_frame import PlotFrame
from report.figures import REPORT_ORDER

TITLES = {
    "curves": ("Training curves", "Loss and accuracy over the run (faint: per batch)."),
    "confusion": ("Confusion matrix", "Rows: true class, columns: predicted. Off-diagonal "
                  "cells show which classes the model mixes up."),
    "reliability": ("Reliability", "Bars on the diagonal = calibrated: a 70% answer is right "
                    "70% of the time. ECE is the average gap."),
    "tsne": ("t-SNE of h_T", "Final hidden states squeezed to 2-D: separate clusters mean "
             "the memory at the last row tells the classes apart."),
    "gallery": ("Confident mistakes", "Wrong answers the model was surest about."),
    "predictions": ("Predictions", "A random sample: green right, red wrong."),
    "grad_through_time": ("Gradient through time", "||dl/dh_t|| per timestep over "
                          "training, as saved in the run's history."),
}


# Figures shown at their own size (scrolling when larger than the tab): squeezed to the tab,
# an image grid's captions would run into each other.
NATURAL_SIZE = ("gallery", "predictions")


class ReportsPanel(QtWidgets.QWidget):
    buildRequested = QtCore.Signal(str)   # split
    message = QtCore.Signal(str)          # from the figures' frames (an export's outcome)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("reportsPanel")
        self.build_button = QtWidgets.QPushButton("Build report for the current model")
        self.build_button.setObjectName("reportButton")
        self.split_combo = QtWidgets.QComboBox()
        self.split_combo.setObjectName("reportSplit")
        self.split_combo.addItems(["test", "val"])
        self.status = QtWidgets.QLabel("The report predicts a whole split and runs t-SNE, so "
                                       "it takes a few seconds; it runs in the background.")
        self.status.setObjectName("reportStatus")
        self.status.setWordWrap(True)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setObjectName("reportTabs")
        self.tabs.setDocumentMode(True)
        head = QtWidgets.QHBoxLayout()
        head.addWidget(self.build_button)
        head.addWidget(QtWidgets.QLabel("on the"))
        head.addWidget(self.split_combo)
        head.addWidget(QtWidgets.QLabel("split"))
        head.addWidget(self.status, 1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addLayout(head)
        lay.addWidget(self.tabs, 1)
        self.frames: dict[str, PlotFrame] = {}
        self.build_button.clicked.connect(
            lambda: self.buildRequested.emit(self.split_combo.currentText()))

    def set_busy(self, text: str):
        self.build_button.setEnabled(False)
        self.status.setText(text)

    def set_status(self, text: str):
        self.status.setText(text)

    def set_failed(self, text: str):
        self.build_button.setEnabled(True)
        self.status.setText(f"<span style='color:#c62828'>{text}</span>")

    def set_figures(self, summary: dict, figures: dict):
        """Replace the tabs with canvases for ``figures`` (name -> matplotlib Figure)."""
        self.build_button.setEnabled(True)
        current = self.tabs.currentIndex()
        while self.tabs.count():
            w = self.tabs.widget(0)
            self.tabs.removeTab(0)
            w.deleteLater()
        self.frames = {}
        for name in REPORT_ORDER:
            if name not in figures:
                continue
            title, caption = TITLES.get(name, (name, ""))
            fig = figures[name]
            canvas = FigureCanvasQTAgg(fig)
            canvas.setObjectName(f"report_{name}")
            grid = name in NATURAL_SIZE
            if grid:   # image grids keep the size their captions were laid out for
                w, h = (fig.get_size_inches() * fig.dpi).astype(int)
                canvas.setFixedSize(int(w), int(h))
            else:
                canvas.setMinimumSize(300, 240)
            frame = PlotFrame(title, canvas, caption, export_name=f"report_{name}", hover=False,
                              scroll=grid)
            frame.message.connect(self.message)
            self.frames[name] = frame
            self.tabs.addTab(frame, title)
        if 0 <= current < self.tabs.count():
            self.tabs.setCurrentIndex(current)
        acc, loss, ece = summary.get("acc"), summary.get("loss"), summary.get("ece")
        self.status.setText(
            f"{summary.get('model', '')} on {summary.get('n', '?')} {summary.get('split')} "
            f"images: accuracy <b>{acc:.1%}</b>, loss {loss:.3f}, ECE {ece:.1%}")
