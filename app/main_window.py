"""The main window: data and model on the left, Train/Pause/Stop on top, four tabs in the middle.

Every long job runs on a worker QThread (data loading, download, training, traces, reports);
this class only moves plain data between the workers and the panels. ``MainWindow`` never opens
a dialog by itself and remembers nothing unless given a QSettings, so tests can construct it;
``run_app`` is the entry point of ``python main.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.checkpoint_data import (
    describe_data,
    load_arguments,
    recorded_data,
    resume_problem,
    same_data,
)
from app.data_panel import DataPanel, describe
from app.download_worker import DownloadWorker
from app.explorer_panel import ExplorerPanel
from app.load_worker import LoadDataWorker
from app.memory_panel import MemoryPanel
from app.model_panel import ModelPanel
from app.report_worker import ReportWorker
from app.reports_panel import ReportsPanel
from app.resources import icon, style_sheet
from app.run_toolbar import RunToolBar
from app.settings import (
    app_settings,
    ask_open_path,
    ask_save_path,
    remember_all_cores,
    remembered_all_cores,
)
from app.settings_scroll import SettingsScroll, guard_wheel
from app.trace_job import snapshot_of
from app.trace_worker import TraceWorker
from app.train_worker import TrainWorker, all_cores_workers, app_workers, processes_text
from app.training_panel import TrainingPanel
from app.vanishing_panel import VanishingPanel
from app.worker_thread import start_worker, stop_worker
from core.errors import RnnscopeError
from core.fileio import remove_stale_temps

BATCH_MEAN_IMAGES = 64   # validation images behind the batch-mean gradient profile
MISTAKE_IMAGES = 1000    # images checked for 'only misclassified'
PREVIEW_FIT_IMAGES = 2000  # images the untrained model's normalizer is fitted on
DEFAULT_SIZE = (1500, 920)
DOCK_SHARE = 0.25          # the settings dock's share of a wide window (up to what it needs)


def cue_rows(splits) -> tuple[int, int] | None:
    """The memory-probe task's cue band as (first, last) 0-based image rows; None otherwise."""
    p = (getattr(splits, "info", None) or {}).get("probe")
    if not p:
        return None
    first = int(p.get("cue_row", 0))
    return first, first + int(p.get("cue_height", 1)) - 1


class MainWindow(QtWidgets.QMainWindow):
    """The whole app. ``data_spec``: 'probe', a CIFAR-10 path, or None = the data set of the
    last launch if ``settings`` remembers one that is still there, else find CIFAR-10
    (core.paths.find_cifar10), else the probe task; ``load=False`` loads nothing.
    ``settings``: a QSettings to remember window geometry, the last data set, the dialogs'
    folders and the Training menu's "Train on all cores" in (``run_app`` passes the user's);
    None remembers nothing."""

    dataLoaded = QtCore.Signal()
    traceShown = QtCore.Signal()
    # where Download CIFAR-10 fetches from: None = the official archive and its md5 (tests
    # point these at a local server)
    download_url: str | None = None
    download_md5: str | None = None

    def __init__(self, data_spec=None, load: bool = True, parent=None,
                 settings: QtCore.QSettings | None = None):
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("rnnscope — watch a recurrent network read an image")
        self.setWindowIcon(icon("app"))
        self.settings = settings
        self.splits = None
        self.snapshot: dict | None = None
        self.trainer = None             # the last Trainer (idle), for saving / continuing
        self.train_worker: TrainWorker | None = None
        self.run_info: dict = {}
        self.run_history = self._empty_history()   # the trainer's history, as it sent it
        self._workers: dict[str, tuple] = {}   # name -> (worker, thread)
        self._closing = False
        self._load_request: tuple = ("probe", {})   # the last load_data call (spec, options)
        # a checkpoint that can be continued: its path and step (the trainer is built on the
        # training thread when Continue is pressed)
        self._resume_path: str | None = None
        self._resume_step = 0
        self._stopped_params: dict | None = None   # the stopped run's parameters (in place)
        self._pending_checkpoint: str | None = None   # load it once its data has loaded
        self._checkpoint_data: tuple | None = None   # (spec, options) offered by the button
        self._unsaved_step: int | None = None   # a trained model's step not in any file
        self._state_restored = False   # the dock's width came from the settings

        self.data_panel = DataPanel()
        self.data_panel.use_settings(settings)
        self.model_panel = ModelPanel()
        left = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(4, 4, 4, 4)
        ll.addWidget(self.data_panel)
        ll.addWidget(self.model_panel)
        ll.addStretch(1)
        self.settings_scroll = SettingsScroll(left)
        self.dock = QtWidgets.QDockWidget("Data and model")
        self.dock.setObjectName("settingsDock")
        self.dock.setWidget(self.settings_scroll)
        self.dock.setFeatures(QtWidgets.QDockWidget.DockWidgetMovable)
        self.addDockWidget(QtCore.Qt.LeftDockWidgetArea, self.dock)

        self.toolbar = RunToolBar()
        self.addToolBar(QtCore.Qt.TopToolBarArea, self.toolbar)
        self.continue_button = self.toolbar.continue_button

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
        self.memory = MemoryPanel()
        self.tabs.addTab(self.memory, "Memory")
        self._pending_snapshot: dict | None = None   # a bench run to show once its data loads
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.setCentralWidget(self.tabs)
        self.status = QtWidgets.QLabel("")
        self.status.setObjectName("statusMessage")
        self.statusBar().addWidget(self.status, 1)
        # how many processes train the run (or the next one): the all-cores setting at a glance
        self.processes_label = QtWidgets.QLabel("")
        self.processes_label.setObjectName("processesLabel")
        self.statusBar().addPermanentWidget(self.processes_label)
        self._build_menus()
        self.checkpoint_data_button = QtWidgets.QPushButton(icon("open"), "")
        self.checkpoint_data_button.setObjectName("loadCheckpointDataButton")
        self.checkpoint_data_button.setVisible(False)
        self.statusBar().addPermanentWidget(self.checkpoint_data_button)
        self.setStyleSheet(style_sheet())
        guard_wheel(self)
        self.resize(*DEFAULT_SIZE)
        self._restore_geometry()

        # trace worker: one long-lived thread
        self.trace_worker = TraceWorker()
        self.trace_thread = start_worker(self.trace_worker)
        self.trace_worker.traced.connect(self._on_traced)
        self.trace_worker.mistakes.connect(self._on_mistakes)
        self.trace_worker.failed.connect(self.show_message)

        # wiring
        self.data_panel.loadRequested.connect(self.load_data)
        self.data_panel.downloadRequested.connect(self.start_download)
        self.data_panel.downloadCancelRequested.connect(self.cancel_download)
        self.model_panel.validityChanged.connect(self._update_buttons)
        self.model_panel.configChanged.connect(self._config_changed)
        self.toolbar.startClicked.connect(self.start_training)
        self.toolbar.continueClicked.connect(self.continue_training)
        self.toolbar.pauseToggled.connect(self.set_paused)
        self.toolbar.stopClicked.connect(self.stop_training)
        self.toolbar.saveClicked.connect(self._ask_save)
        self.toolbar.loadClicked.connect(self._ask_load)
        self.checkpoint_data_button.clicked.connect(self.load_checkpoint_data)
        self.explorer.imageRequested.connect(self.request_trace)
        self.explorer.misclassifiedRequested.connect(self.request_mistakes)
        self.explorer.followChanged.connect(lambda on: on and self.request_trace())
        self.explorer.message.connect(self.show_message)
        self.reports.buildRequested.connect(self.build_report)
        self.reports.message.connect(self.show_message)
        self.memory.message.connect(self.show_message)
        self.memory.exploreRequested.connect(self.explore_memory_run)
        # the bench's processes follow "Train on all cores"
        self.memory.workers_for_run = lambda: (all_cores_workers()
                                               if self.all_cores_action.isChecked() else 1)
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

    def _build_menus(self):
        menu = self.menuBar().addMenu("&Training")
        menu.setObjectName("trainingMenu")
        n = all_cores_workers()
        self.all_cores_action = QtGui.QAction(f"Train on all cores ({processes_text(n)})", self)
        self.all_cores_action.setObjectName("allCoresAction")
        self.all_cores_action.setCheckable(True)
        self.all_cores_action.setToolTip(
            f"Split each batch over {processes_text(n)} (from the next Train or Continue). "
            "Off: one process, so the window keeps a core of its own.")
        self.all_cores_action.setStatusTip(self.all_cores_action.toolTip())
        self.all_cores_action.setChecked(remembered_all_cores(self.settings))
        self.all_cores_action.toggled.connect(self._all_cores_toggled)
        menu.addAction(self.all_cores_action)
        self._show_processes()

    def train_workers(self) -> int:
        """The processes a new run or a Continue trains on (the Training menu's setting)."""
        return app_workers(self.all_cores_action.isChecked())

    def _all_cores_toggled(self, on: bool):
        remember_all_cores(self.settings, on)
        self._show_processes()
        n = processes_text(self.train_workers())
        if self.is_training():
            self.show_message(f"The next Train or Continue trains on {n}; this run keeps "
                              f"{processes_text(self._running_workers())}.")
        else:
            self.show_message(f"Training will run on {n}.")

    def _running_workers(self) -> int:
        return int(self.run_info.get("workers", 1))

    def _show_processes(self):
        """'training on N processes' while a run trains, else what the next one will use."""
        if self.is_training() and "workers" in self.run_info:
            text = f"training on {processes_text(self._running_workers())}"
        else:
            text = f"trains on {processes_text(self.train_workers())}"
        self.processes_label.setText(f"  {text}  ")
        self.processes_label.setToolTip("Training menu → Train on all cores")

    @staticmethod
    def _empty_history() -> dict:
        return {"steps": [], "evals": [], "dh_norm": [], "finished": None}

    # --- messages --------------------------------------------------------------------------------
    def show_message(self, text: str):
        self.status.setText(text)

    # --- geometry --------------------------------------------------------------------------------
    def _restore_geometry(self):
        if self.settings is None:
            return
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QtCore.QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if isinstance(state, QtCore.QByteArray) and not state.isEmpty():
            self._state_restored = self.restoreState(state)

    def save_geometry(self):
        """Remember the window's and the dock's geometry (done on close)."""
        if self.settings is None:
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()

    def resizeEvent(self, event: QtGui.QResizeEvent):
        super().resizeEvent(event)
        # a window made small squeezes the dock to its minimum; made large again, the dock
        # gets back the width its content prefers (a wider drag by the user stays)
        want = min(self.settings_scroll.preferred_width(),
                   max(self.dock.minimumWidth(), int(DOCK_SHARE * event.size().width())))
        first = event.oldSize().width() < 0 and not self._state_restored
        grown = event.size().width() > event.oldSize().width() and self.dock.width() < want
        if first or grown:
            QtCore.QTimer.singleShot(0, lambda: self.resizeDocks(
                [self.dock], [want], QtCore.Qt.Horizontal))

    # --- data ------------------------------------------------------------------------------------
    def _remembered_data(self):
        """(spec, options) of the last launch's data set if it is still there, else None."""
        if self.settings is None:
            return None
        spec = self.settings.value("data/spec", "")
        if not spec:
            return None
        subset = self.settings.value("data/subset", 0, type=int) or None
        if spec == "probe":
            cue = self.settings.value("data/cue_row", -1, type=int)
            return "probe", ({"probe_params": {"cue_row": cue}} if cue >= 0 else {})
        if not Path(str(spec)).exists():
            return None
        return str(spec), {"subset": subset}

    def _initial_load(self, spec):
        options: dict = {}
        if spec is None:
            remembered = self._remembered_data()
            if remembered is not None:
                spec, options = remembered
                if options.get("subset") is not None:
                    self.data_panel.set_subset(options["subset"])
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
        if spec != "probe" and "subset" not in options:
            options["subset"] = self.data_panel.subset()
        self.load_data(spec, **options)

    def load_data(self, spec, subset=None, *, probe_params: dict | None = None, seed: int = 0,
                  scheme: str = "default"):
        """Load 'probe' or a CIFAR-10 path on the loading thread. The model, the curves and
        the traces of the data shown before are dropped once the new data has loaded."""
        if self._busy("load"):
            return
        if self.is_training():
            self.show_message("Stop training before loading other data.")
            return
        probe = spec == "probe"
        what = "the memory-probe task" if probe else f"CIFAR-10 from {spec}"
        self.data_panel.set_busy(f"Loading {what} …")
        if probe and probe_params is None:
            probe_params = self.data_panel.probe_params()
        w = LoadDataWorker(spec, subset=subset, scheme=scheme, seed=seed,
                           probe_params=probe_params if probe else None)
        self._load_request = (spec, {"subset": subset, "probe_params": probe_params,
                                     "seed": seed, "scheme": scheme})
        # bound methods of GUI-thread objects only: a lambda would run on the worker thread
        w.progress.connect(self.data_panel.set_load_progress)
        w.loaded.connect(self._on_loaded)
        w.failed.connect(self._on_load_failed)
        self._start("load", w)

    def _on_load_failed(self, message: str):
        self._pending_checkpoint = None
        self._pending_snapshot = None
        self.data_panel.set_error(message)
        self.data_panel.show_loaded(self.splits)
        self.show_message(message)

    def _forget_model(self):
        """Drop the model, its run and everything shown of it (new data, or a new run)."""
        self.snapshot = None
        self.trainer = None
        self._resume_path = None
        self._stopped_params = None
        self._unsaved_step = None
        self.toolbar.set_continue(None)
        self.training_panel.clear()
        self.vanishing.clear_history()
        self.explorer.clear_mistakes()
        self.run_history = self._empty_history()
        self.run_info = {}

    def _on_loaded(self, splits):
        spec, options = self._load_request
        self.splits = splits
        self._forget_model()
        self._hide_checkpoint_offer()
        self.data_panel.set_splits(splits, spec)
        if splits.name == "cifar10":
            self.data_panel.set_subset(options.get("subset"))   # what Apply reloads with
        self.explorer.set_data({"val": splits.val.images, "test": splits.test.images},
                               {"val": splits.val.labels, "test": splits.test.labels},
                               splits.class_names, cue_rows=cue_rows(splits))
        self.vanishing.set_cue_rows(cue_rows(splits))
        self.show_message(f"Loaded {describe(splits)}")
        self._remember_data(spec, options, splits)
        self._make_preview()
        self._update_buttons()
        self.dataLoaded.emit()
        pending, self._pending_checkpoint = self._pending_checkpoint, None
        if pending:
            self.load_checkpoint(pending)
        snap, self._pending_snapshot = self._pending_snapshot, None
        if snap is not None:
            self._show_memory_run(snap)

    def _remember_data(self, spec, options: dict, splits):
        if self.settings is None:
            return
        self.settings.setValue("data/spec", "probe" if spec == "probe" else str(spec))
        self.settings.setValue("data/subset", int(options.get("subset") or 0))
        probe = (splits.info or {}).get("probe") or {}
        self.settings.setValue("data/cue_row", int(probe.get("cue_row", -1)))

    def start_download(self):
        if self._busy("download"):
            return
        w = DownloadWorker(url=self.download_url, md5=self.download_md5)
        w.progress.connect(self.data_panel.set_download_progress)
        w.finished.connect(self._on_downloaded)
        w.cancelled.connect(self._on_download_cancelled)
        w.failed.connect(self._on_download_failed)
        self.data_panel.set_downloading()
        self._start("download", w)

    def cancel_download(self):
        entry = self._workers.get("download")
        if entry:
            entry[0].cancel()

    def _on_downloaded(self, path: str):
        self.data_panel.set_idle()
        self.show_message(f"Downloaded {path}")
        self.load_data(path, self.data_panel.subset())

    def _on_download_cancelled(self, message: str):
        self.data_panel.set_error(message)
        self.show_message(message)

    def _on_download_failed(self, message: str):
        if self.splits is not None and self.splits.name == "cifar10":
            source = (self.splits.info or {}).get("source", "")
            hint = (f"CIFAR-10 is already loaded (from {source}): you do not need the "
                    "download.")
        else:
            hint = ("Have cifar-10-python.tar.gz already? Load it with Open… (no network "
                    "needed).")
        self.data_panel.set_error(f"{message}. {hint}")
        self.show_message(f"{message}. {hint}")

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
        self.explorer.clear_mistakes()
        self.request_trace()
        split = self.explorer.wants_mistakes()
        if split:
            self.request_mistakes(split)

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

    def _on_mistakes(self, split: str, indices):
        n = min(MISTAKE_IMAGES, len(getattr(self.splits, split))) if self.splits else None
        self.explorer.set_mistakes(split, indices, checked=n)

    def _on_traced(self, tr: dict):
        self.explorer.set_trace(tr)
        self.vanishing.set_trace(tr)
        self.traceShown.emit()

    # --- training --------------------------------------------------------------------------------
    def is_training(self) -> bool:
        return "train" in self._workers

    def can_continue(self) -> bool:
        """True if Continue would train the loaded checkpoint or the stopped run further."""
        return self._resume_path is not None or (
            self.trainer is not None and (self.trainer.finished or {}).get("reason")
            == "cancelled")

    def _update_buttons(self, *_):
        running = self.is_training()
        self.toolbar.set_running(running, can_start=self.splits is not None
                                 and self.model_panel.is_valid())
        self.toolbar.save_button.setEnabled(running or self.trainer is not None)
        self.model_panel.set_editable(not running)
        if running or not self.can_continue():
            self.toolbar.set_continue(None)
        elif self._resume_path is not None:
            self.toolbar.set_continue(self._resume_step,
                                      f"the checkpoint {Path(self._resume_path).name}")
        else:
            self.toolbar.set_continue(self.trainer.step, "the stopped run")

    def start_training(self):
        """A new run at step 0 with the form's settings (Continue keeps the current one)."""
        if self.is_training() or self.splits is None:
            return
        try:
            cfg = self.model_panel.config()
        except RnnscopeError as exc:
            self.show_message(str(exc))
            return
        dropped = self._unsaved_step
        self._forget_model()
        workers = self.train_workers()
        self._run_worker(TrainWorker(cfg, self.splits, workers=workers))
        note = (f" (the previous model, step {dropped:,}, was not saved)"
                if dropped else "")
        self.show_message(f"A new run started at step 0 on {processes_text(workers)}{note} …")

    def continue_training(self):
        """Train further: the loaded checkpoint (from its step, with its optimizer state and
        history) or the stopped run, in place."""
        if self.is_training() or not self.can_continue():
            return
        workers = self.train_workers()
        on = processes_text(workers)
        if self._resume_path is not None:
            w = TrainWorker(splits=self.splits, resume_path=self._resume_path, workers=workers)
            text = (f"Continuing {Path(self._resume_path).name} from step "
                    f"{self._resume_step:,} on {on} …")
        else:
            w = TrainWorker(trainer=self.trainer, stopped_params=self._stopped_params,
                            workers=workers)
            text = f"Continuing the stopped run from step {self.trainer.step:,} on {on} …"
        self._resume_path = None
        self._run_worker(w)
        self.show_message(text)

    def _run_worker(self, w: TrainWorker):
        w.steps.connect(self._on_steps)
        w.history.connect(self._on_history)
        w.event.connect(self._on_event)
        w.snapshot.connect(self._on_train_snapshot)
        w.failed.connect(self._on_train_failed)
        self.train_worker = w
        self._start("train", w)
        self._update_buttons()
        self.toolbar.set_message("starting …")

    def set_paused(self, paused: bool):
        entry = self._workers.get("train")
        if not entry or self.run_history["finished"] is not None:
            return     # no run, or it has just finished: nothing left to pause
        if paused:
            entry[0].pause()
            self.toolbar.set_paused(True)
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
        ev = events[-1]
        info = self.run_info
        self.toolbar.set_progress(ev["step"], ev["epoch"], info.get("epochs", 1),
                                  ev.get("images_per_s", 0.0), ev.get("seconds", 0.0),
                                  info.get("steps_per_epoch", 1))
        self._unsaved_step = ev["step"]

    def _on_history(self, records: dict):
        """New records of the trainer's history: kept as they are and shown."""
        h = self.run_history
        for key in ("steps", "evals", "dh_norm"):
            h[key].extend(records.get(key) or [])
        self.training_panel.add_history(records)
        dh = records.get("dh_norm") or []
        self.vanishing.add_rows([r[0] for r in dh], [r[1] for r in dh])

    def _on_event(self, ev: dict):
        kind = ev.get("type")
        if kind == "started":
            self.run_info = ev
            self._show_processes()
            self.training_panel.set_steps_per_epoch(ev.get("steps_per_epoch"))
            hist = ev.get("history") or {}
            if hist.get("steps") and self.training_panel.step_count() != len(hist["steps"]):
                self.training_panel.load_history(hist)
                self.vanishing.clear_history()
                dh = hist.get("dh_norm") or []
                self.vanishing.add_rows([r[0] for r in dh], [r[1] for r in dh])
            self.run_history = {"steps": list(hist.get("steps") or []),
                                "evals": list(hist.get("evals") or []),
                                "dh_norm": list(hist.get("dh_norm") or []), "finished": None}
        elif kind == "eval":
            va = ev.get("val_acc")
            if va is not None:
                self.show_message(f"Step {ev['step']}: validation accuracy {va:.1%}")
        elif kind == "finished":
            self.run_history["finished"] = {k: v for k, v in ev.items() if k != "seconds"}
            text = f"Training {ev['reason'].replace('_', ' ')}: {ev['message']}"
            self.training_panel.set_finished(text)
            self.toolbar.set_message(f"finished at step {ev['step']} ({ev['reason']})")
            self.show_message(text)
        elif kind == "saved":
            if ev.get("step") == self._unsaved_step:
                self._unsaved_step = None
            self.show_message(f"Saved checkpoint {ev['path']}")
        elif kind == "save_failed":
            self.show_message(ev["message"])

    def _on_train_snapshot(self, snap: dict):
        first = self.snapshot is None or self.snapshot.get("untrained")
        self.snapshot = snap
        self.explorer.clear_mistakes()
        # following training costs a traced pass (worker thread) and a redraw (GUI thread)
        # per snapshot: only while a tab that shows the trace is open; the rest catch up
        if first or snap.get("final") or (self.explorer.follows_training()
                                          and self._trace_tab_open()):
            self.request_trace()
        split = self.explorer.wants_mistakes()
        if split and (first or snap.get("final") or self._trace_tab_open()):
            self.request_mistakes(split)

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
        path = ask_save_path(self, self.settings, "checkpoints", "Save checkpoint",
                             "rnnscope.npz", "Checkpoint (*.npz)")
        if path:
            self.save_checkpoint(path)

    def save_checkpoint(self, path: str):
        remove_stale_temps(Path(path).parent)     # what killed writers left there, as the CLI does
        entry = self._workers.get("train")
        if entry:
            # first: a paused run saves at once, and its "Saved" message must not be replaced
            self.show_message(f"Saving {path} after the current step …")
            entry[0].request_save(path)
            return
        if self.trainer is None:
            self.show_message("Nothing to save yet: train a model first.")
            return
        try:
            if self._stopped_params is not None and self.can_continue():
                # a stopped run: save the state it would continue from, not the best
                # parameters its finish put back
                self._save_stopped(path)
            else:
                self.trainer.save_checkpoint(path)
            self._unsaved_step = None
            self.show_message(f"Saved checkpoint {path}")
        except (RnnscopeError, OSError) as exc:
            self.show_message(f"Could not save {path}: {exc}")

    def _save_stopped(self, path: str):
        params = self.trainer.model.params
        shown = {k: v.copy() for k, v in params.items()}
        try:
            for k, v in params.items():
                v[...] = self._stopped_params[k]
            self.trainer.save_checkpoint(path)
        finally:
            for k, v in params.items():
                v[...] = shown[k]

    def _ask_load(self):
        path = ask_open_path(self, self.settings, "checkpoints", "Load checkpoint",
                             "Checkpoint (*.npz);;All files (*)")
        if path:
            self.load_checkpoint(path)

    def _hide_checkpoint_offer(self):
        self._checkpoint_data = None
        self.checkpoint_data_button.setVisible(False)

    def load_checkpoint_data(self):
        """Load the data the refused checkpoint was trained on, then the checkpoint."""
        if self._checkpoint_data is None:
            return
        spec, options, path = self._checkpoint_data
        self._hide_checkpoint_offer()
        self._pending_checkpoint = path
        self.load_data(spec, **options)

    def load_checkpoint(self, path: str) -> bool:
        """Load a checkpoint (read once): its model, settings and history are shown when it
        belongs to the loaded data; a resumable one (last.npz, a saved run) can Continue.
        On other data it is refused, with a button that loads its data."""
        if self.is_training():
            self.show_message("Stop training before loading a checkpoint.")
            return False
        from core.checkpoint import load_checkpoint

        try:
            ck = load_checkpoint(path)
        except (RnnscopeError, OSError) as exc:
            self.show_message(str(exc))
            return False
        meta = ck.meta or {}
        name = Path(path).name
        self._hide_checkpoint_offer()
        data = recorded_data(meta)
        if not same_data(meta, self.splits):
            return self._refuse_other_data(path, data)
        if self.splits is None:
            self.show_message("Load data before loading a checkpoint.")
            return False
        K = len(self.splits.class_names)
        if ck.model.params["b_q"].shape[0] != K:
            self.show_message(f"{name} predicts {ck.model.params['b_q'].shape[0]} classes but "
                              f"the loaded data has {K}; load the data it was trained on")
            return False
        step = int(meta.get("step", 0) or 0)
        self._forget_model()
        problem = resume_problem(meta)
        if problem is None:
            self._resume_path = str(path)
            self._resume_step = step
            note = f"Continue trains it further from step {step:,}"
        else:
            note = f"view only: {problem}"
        train_cfg = meta.get("train_config")
        if train_cfg:
            from core.config import TrainConfig

            try:
                self.model_panel.set_config(TrainConfig.from_dict(train_cfg))
            except RnnscopeError:
                pass
        history = meta.get("history") or {}
        self.training_panel.load_history(history)
        dh = history.get("dh_norm") or []
        self.vanishing.add_rows([r[0] for r in dh], [r[1] for r in dh])
        self.run_history = {"steps": list(history.get("steps") or []),
                            "evals": list(history.get("evals") or []),
                            "dh_norm": list(dh), "finished": history.get("finished")}
        self.run_info = {"epochs": (train_cfg or {}).get("epochs", 1)}
        snap = snapshot_of(ck.model, ck.normalizer, train_cfg or {}, step,
                           f"checkpoint {name}, step {step}")
        self.set_snapshot(snap)
        self._update_buttons()
        self.show_message(f"Loaded {path} ({note}).")
        return True

    def explore_memory_run(self, result: dict):
        """Open a Memory-tab run in the Explorer: load the probe data it was trained on (its
        cue row, height, noise and seed), then show its trained model there."""
        if self.is_training():
            self.show_message("Stop training before opening a bench run in the Explorer.")
            return
        from core.datasets import Normalizer
        from core.models import build_model

        trained = result["trained"]
        model = build_model(trained["model_config"])
        for k, v in trained["params"].items():
            model.params[k] = np.array(v, copy=True)
        snap = snapshot_of(model, Normalizer.from_dict(trained["normalizer"]),
                           trained["train_config"], int(result.get("steps", 0)),
                           f"memory bench {result['variant']}, d = {result['distance']}, "
                           f"seed {result['seed']}")
        self._pending_snapshot = snap
        self.load_data("probe", probe_params=dict(trained["probe_params"]),
                       seed=int(trained["seed"]))

    def _show_memory_run(self, snap: dict):
        from core.config import TrainConfig

        try:
            self.model_panel.set_config(TrainConfig.from_dict(snap["train"]))
        except RnnscopeError:
            pass
        self.snapshot = None     # the preview made on loading is replaced, not kept
        self.set_snapshot(snap)
        self.tabs.setCurrentWidget(self.explorer)
        self.show_message(f"Explorer: {snap['label']} (view only; train it further from the "
                          "Training tab with the same settings).")

    def _refuse_other_data(self, path: str, data: dict) -> bool:
        name = Path(path).name
        theirs = describe_data(data)
        shown = "no data" if self.splits is None else describe(self.splits).replace(
            "<b>", "").replace("</b>", "")
        args = load_arguments(data)
        if args is None:
            self.show_message(f"{name} was trained on {theirs}, which is not there any more; "
                              f"open that file with Open… and load {name} again (loaded now: "
                              f"{shown}).")
            return False
        spec, options = args
        self._checkpoint_data = (spec, options, str(path))
        what = "the memory-probe task" if spec == "probe" else "its CIFAR-10"
        self.checkpoint_data_button.setText(f"Load {what} and {name}")
        self.checkpoint_data_button.setToolTip(f"Load {theirs}, then {name}")
        self.checkpoint_data_button.setVisible(True)
        self.show_message(f"{name} was trained on {theirs}, not on the data loaded now "
                          f"({shown}): its results would mean nothing here. Press the button "
                          "on the right to load its data.")
        return False

    # --- reports ---------------------------------------------------------------------------------
    def build_report(self, split: str = "test"):
        if self.snapshot is None or self.splits is None or self._busy("report"):
            return
        history = {"steps": list(self.run_history["steps"]),
                   "evals": list(self.run_history["evals"]),
                   "dh_norm": list(self.run_history["dh_norm"])}
        if "sklearn.manifold" not in sys.modules:
            # scikit-learn/SciPy's first import happens on the GUI thread: made on the report
            # worker's thread it can deadlock against the GUI thread
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
            self._stopped_params = worker.stopped_params
            self._update_buttons()
            self._show_processes()
        if name == "load" and not self._closing:
            self.data_panel.set_idle()
            self.data_panel.show_loaded(self.splits)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel every worker, quit and wait for every thread; True if all ended."""
        self._closing = True
        self.explorer.stop_playing()
        ok = self.memory.shutdown(timeout_ms)
        for name in list(self._workers):
            worker, thread = self._workers.pop(name)
            ok &= stop_worker(worker, thread, timeout_ms)
        ok &= stop_worker(self.trace_worker, self.trace_thread, timeout_ms)
        return bool(ok)

    def closeEvent(self, event: QtGui.QCloseEvent):
        self.save_geometry()
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
    win = MainWindow(settings=app_settings())
    win.show()
    win.launch_seconds = time.perf_counter() - t0
    return app.exec()
