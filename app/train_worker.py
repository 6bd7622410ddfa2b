"""Training on a background thread: the core Trainer, driven step by step.

Signals carry plain data only (copied arrays, dicts), never live model objects:
- ``steps(list)``: step events batched so at most ~20 arrive per second (no step is dropped:
  each batch holds every step since the previous one);
- ``history(dict)``: the trainer's own history records ('steps', 'evals', 'dh_norm') added
  since the previous emission, just before each ``steps`` batch: the app shows the trainer's
  history, the same records ``main.py report`` draws;
- ``event(dict)``: 'started' (with a copy of the whole history so far) / 'eval' / 'checkpoint'
  / 'finished' events, at once;
- ``snapshot(dict)``: a copy of the model (see app/trace_job.py) about once per second, so the
  explorer can follow training without touching the training thread's arrays;
- ``failed(str)``: a one-line error (bad option, bad checkpoint) — nothing was trained;
- ``done()``: the loop has ended (the thread may quit).
Pause and save wait for a consistent point: a step after which no evaluation is due, or an
evaluation that cannot end the run (the trainer then parks before its next step, having
changed nothing since). A save is written on the worker thread there, or, while parked, from
the caller's thread (nothing in the trainer moves then).
The worker limits BLAS to one thread and trains with ``workers`` processes, whatever a preset
or a loaded checkpoint says: 1 by default (the trainer's own thread) so the GUI thread keeps a
core of its own, or ``all_cores_workers()`` worker processes when the user chose "Train on all
cores" (``app_workers``). The worker processes are spawned interpreters that import only
``core`` (no Qt); the trainer ends them and frees their shared memory when its
``events()`` ends — finished, stopped, cancelled by closing the window, or failed (a worker
that dies raises ``core.process_parallel.WorkerError``, which reaches ``failed``).
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
from core.threads import default_workers
from core.trainer import Trainer

EMIT_INTERVAL_S = 0.05      # step batches: ~20 per second at most
SNAPSHOT_INTERVAL_S = 1.0   # model copies for the explorer / vanishing tab


APP_WORKERS = 1             # the app's default: the trainer's thread, no worker processes
ALL_CORES_CAP = 4           # at most this many worker processes with "Train on all cores"


def all_cores_workers() -> int:
    """Worker processes for "Train on all cores": this process's cores, at most 4."""
    return default_workers(ALL_CORES_CAP)


def app_workers(all_cores: bool) -> int:
    """The ``workers`` the app trains with: ``all_cores_workers()`` if chosen, else 1."""
    return all_cores_workers() if all_cores else APP_WORKERS


def app_config(config, workers: int = APP_WORKERS):
    """``config`` with ``workers`` (unchanged if it already has it)."""
    if config is not None and config.workers != workers:
        return dataclasses.replace(config, workers=workers)
    return config


def app_resume_overrides(workers: int = APP_WORKERS) -> dict:
    """Overrides for ``Trainer.resume_from``: continue a run on ``workers`` processes."""
    return {"workers": workers}


def processes_text(workers: int) -> str:
    """'1 process' / '2 processes': what trains a run of ``workers``."""
    return f"{workers} process" + ("" if workers == 1 else "es")


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


def consistent_point(trainer, ev: dict) -> bool:
    """True if ``trainer``'s state right after yielding ``ev`` is what it will be when it next
    parks between steps: a step after which no evaluation is due, or an evaluation during the
    run that did not exhaust the patience (so no early stop, no restored parameters follow)."""
    cfg = trainer.config
    if ev["type"] == "eval":
        over_budget = (cfg.max_minutes is not None
                       and trainer.seconds >= cfg.max_minutes * 60.0)
        if trainer.epoch_index >= cfg.epochs or over_budget:
            return False   # the final evaluation: the run ends after it
    if ev["type"] == "step":
        due = (trainer.step % cfg.eval_every == 0) if cfg.eval_every > 0 else trainer.pos == 0
        return not due
    if ev["type"] == "eval":
        return cfg.patience <= 0 or bool(ev.get("best"))
    return False


class TrainWorker(Worker):
    """Train ``config`` on ``splits``, continue ``trainer`` (a stopped run, in place) or resume
    the checkpoint ``resume_path`` on ``splits``, until done, cancelled or failed, on
    ``workers`` processes (1: this thread only; see the module doc)."""

    steps = QtCore.Signal(list)
    history = QtCore.Signal(dict)
    event = QtCore.Signal(dict)
    snapshot = QtCore.Signal(dict)
    doing = "training"

    def __init__(self, config=None, splits=None, trainer=None, checkpoint_dir=None,
                 snapshot_interval: float = SNAPSHOT_INTERVAL_S, resume_path=None,
                 stopped_params: dict | None = None, workers: int = APP_WORKERS):
        super().__init__()
        self.workers = int(workers)
        self.config = app_config(config, self.workers)
        self.splits = splits
        self.trainer = trainer
        self.resume_path = resume_path
        self.checkpoint_dir = checkpoint_dir
        self.snapshot_interval = snapshot_interval
        # the parameters at the last step event: a Stop restores the best ones over them,
        # and continuing in place needs these (see Trainer.reopen)
        self.stopped_params = stopped_params
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._pause_requested = False
        self._save_requests: list[str] = []
        self._parked = False  # True while the trainer waits between steps at a consistent point
        self._sent = {"steps": 0, "evals": 0, "dh_norm": 0}

    # --- control from the GUI thread (thread-safe) -------------------------------------------
    def pause(self):
        """Pause at the next consistent point (see consistent_point)."""
        with self._lock:
            self._pause_requested = True

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
        """Save a checkpoint at the next consistent point (the worker owns the arrays)."""
        with self._lock:
            self._save_requests.append(str(path))
            if self._parked:
                # parked at a consistent point, and resume()/cancel() need this lock:
                # nothing in the trainer moves while we save from this thread
                self._save_pending()

    def _save_pending(self):
        while self._save_requests:
            path = self._save_requests.pop(0)
            try:
                self.trainer.save_checkpoint(path)
                self.event.emit({"type": "saved", "path": path, "step": self.trainer.step})
            except (RnnscopeError, OSError) as exc:
                self.event.emit({"type": "save_failed", "path": path, "message": str(exc)})

    def _snapshot(self, label: str) -> dict:
        t = self.trainer
        return snapshot_of(t.model, t.normalizer, t.config.to_dict(), t.step, label)

    def _history_delta(self) -> dict:
        """The trainer's history records added since the last call (copies)."""
        h = self.trainer.history
        out = {}
        for key, n in self._sent.items():
            new = h[key][n:]
            self._sent[key] = n + len(new)
            out[key] = [dict(r) if isinstance(r, dict) else [r[0], list(r[1])] for r in new]
        return out

    # --- the loop (worker thread) ----------------------------------------------------------------
    def work(self):
        limit_blas_threads(1)
        self._run()

    def _make_trainer(self):
        if self.trainer is not None:
            self.trainer.reopen(self.stopped_params, workers=self.workers)
            return self.trainer
        if self.resume_path is not None:
            return Trainer.resume_from(self.resume_path, self.splits, checkpoint_dir=None,
                                       overrides=app_resume_overrides(self.workers),
                                       parent_part=False)
        # Every part on worker processes: the window's process keeps its core for the GUI.
        return Trainer(self.config, self.splits, checkpoint_dir=self.checkpoint_dir,
                       parent_part=False)

    def _emit_steps(self, pending: list[dict]):
        self.history.emit(self._history_delta())
        self.steps.emit(pending)

    def _run(self):
        trainer = self._make_trainer()
        with self._lock:
            self.trainer = trainer
            if self._cancelled.is_set():
                trainer.cancel()
        cfg = trainer.config
        h = trainer.history
        self._sent = {k: len(h[k]) for k in self._sent}
        self.event.emit({"type": "started", "steps_per_epoch": trainer.steps_per_epoch,
                         "epochs": cfg.epochs, "step": trainer.step, "epoch": trainer.epoch,
                         "n_train": trainer.n_train, "T": cfg.timesteps,
                         "workers": cfg.workers,
                         "history": _copy_event({"steps": [dict(r) for r in h["steps"]],
                                                 "evals": [dict(r) for r in h["evals"]],
                                                 "dh_norm": [[r[0], list(r[1])]
                                                             for r in h["dh_norm"]]})})
        self.snapshot.emit(self._snapshot(f"step {trainer.step}"))
        pending: list[dict] = []
        last_emit = last_snap = time.perf_counter()
        for ev in trainer.events():
            now = time.perf_counter()
            if ev["type"] == "step":
                self.stopped_params = {k: v.copy() for k, v in trainer.model.params.items()}
                pending.append(_copy_event(ev))
                if now - last_emit >= EMIT_INTERVAL_S or self._pause_requested:
                    self._emit_steps(pending)
                    pending = []
                    last_emit = now
            else:
                if pending:
                    self._emit_steps(pending)
                    pending = []
                    last_emit = now
                if ev["type"] == "eval":
                    self.history.emit(self._history_delta())
                self.event.emit(_copy_event(ev))
            if now - last_snap >= self.snapshot_interval and ev["type"] != "finished":
                self.snapshot.emit(self._snapshot(f"training, step {trainer.step}"))
                last_snap = now
            if consistent_point(trainer, ev):
                with self._lock:
                    if self._save_requests:
                        self._save_pending()
                    if self._pause_requested and not self._cancelled.is_set():
                        # the generator parks before its next step, changing nothing first
                        trainer.pause()
                        self._parked = True
        with self._lock:
            self._parked = False
            if self._save_requests:
                self._save_pending()
        if pending:
            self._emit_steps(pending)
        self.history.emit(self._history_delta())
        reason = (trainer.finished or {}).get("reason", "")
        final = self._snapshot(f"after {trainer.step} steps ({reason})")
        final["final"] = True   # the model the run ended with: always worth a trace
        self.snapshot.emit(final)
