"""Load a data set on a background thread (CIFAR-10 decoding takes seconds the first time)."""

from __future__ import annotations

import time

from PySide6 import QtCore

from app.worker_thread import Worker
from core.blas import limit_blas_threads
from core.datasets import load_data


class LoadDataWorker(Worker):
    """``core.datasets.load_data(spec, ...)``; ``loaded(DataSplits)`` or ``failed(message)``.

    The DataSplits handed over is not touched by this thread afterwards.
    """

    progress = QtCore.Signal(int, int)
    loaded = QtCore.Signal(object)
    doing = "loading data"

    def __init__(self, spec, subset=None, scheme: str = "default", seed: int = 0,
                 probe_params: dict | None = None):
        super().__init__()
        self.spec, self.subset, self.scheme, self.seed = spec, subset, scheme, seed
        self.probe_params = probe_params
        self._last = 0.0

    def _progress(self, done: int, total: int):
        now = time.perf_counter()
        if now - self._last >= 0.05 or done >= total:
            self._last = now
            self.progress.emit(int(done), int(total))

    def work(self):
        limit_blas_threads(1)
        kw = {"probe_params": self.probe_params} if self.probe_params else {}
        splits = load_data(self.spec, scheme=self.scheme, subset=self.subset, seed=self.seed,
                           progress=self._progress, **kw)
        self.loaded.emit(splits)
