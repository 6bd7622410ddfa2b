"""The memory bench on a worker thread (core.memory_bench.run_bench) for the Memory tab.

``run_bench`` reports plain dicts; this worker forwards them as signals: every bench start,
run start and finished run as it happens (a run takes seconds, so these are few), and the
training steps of the running run at most ``STEP_SIGNAL_S`` apart (the last one of a run is
always sent, so the progress never stops short). ``cancel()`` makes ``run_bench`` stop within
one training step of each run. Finished runs keep their trained parameters (keep_params) so the
tab can open one in the Explorer.
"""

from __future__ import annotations

import threading
import time

from PySide6 import QtCore

from app.worker_thread import Worker
from core.memory_bench import BenchConfig, run_bench

STEP_SIGNAL_S = 0.1   # at most ~10 progress signals a second reach the GUI thread


class MemoryWorker(Worker):
    benchStarted = QtCore.Signal(object)    # the 'bench_start' event
    runStarted = QtCore.Signal(object)      # 'run_start'
    runStep = QtCore.Signal(object)         # 'run_step', throttled
    runDone = QtCore.Signal(object)         # 'run_done' with its result (and 'trained')
    benchDone = QtCore.Signal(object)       # the memory.json document of the finished runs
    doing = "running the memory bench"

    def __init__(self, config: BenchConfig, workers: int = 1):
        super().__init__()
        self.config = config
        self.workers = int(workers)
        self._stop = threading.Event()
        self._last_step = 0.0

    def cancel(self):
        self._stop.set()

    def _progress(self, ev: dict):
        kind = ev["type"]
        if kind == "run_step":
            now = time.monotonic()
            if now - self._last_step < STEP_SIGNAL_S and ev["step"] < ev["total_steps"]:
                return
            self._last_step = now
            self.runStep.emit(dict(ev))
        elif kind == "bench_start":
            self.benchStarted.emit(dict(ev))
        elif kind == "run_start":
            self.runStarted.emit(dict(ev))
        elif kind == "run_done":
            self.runDone.emit(dict(ev))

    def work(self):
        doc = run_bench(self.config, workers=self.workers, progress=self._progress,
                        should_stop=self._stop.is_set, keep_params=True)
        doc["stopped"] = self._stop.is_set()
        self.benchDone.emit(doc)
