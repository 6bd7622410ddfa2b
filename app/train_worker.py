"""Training on a background thread: the core Trainer, driven step by step.

Signals carry plain data only (copied arrays, dicts), never live model objects:
- ``steps(list)``: step events batched so at most ~20 arrive per second (no step is dropped:
  each batch holds every step since the previous one);
- ``event(dict)``: 'started' / 'eval' / 'checkpoint' / 'finished' events, at once;
- ``snapshot(dict)``: a copy of the model (see app/trace_job.py) about once per second, so the
  explorer can follow training without touching the training thread's arrays;
- ``failed(str)``: a one-line error (bad option, bad checkpoint) — nothing was trained;
- ``done()``: the loop has ended (the thread may quit).
The worker limits BLAS to one thread and trains with ``workers=1`` (no batch-parallel
threads, whatever a preset or a loaded checkpoint says) so the GUI thread keeps a core of its own.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
from PySide6 import QtCore

from app.trace_job import snapshot_of
from app.worker_thread import Worker
from core.blas import limit_blas_threads
from core.errors import RnnscopeError
from core.trainer import Trainer

EMIT_INTERVAL_S = 0.05      # step batches: ~20 per second at most
SNAPSHOT_INTERVAL_S = 1.0   # model copies for the explorer / vanishing tab


APP_WORKERS = 1             # batch-parallel training threads in the app (the CLI may use more)


def app_config(config):
    """``config`` with ``workers=1`` (unchanged if it already is)."""
    if config is not None and config.workers != APP_WORKERS:
        return dataclasses.replace(config, workers=APP_WORKERS)
    return config


def app_resume_overrides() -> dict:
    """Overrides for ``Trainer.resume_from``: continue a run on one training thread."""
    return {"workers": APP_WORKERS}


def _copy_event(ev: dict) -> dict:
    out = {}
    for k, v in ev.items():
        if isinstance(v, np.ndarray):
            out[k] = v.copy()
        elif isinstance(v, dict):
            out[k] = _copy_event(v)
        else:
            out[k] = v
    return out


class TrainWorker(Worker):
    """Train ``config`` on ``splits`` (or continue ``trainer``) until done, cancelled or failed."""

    steps = QtCore.Signal(list)
    event = QtCore.Signal(dict)
    snapshot = QtCore.Signal(dict)
    doing = "training"

    def __init__(self, config=None, splits=None, trainer=None, checkpoint_dir=None,
                 snapshot_interval: float = SNAPSHOT_INTERVAL_S):
        super().__init__()
        self.config = app_config(config)
        self.splits = splits
        self.trainer = trainer
        self.checkpoint_dir = checkpoint_dir
        self.snapshot_interval = snapshot_interval
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._pause_requested = False
        self._save_requests: list[str] = []
        self._parked = False  # True while the loop is known to wait in a pause between steps

    # --- control from the GUI thread (thread-safe) -------------------------------------------
    def pause(self):
        with self._lock:
            self._pause_requested = True
            if self.trainer is not None:
                self.trainer.pause()

    def resume(self):
        with self._lock:
            self._pause_requested = False
            self._parked = False
            if self.trainer is not None:
                self.trainer.resume()

    def cancel(self):
        self._cancelled.set()
        with self._lock:
            self._parked = False
            if self.trainer is not None:
                self.trainer.cancel()

    def request_save(self, path: str):
        """Save a checkpoint between two steps (the worker owns the arrays while training)."""
        with self._lock:
            self._save_requests.append(str(path))
            if self._parked and self.trainer is not None and self.trainer.paused:
                # the loop waits inside the trainer's pause and resume() needs this lock:
                # nothing moves while we save from this thread
                self._save_pending()

    def _save_pending(self):
        while self._save_requests:
            path = self._save_requests.pop(0)
            try:
                self.trainer.save_checkpoint(path)
                self.event.emit({"type": "saved", "path": path})
            except (RnnscopeError, OSError) as exc:
                self.event.emit({"type": "save_failed", "path": path, "message": str(exc)})

    def _snapshot(self, label: str) -> dict:
        t = self.trainer
        return snapshot_of(t.model, t.normalizer, t.config.to_dict(), t.step, label)

    # --- the loop (worker thread) ----------------------------------------------------------------
    def work(self):
        limit_blas_threads(1)
        self._run()

    def _run(self):
        if self.trainer is None:
            trainer = Trainer(self.config, self.splits, checkpoint_dir=self.checkpoint_dir)
        else:
            trainer = self.trainer
        with self._lock:
            self.trainer = trainer
            if self._pause_requested:
                trainer.pause()
            if self._cancelled.is_set():
                trainer.cancel()
        cfg = trainer.config
        self.event.emit({"type": "started", "steps_per_epoch": trainer.steps_per_epoch,
                         "epochs": cfg.epochs, "step": trainer.step, "epoch": trainer.epoch,
                         "n_train": trainer.n_train, "T": cfg.timesteps,
                         "history": _copy_event({"steps": list(trainer.history["steps"]),
                                                 "evals": list(trainer.history["evals"])})})
        self.snapshot.emit(self._snapshot(f"step {trainer.step}"))
        pending: list[dict] = []
        last_emit = last_snap = time.perf_counter()
        for ev in trainer.events():
            now = time.perf_counter()
            if ev["type"] == "step":
                pending.append(_copy_event(ev))
                if now - last_emit >= EMIT_INTERVAL_S or trainer.paused:
                    self.steps.emit(pending)
                    pending = []
                    last_emit = now
            else:
                if pending:
                    self.steps.emit(pending)
                    pending = []
                    last_emit = now
                self.event.emit(_copy_event(ev))
            if now - last_snap >= self.snapshot_interval and ev["type"] != "finished":
                self.snapshot.emit(self._snapshot(f"training, step {trainer.step}"))
                last_snap = now
            with self._lock:
                if self._save_requests:
                    self._save_pending()
                # the generator checks the pause before its next step, so once paused here
                # it will wait without touching the parameters
                self._parked = trainer.paused
        with self._lock:
            self._parked = False
            if self._save_requests:
                self._save_pending()
        if pending:
            self.steps.emit(pending)
        reason = (trainer.finished or {}).get("reason", "")
        final = self._snapshot(f"after {trainer.step} steps ({reason})")
        final["final"] = True   # the model the run ended with: always worth a trace
        self.snapshot.emit(final)
