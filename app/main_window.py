"""The main window: data and model on the left, Train/Pause/Stop on top, four tabs in the middle.

Every long job runs on a worker QThread (data loading, download, training, traces, reports);
this class only moves plain data between the workers and the panels. ``MainWindow`` never opens
a dialog by itself, so tests can construct it; ``run_app`` is the entry point of
``python main.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.data_panel import DataPanel, describe
from app.download_worker import DownloadWorker
from app.explorer_panel import ExplorerPanel
from app.load_worker import LoadDataWorker
from app.model_panel import ModelPanel
from app.report_worker import ReportWorker
from app.reports_panel import ReportsPanel
from app.resources import icon, style_sheet
from app.run_toolbar import RunToolBar
from app.trace_job import snapshot_of
from app.trace_worker import TraceWorker
from app.train_worker import TrainWorker, app_resume_overrides
from app.training_panel import TrainingPanel
from app.vanishing_panel import VanishingPanel
from app.worker_thread import start_worker, stop_worker
from core.errors import RnnscopeError

BATCH_MEAN_IMAGES = 64   # validation images behind the batch-mean gradient profile
MISTAKE_IMAGES = 1000    # images checked for 'only misclassified'
PREVIEW_FIT_IMAGES = 2000  # images the untrained model's normalizer is fitted on


def cue_rows(splits) -> tuple[int, int] | None:
    """The memory-probe task's cue band as (first, last) 0-based image rows; None otherwise."""
    p = (getattr(splits, "info", None) or {}).get("probe")
    if not p:
        return None
    first = int(p.get("cue_row", 0))
    return first, first + int(p.get("cue_height", 1)) - 1


class MainWindow(QtWidgets.QMainWindow):
    """The whole app. ``data_spec``: 'probe', a CIFAR-10 path, or None = find CIFAR-10
    (core.paths.find_cifar10) and fall back to the probe task; ``load=False`` loads nothing."""

    dataLoaded = QtCore.Signal()
    traceShown = QtCore.Signal()
    # where Download CIFAR-10 fetches from: None = the official archive and its md5 (tests
    # point these at a local server)
    download_url: str | None = None
    download_md5: str | None = None

    def __init__(self, data_spec=None, load: bool = True, parent=None):
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("rnnscope — watch a recurrent network read an image")
        self.setWindowIcon(icon("app"))
        self.splits = None
        self.snapshot: dict | None = None
        self.trainer = None             # the last Trainer (idle), for saving / continuing
        self.run_info: dict = {}
        self.run_history = self._empty_history()
        self._workers: dict[str, tuple] = {}   # name -> (worker, thread)
        self._closing = False

        self.data_panel = DataPanel()
        self.model_panel = ModelPanel()
        left = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(4, 4, 4, 4)
        ll.addWidget(self.data_panel)
        ll.addWidget(self.model_panel)
        ll.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(330)
        self.dock = QtWidgets.QDockWidget("Data and model")
        self.dock.setObjectName("settingsDock")
        self.dock.setWidget(scroll)
        self.dock.setFeatures(QtWidgets.QDockWidget.DockWidgetMovable)
        self.addDockWidget(QtCore.Qt.LeftDockWidgetArea, self.dock)

        self.toolbar = RunToolBar()
        self.addToolBar(QtCore.Qt.TopToolBarArea, self.toolbar)
        self.continue_button = QtWidgets.QPushButton(icon("play"), "Continue")
        self.continue_button.setObjectName("continueButton")
        self.continue_button.setToolTip("Continue training the loaded checkpoint")
        self.continue_button.setVisible(False)
        self.toolbar.insertWidget(self.toolbar.actions()[1], self.continue_button)

        self.training_panel = TrainingPanel()
        self.explorer = ExplorerPanel()
        self.vanishing = VanishingPanel()
        self.reports = ReportsPanel()
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.tabs.addTab(self.training_panel, "Training")
        self.tabs.addTab(self.explorer, "Explorer")
        self.tabs.addTab(self.vanishing, "Vanishing gradients")
        self.tabs.addTab(self.reports, "Reports")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.setCentralWidget(self.tabs)
        self.status = QtWidgets.QLabel("")
        self.statusBar().addWidget(self.status, 1)
        self.setStyleSheet(style_sheet())
        self.resize(1500, 920)

        # trace worker: one long-lived thread
        self.trace_worker = TraceWorker()
        self.trace_thread = start_worker(self.trace_worker)
        self.trace_worker.traced.connect(self._on_traced)
        self.trace_worker.mistakes.connect(self.explorer.set_mistakes)
        self.trace_worker.failed.connect(self.show_message)

        # wiring
        self.data_panel.loadRequested.connect(self.load_data)
        self.data_panel.downloadRequested.connect(self.start_download)
        self.data_panel.downloadCancelRequested.connect(self.cancel_download)
        self.model_panel.validityChanged.connect(self._update_buttons)
        self.model_panel.configChanged.connect(self._config_changed)
        self.toolbar.startClicked.connect(self.start_training)
        self.continue_button.clicked.connect(self.continue_training)
        self.toolbar.pauseToggled.connect(self.set_paused)
        self.toolbar.stopClicked.connect(self.stop_training)
        self.toolbar.saveClicked.connect(self._ask_save)
        self.toolbar.loadClicked.connect(self._ask_load)
        self.explorer.imageRequested.connect(self.request_trace)
        self.explorer.misclassifiedRequested.connect(self.request_mistakes)
        self.explorer.followChanged.connect(lambda on: on and self.request_trace())
        self.explorer.message.connect(self.show_message)
        self.reports.buildRequested.connect(self.build_report)
        for frame in self.findChildren(QtWidgets.QFrame, "plotFrame"):
            if hasattr(frame, "message"):
                frame.message.connect(self.show_message)
        self._preview_timer = QtCore.QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(300)
        self._preview_timer.timeout.connect(self._make_preview)
        self._update_buttons()
        if load:
            QtCore.QTimer.singleShot(0, lambda: self._initial_load(data_spec))

    @staticmethod
    def _empty_history() -> dict:
        return {"steps": [], "evals": [], "dh_norm": [], "finished": None}

    # --- messages --------------------------------------------------------------------------------
    def show_message(self, text: str):
        self.status.setText(text)

    # --- data ------------------------------------------------------------------------------------
    def _initial_load(self, spec):
        if spec is None:
            from core.paths import find_cifar10

            try:
                found = find_cifar10()
            except RnnscopeError as exc:
                self.show_message(f"{exc} — starting on the memory-probe task.")
                found = None
            if found is None:
                spec = "probe"
                if not self.status.text():
                    self.show_message("No CIFAR-10 found: starting on the memory-probe task. "
                                      "Use Download CIFAR-10 or Open… to load it.")
            else:
                spec = str(found)
        self.load_data(spec, None if spec == "probe" else self.data_panel.subset())

    def load_data(self, spec, subset=None):
        if self._busy("load"):
            return
        if self.is_training():
            self.show_message("Stop training before loading other data.")
            return
        probe = spec == "probe"
        what = "the memory-probe task" if probe else f"CIFAR-10 from {spec}"
        self.data_panel.set_busy(f"Loading {what} …")
        w = LoadDataWorker(spec, subset=subset,
                           probe_params=self.data_panel.probe_params() if probe else None)
        self._load_spec = spec
        # bound methods of GUI-thread objects only: a lambda would run on the worker thread
        w.progress.connect(self.data_panel.set_load_progress)
        w.loaded.connect(self._on_loaded)
        w.failed.connect(self._on_load_failed)
        self._start("load", w)

    def _on_load_failed(self, message: str):
        self.data_panel.set_error(message)
        if self.splits is not None:
            self.data_panel.dataset_label.setText(describe(self.splits))
        self.show_message(message)

    def _on_loaded(self, splits):
        spec = self._load_spec
        self.splits = splits
        self.trainer = None
        self.continue_button.setVisible(False)
        self.data_panel.set_splits(splits, spec)
        self.explorer.set_data({"val": splits.val.images, "test": splits.test.images},
                               {"val": splits.val.labels, "test": splits.test.labels},
                               splits.class_names, cue_rows=cue_rows(splits))
        self.vanishing.set_cue_rows(cue_rows(splits))
        self.training_panel.clear()
        self.vanishing.clear_history()
        self.run_history = self._empty_history()
        self.show_message(f"Loaded {describe(splits)}")
        self._make_preview()
        self._update_buttons()
        self.dataLoaded.emit()

    def start_download(self):
        if self._busy("download"):
            return
        w = DownloadWorker(url=self.download_url, md5=self.download_md5)
        w.progress.connect(self.data_panel.set_download_progress)
        w.finished.connect(self._on_downloaded)
        w.cancelled.connect(self._on_download_failed)
        w.failed.connect(self._on_download_failed)
        self.data_panel.set_download_progress(0, 0, 0)
        self.data_panel.download_button.setEnabled(False)
        self._start("download", w)

    def cancel_download(self):
        entry = self._workers.get("download")
        if entry:
            entry[0].cancel()

    def _on_downloaded(self, path: str):
        self.data_panel.set_idle()
        self.show_message(f"Downloaded {path}")
        self.load_data(path, self.data_panel.subset())

    def _on_download_failed(self, message: str):
        self.data_panel.set_error(message)
        self.show_message(message)

    # --- model previews and traces ---------------------------------------------------------------
    def _config_changed(self):
        if self.snapshot is None or self.snapshot.get("untrained"):
            self._preview_timer.start()

    def _make_preview(self):
        """An untrained model of the form's config, so the explorer has something to show.
        Never replaces a real model (one trained here or loaded from a checkpoint)."""
        if self.splits is None or self.is_training():
            return
        if self.snapshot is not None and not self.snapshot.get("untrained"):
            return
        try:
            cfg = self.model_panel.config()
        except RnnscopeError:
            return
        from core.datasets import Normalizer
        from core.trainer import build_model_from_config

        model = build_model_from_config(cfg)
        n = min(PREVIEW_FIT_IMAGES, len(self.splits.train))
        norm = Normalizer(cfg.normalization).fit(np.asarray(self.splits.train.images[:n]))
        snap = snapshot_of(model, norm, cfg.to_dict(), 0, "untrained (random weights)")
        snap["untrained"] = True
        self.set_snapshot(snap)

    def set_snapshot(self, snap: dict):
        self.snapshot = snap
        self.request_trace()

    def request_trace(self, *_):
        if self.snapshot is None or self.splits is None:
            return
        split, idx = self.explorer.current_choice()
        imageset = getattr(self.splits, split)
        if not len(imageset):
            return
        idx = int(np.clip(idx, 0, len(imageset) - 1))
        val = self.splits.val if len(self.splits.val) else imageset
        nb = min(BATCH_MEAN_IMAGES, len(val))
        self.trace_worker.request_trace({
            "snapshot": self.snapshot, "image": np.asarray(imageset.images[idx]),
            "label": int(imageset.labels[idx]), "split": split, "index": idx,
            "class_names": list(self.splits.class_names),
            "batch_images": np.asarray(val.images[:nb]), "batch_labels": np.asarray(
                val.labels[:nb])})

    def request_mistakes(self, split: str):
        if self.snapshot is None or self.splits is None:
            return
        imageset = getattr(self.splits, split)
        n = min(MISTAKE_IMAGES, len(imageset))
        self.trace_worker.request_mistakes({
            "snapshot": self.snapshot, "split": split,
            "images": np.asarray(imageset.images[:n]), "labels": np.asarray(imageset.labels[:n])})
        self.show_message(f"Finding the first {n} {split} images the model gets wrong …")

    def _on_traced(self, tr: dict):
        self.explorer.set_trace(tr)
        self.vanishing.set_trace(tr)
        self.traceShown.emit()

    # --- training --------------------------------------------------------------------------------
    def is_training(self) -> bool:
        return "train" in self._workers

    def _update_buttons(self, *_):
        running = self.is_training()
        self.toolbar.set_running(running, can_start=self.splits is not None
                                 and self.model_panel.is_valid())
        self.toolbar.save_button.setEnabled(running or self.trainer is not None)
        self.continue_button.setEnabled(not running)
        self.model_panel.set_editable(not running)

    def start_training(self):
        if self.is_training() or self.splits is None:
            return
        try:
            cfg = self.model_panel.config()
        except RnnscopeError as exc:
            self.show_message(str(exc))
            return
        self.training_panel.clear()
        self.vanishing.clear_history()
        self.run_history = self._empty_history()
        self.explorer.mistakes = {}
        self.trainer = None
        self.continue_button.setVisible(False)
        self._run_worker(TrainWorker(cfg, self.splits))
        self.show_message("Training started …")

    def continue_training(self):
        if self.is_training() or self.trainer is None:
            return
        self.continue_button.setVisible(False)
        self._run_worker(TrainWorker(trainer=self.trainer))
        self.show_message("Training continues from the loaded checkpoint …")

    def _run_worker(self, w: TrainWorker):
        w.steps.connect(self._on_steps)
        w.event.connect(self._on_event)
        w.snapshot.connect(self._on_train_snapshot)
        w.failed.connect(self._on_train_failed)
        self.train_worker = w
        self._start("train", w)
        self._update_buttons()
        self.toolbar.set_message("starting …")

    def set_paused(self, paused: bool):
        entry = self._workers.get("train")
        if not entry:
            return
        if paused:
            entry[0].pause()
            self.show_message("Paused after the current step. Press Resume to continue.")
        else:
            entry[0].resume()
            self.show_message("Training resumed.")

    def stop_training(self):
        entry = self._workers.get("train")
        if entry:
            entry[0].cancel()
            self.show_message("Stopping after the current step …")

    def _on_steps(self, events: list):
        self.training_panel.add_steps(events)
        ev = events[-1]
        info = self.run_info
        self.toolbar.set_progress(ev["step"], ev["epoch"], info.get("epochs", 1),
                                  ev.get("images_per_s", 0.0), ev.get("seconds", 0.0),
                                  info.get("steps_per_epoch", 1))
        rows = [(e["step"], e["dh_norm"]) for e in events if e.get("dh_norm") is not None]
        self.vanishing.add_rows([r[0] for r in rows], [r[1] for r in rows])
        h = self.run_history
        for e in events:
            h["steps"].append({"step": e["step"], "epoch": e["epoch"], "loss": e["loss"],
                               "acc": e.get("acc"), "lr": e.get("lr"),
                               "clip_fired": bool((e.get("clip") or {}).get("fired")),
                               "grad_norm": (e.get("clip") or {}).get("norm_before")})
        h["dh_norm"].extend([r[0], [float(v) for v in r[1]]] for r in rows)

    def _on_event(self, ev: dict):
        kind = ev.get("type")
        if kind == "started":
            self.run_info = ev
            self.training_panel.set_steps_per_epoch(ev.get("steps_per_epoch"))
            hist = ev.get("history") or {}
            if hist.get("steps") and not self.training_panel.steps.n:
                self.training_panel.load_history(hist)
        elif kind == "eval":
            self.training_panel.add_eval(ev)
            self.run_history["evals"].append(dict(ev))
            va = ev.get("val_acc")
            if va is not None:
                self.show_message(f"Step {ev['step']}: validation accuracy {va:.1%}")
        elif kind == "finished":
            self.run_history["finished"] = dict(ev)
            text = f"Training {ev['reason'].replace('_', ' ')}: {ev['message']}"
            self.training_panel.set_finished(text)
            self.toolbar.set_message(f"finished at step {ev['step']} ({ev['reason']})")
            self.show_message(text)
        elif kind == "saved":
            self.show_message(f"Saved checkpoint {ev['path']}")
        elif kind == "save_failed":
            self.show_message(ev["message"])

    def _on_train_snapshot(self, snap: dict):
        first = self.snapshot is None or self.snapshot.get("untrained")
        self.snapshot = snap
        # following training costs a traced pass (worker thread) and a redraw (GUI thread)
        # per snapshot: only while a tab that shows the trace is open; the rest catch up
        if first or snap.get("final") or (self.explorer.follow_check.isChecked()
                                          and self._trace_tab_open()):
            self.request_trace()
        self.explorer.mistakes = {}

    def _trace_tab_open(self) -> bool:
        return self.tabs.currentWidget() in (self.explorer, self.vanishing)

    def _on_tab_changed(self, *_):
        shown = self.explorer.trace
        if (self._trace_tab_open() and self.snapshot is not None and shown is not None
                and shown.get("step") != self.snapshot.get("step")):
            self.request_trace()

    def _on_train_failed(self, message: str):
        self.show_message(message)
        self.training_panel.set_finished(f"<span style='color:#c62828'>{message}</span>")

    # --- checkpoints -----------------------------------------------------------------------------
    def _ask_save(self):
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Save checkpoint", str(Path.home() / "rnnscope.npz"), "Checkpoint (*.npz)")
        if path:
            self.save_checkpoint(path)

    def save_checkpoint(self, path: str):
        entry = self._workers.get("train")
        if entry:
            entry[0].request_save(path)
            self.show_message(f"Saving {path} after the current step …")
            return
        if self.trainer is None:
            self.show_message("Nothing to save yet: train a model first.")
            return
        try:
            self.trainer.save_checkpoint(path)
            self.show_message(f"Saved checkpoint {path}")
        except (RnnscopeError, OSError) as exc:
            self.show_message(f"Could not save {path}: {exc}")

    def _ask_load(self):
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Load checkpoint", str(Path.home()), "Checkpoint (*.npz);;All files (*)")
        if path:
            self.load_checkpoint(path)

    def load_checkpoint(self, path: str) -> bool:
        """Load a checkpoint: resumable (last.npz) -> can Continue; otherwise view only."""
        if self.is_training() or self.splits is None:
            self.show_message("Load data and stop training before loading a checkpoint.")
            return False
        from core.checkpoint import load_checkpoint
        from core.trainer import Trainer

        try:
            ck = load_checkpoint(path)
        except (RnnscopeError, OSError) as exc:
            self.show_message(str(exc))
            return False
        K = len(self.splits.class_names)
        if ck.model.params["b_q"].shape[0] != K:
            self.show_message(f"{path} predicts {ck.model.params['b_q'].shape[0]} classes but "
                              f"the loaded data has {K}; load the data it was trained on")
            return False
        meta = ck.meta or {}
        step = int(meta.get("step", 0) or 0)
        self.trainer = None
        note = "view only"
        try:
            self.trainer = Trainer.resume_from(path, self.splits, checkpoint_dir=None,
                                               overrides=app_resume_overrides())
            note = "Continue trains it further"
        except RnnscopeError as exc:
            note = f"view only ({exc})"
        train_cfg = meta.get("train_config")
        if train_cfg:
            from core.config import TrainConfig

            try:
                self.model_panel.set_config(TrainConfig.from_dict(train_cfg))
            except RnnscopeError:
                pass
        history = meta.get("history") or {}
        self.training_panel.load_history(history)
        self.vanishing.clear_history()
        dh = history.get("dh_norm") or []
        self.vanishing.add_rows([r[0] for r in dh], [r[1] for r in dh])
        self.run_history = {"steps": list(history.get("steps") or []),
                            "evals": list(history.get("evals") or []),
                            "dh_norm": list(dh), "finished": history.get("finished")}
        self.run_info = {"epochs": (train_cfg or {}).get("epochs", 1)}
        snap = snapshot_of(ck.model, ck.normalizer, train_cfg or {}, step,
                           f"checkpoint {Path(path).name}, step {step}")
        self.set_snapshot(snap)
        self.continue_button.setVisible(self.trainer is not None)
        self._update_buttons()
        self.show_message(f"Loaded {path} ({note}).")
        return True

    # --- reports ---------------------------------------------------------------------------------
    def build_report(self, split: str = "test"):
        if self.snapshot is None or self.splits is None or self._busy("report"):
            return
        history = {"steps": list(self.run_history["steps"]),
                   "evals": list(self.run_history["evals"]),
                   "dh_norm": list(self.run_history["dh_norm"])}
        if "sklearn.manifold" not in sys.modules:
            # the first import of scikit-learn/SciPy (~1 s, once) happens on the GUI thread:
            # made on the report worker's thread it hung the test suite now and then
            self.reports.set_busy("Loading scikit-learn for the t-SNE …")
            QtWidgets.QApplication.processEvents()
            import sklearn.manifold  # noqa: F401
        w = ReportWorker(self.snapshot, self.splits, history, split=split)
        w.status.connect(self.reports.set_status)
        w.ready.connect(self.reports.set_figures)
        w.failed.connect(self.reports.set_failed)
        self.reports.set_busy("Building the report in the background …")
        self._start("report", w)

    # --- worker bookkeeping ----------------------------------------------------------------------
    def _busy(self, name: str) -> bool:
        if name in self._workers:
            self.show_message(f"A {name} job is already running.")
            return True
        return False

    def _start(self, name: str, worker):
        thread = start_worker(worker)
        self._workers[name] = (worker, thread)
        thread.finished.connect(lambda n=name, w=worker: self._finished(n, w))

    def _finished(self, name: str, worker):
        entry = self._workers.get(name)
        if entry is None or entry[0] is not worker:
            return
        worker, thread = self._workers.pop(name)
        thread.wait()
        thread.deleteLater()
        worker.deleteLater()
        if name == "train" and not self._closing:
            self.trainer = worker.trainer
            if self.trainer is not None and self.trainer.finished is None:
                self.continue_button.setVisible(True)
            self._update_buttons()
        if name == "load" and not self._closing:
            self.data_panel.set_idle()
            if self.splits is not None and self.data_panel.dataset_label.text().startswith(
                    "Loading"):
                self.data_panel.dataset_label.setText(describe(self.splits))

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel every worker, quit and wait for every thread; True if all ended."""
        self._closing = True
        self.explorer.stop_playing()
        ok = True
        for name in list(self._workers):
            worker, thread = self._workers.pop(name)
            ok &= stop_worker(worker, thread, timeout_ms)
        ok &= stop_worker(self.trace_worker, self.trace_thread, timeout_ms)
        return bool(ok)

    def closeEvent(self, event: QtGui.QCloseEvent):
        self.shutdown()
        super().closeEvent(event)


def run_app(argv=None) -> int:
    """Start the app (``python main.py`` with no arguments); returns the exit code."""
    from app import gc_policy

    t0 = time.perf_counter()
    argv = list(sys.argv if argv is None else argv)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(argv)
    gc_policy.install(app)     # before any worker starts: see app/gc_policy.py
    app.setApplicationName("rnnscope")
    app.setWindowIcon(icon("app"))
    win = MainWindow()
    win.show()
    win.launch_seconds = time.perf_counter() - t0
    return app.exec()
