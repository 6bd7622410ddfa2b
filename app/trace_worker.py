"""Traces for the explorer and the vanishing tab, computed off the GUI thread.

One long-lived worker. ``request_trace(job)`` / ``request_mistakes(job)`` may be called any
number of times from the GUI thread: only the newest job of each kind is kept, so following a
training run never builds a queue. Results come back as plain dicts (``traced``, ``mistakes``).
The worker stays up until its thread is quit (it never emits ``done``).
"""

from __future__ import annotations

import threading

import numpy as np
from PySide6 import QtCore

from app.trace_job import ModelCache, explorer_trace, misclassified
from app.worker_thread import Worker
from core.blas import limit_blas_threads


class TraceWorker(Worker):
    traced = QtCore.Signal(dict)
    mistakes = QtCore.Signal(str, object)   # split, int64 indices
    _wake = QtCore.Signal()
    doing = "tracing"

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._trace_job: dict | None = None
        self._mistakes_job: dict | None = None
        self._cancelled = threading.Event()
        self._cache = ModelCache()
        self._wake.connect(self._process, QtCore.Qt.QueuedConnection)

    @QtCore.Slot()
    def run(self):
        """The thread has started: requests are served from here on, each in ``_process``."""
        limit_blas_threads(1)

    def cancel(self):
        self._cancelled.set()

    def request_trace(self, job: dict):
        """job: snapshot, image, label, split, index, class_names, batch_images, batch_labels."""
        with self._lock:
            self._trace_job = job
        self._wake.emit()

    def request_mistakes(self, job: dict):
        """job: snapshot, split, images, labels."""
        with self._lock:
            self._mistakes_job = job
        self._wake.emit()

    @QtCore.Slot()
    def _process(self):
        while not self._cancelled.is_set():
            with self._lock:
                job, kind = self._trace_job, "trace"
                self._trace_job = None
                if job is None:
                    job, kind = self._mistakes_job, "mistakes"
                    self._mistakes_job = None
            if job is None:
                return
            with self.errors_reported():
                if kind == "trace":
                    self.traced.emit(explorer_trace(
                        self._cache, job["snapshot"], job["image"], job["label"], job["split"],
                        job["index"], job["class_names"], job.get("batch_images"),
                        job.get("batch_labels")))
                else:
                    idx = misclassified(self._cache, job["snapshot"], job["images"],
                                        job["labels"])
                    self.mistakes.emit(job["split"], np.asarray(idx, dtype=np.int64))
