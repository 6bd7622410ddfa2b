"""The report of ``python main.py report`` for the current model, built on a worker thread.

The data is report.data.report_data (as the command line computes it for a checkpoint), here
from a model snapshot and the loaded splits; the figures are report.figures.report_figures,
the same as the command line's PNGs. matplotlib Figures are created here (no canvas) and
wrapped in FigureCanvasQTAgg on the GUI thread.
"""

from __future__ import annotations

import threading

from PySide6 import QtCore

from app.trace_job import ModelCache, model_text
from app.worker_thread import Worker
from core.analysis import Cancelled
from core.blas import limit_blas_threads
from report.data import report_data
from report.figures import report_figures


class ReportWorker(Worker):
    """``ready(summary, {name: Figure})`` or ``failed(message)``; ``status(text)`` meanwhile."""

    status = QtCore.Signal(str)
    ready = QtCore.Signal(dict, dict)
    doing = "building the report"

    def __init__(self, snapshot: dict, splits, history: dict, split: str = "test",
                 tsne_points: int = 500):
        super().__init__()
        self.snapshot, self.splits, self.history = snapshot, splits, history
        self.split, self.tsne_points = split, tsne_points
        self._cancel = threading.Event()

    def cancel(self):
        self._cancel.set()

    def work(self):
        limit_blas_threads(1)
        try:
            model, norm = ModelCache().model(self.snapshot)
            rd = report_data(model, norm, self.splits, self.history,
                             model_name=model_text(self.snapshot), split=self.split,
                             tsne_points=self.tsne_points, log=self.status.emit,
                             cancelled=self._cancel.is_set)
        except Cancelled:
            return
        if self._cancel.is_set():
            return
        self.status.emit("drawing figures ...")
        figs = report_figures(rd)
        if not self._cancel.is_set():
            summary = {"model": rd["model"], "data": rd["data"], "split": rd["split"],
                       **{k: v for k, v in rd["summary"].items()
                          if isinstance(v, (int, float))}}
            self.ready.emit(summary, figs)
