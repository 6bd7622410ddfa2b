"""Download CIFAR-10 with the core downloader on a background thread, cancellable."""

from __future__ import annotations

import threading
import time

# Imported here, on the GUI thread, with what core.download imports lazily: a module's first
# import made on a worker thread can deadlock against the GUI thread.
import pooch  # noqa: F401
import requests  # noqa: F401
from PySide6 import QtCore

from app.worker_thread import Worker
from core.download import download_cifar10
from core.errors import DownloadCancelled


class DownloadWorker(Worker):
    """``progress(done_bytes, total_bytes, bytes_per_s)`` ~10/s; ``finished(path)``,
    ``cancelled(message)`` or ``failed(message)``; then ``done()``."""

    progress = QtCore.Signal(float, float, float)
    finished = QtCore.Signal(str)
    cancelled = QtCore.Signal(str)
    doing = "downloading"

    def __init__(self, dest_dir=None, url: str | None = None, md5: str | None = None):
        super().__init__()
        self.dest_dir = dest_dir
        self.url = url
        self.md5 = md5
        self._cancel = threading.Event()
        self._t0 = None
        self._last = 0.0

    def cancel(self):
        self._cancel.set()

    def _progress(self, done: int, total: int):
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        if now - self._last >= 0.1 or (total and done >= total):
            self._last = now
            speed = done / max(1e-6, now - self._t0)
            self.progress.emit(float(done), float(total), float(speed))

    def work(self):
        kw = {"url": self.url} if self.url else {}
        if self.md5:
            kw["md5"] = self.md5
        try:
            path = download_cifar10(self.dest_dir, progress=self._progress,
                                    cancel=self._cancel.is_set, **kw)
        except DownloadCancelled as exc:
            self.cancelled.emit(str(exc))
            return
        self.finished.emit(str(path))
