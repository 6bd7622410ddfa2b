"""Data: what is loaded, and the ways to load something else (probe, file/folder, download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtWidgets

from app.resources import icon
from app.settings import ask_open_path, last_folder, remember_folder
from app.thumbnail_strip import ThumbnailStrip
from core.datasets import PROBE_DEFAULTS


def describe(splits) -> str:
    """What is loaded, for people: the probe task in words (its cue rows counted from 1, as
    everywhere); CIFAR-10 as core describes it."""
    probe = (getattr(splits, "info", None) or {}).get("probe")
    if not probe:
        return splits.description
    a = int(probe["cue_row"]) + 1
    b = a + int(probe["cue_height"]) - 1
    sizes = "/".join(f"{len(x):,}" for x in (splits.train, splits.val, splits.test))
    return (f"<b>Memory-probe task</b>: noise images whose class is the coloured texture in "
            f"image rows {a}–{b} (the cue); noise {probe.get('noise', 0):g}, seed "
            f"{probe.get('seed', 0)}; {sizes} train/val/test")


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


class DataPanel(QtWidgets.QGroupBox):
    """Shows the loaded DataSplits; asks the main window to load or download through signals."""

    loadRequested = QtCore.Signal(object, object)   # spec ('probe' | path), subset or None
    downloadRequested = QtCore.Signal()
    downloadCancelRequested = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__("Data", parent)
        self.setObjectName("dataPanel")
        self.spec = None
        self._error = False          # an error message is shown under the buttons
        self._settings = None        # QSettings for the dialogs' last folders (None: home)
        self.dataset_label = QtWidgets.QLabel("Nothing loaded yet.")
        self.dataset_label.setObjectName("datasetLabel")
        self.dataset_label.setWordWrap(True)
        self.dataset_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.probe_button = QtWidgets.QPushButton("Memory probe")
        self.probe_button.setObjectName("probeButton")
        self.probe_button.setToolTip(
            "A synthetic task: noise images whose class is a coloured texture in a few rows "
            "near the bottom. The RNN must remember it until the last row.")
        self.cue_spin = QtWidgets.QSpinBox()
        self.cue_spin.setObjectName("cueRowSpin")
        self.cue_spin.setPrefix("cue at row ")
        self.cue_spin.setRange(1, 32 - PROBE_DEFAULTS["cue_height"] + 1)
        self.cue_spin.setValue(PROBE_DEFAULTS["cue_row"] + 1)
        self.cue_spin.setToolTip(
            f"Memory probe: the {PROBE_DEFAULTS['cue_height']} image rows from this one carry "
            "the class. Near the bottom (25) the RNN only has to remember them for a few rows; "
            "near the top (1) their gradient must flow back ~30 steps and vanishes on the way. "
            "Press Memory probe (or Apply) to regenerate the task.")
        self.open_button = QtWidgets.QToolButton()
        self.open_button.setObjectName("openButton")
        self.open_button.setText("Open…")
        self.open_button.setIcon(icon("open"))
        self.open_button.setToolButtonStyle(QtCore.Qt.ToolButtonTextBesideIcon)
        self.open_button.setPopupMode(QtWidgets.QToolButton.InstantPopup)
        menu = QtWidgets.QMenu(self.open_button)
        menu.addAction("CIFAR-10 tarball (cifar-10-python.tar.gz)…", self._open_file)
        menu.addAction("CIFAR-10 folder (cifar-10-batches-py)…", self._open_folder)
        self.open_button.setMenu(menu)
        self.download_button = QtWidgets.QPushButton(icon("download"), "Download CIFAR-10")
        self.download_button.setObjectName("downloadButton")
        self.download_button.setToolTip("Fetch the official CIFAR-10 archive (163 MB) into the "
                                        "cache folder and load it")
        self.subset_spin = QtWidgets.QSpinBox()
        self.subset_spin.setObjectName("subsetSpin")
        self.subset_spin.setRange(0, 50000)
        self.subset_spin.setSingleStep(1000)
        self.subset_spin.setSpecialValueText("all")
        self.subset_spin.setValue(10000)
        self.subset_spin.setToolTip("Train on this many CIFAR-10 images (a stratified subset); "
                                    "'all' = 49,000. Smaller trains faster.")
        self.reload_button = QtWidgets.QPushButton("Apply")
        self.reload_button.setToolTip("Reload the current data set with these settings "
                                      "(CIFAR-10 subset size, or the probe's cue row)")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setObjectName("dataProgress")
        self.progress.setVisible(False)
        self.progress_label = QtWidgets.QLabel("")
        self.progress_label.setVisible(False)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelDownloadButton")
        self.cancel_button.setVisible(False)
        self.sizes_label = QtWidgets.QLabel("")
        self.sizes_label.setWordWrap(True)
        self.classes_label = QtWidgets.QLabel("")
        self.classes_label.setWordWrap(True)
        self.classes_label.setObjectName("classesLabel")
        self.thumbs = ThumbnailStrip(size=30)
        self.thumbs.setObjectName("sampleStrip")

        row1 = QtWidgets.QHBoxLayout()
        row1.addWidget(self.probe_button, 1)
        row1.addWidget(self.cue_spin)
        cifar_row = QtWidgets.QHBoxLayout()
        cifar_row.addWidget(self.open_button)
        cifar_row.addWidget(self.download_button, 1)
        row2 = QtWidgets.QHBoxLayout()
        row2.addWidget(QtWidgets.QLabel("CIFAR-10 subset"))
        row2.addWidget(self.subset_spin, 1)
        row2.addWidget(self.reload_button)
        prow = QtWidgets.QHBoxLayout()
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.cancel_button)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.dataset_label)
        lay.addLayout(row1)
        lay.addLayout(cifar_row)
        lay.addLayout(row2)
        lay.addLayout(prow)
        lay.addWidget(self.progress_label)
        lay.addWidget(self.sizes_label)
        lay.addWidget(self.classes_label)
        lay.addWidget(self.thumbs)

        self.probe_button.clicked.connect(lambda: self.loadRequested.emit("probe", None))
        self.download_button.clicked.connect(self.downloadRequested)
        self.cancel_button.clicked.connect(self.downloadCancelRequested)
        self.reload_button.clicked.connect(self._reload)

    def probe_params(self) -> dict:
        """Options for core.datasets.load_data('probe', probe_params=...): the cue row."""
        return {"cue_row": self.cue_spin.value() - 1}

    def subset(self):
        v = self.subset_spin.value()
        return None if v == 0 else int(v)

    def use_settings(self, settings) -> None:
        """Remember the Open… dialogs' folders in ``settings`` (a QSettings, or None)."""
        self._settings = settings

    def set_subset(self, subset) -> None:
        """Show ``subset`` (None = all) in the CIFAR-10 subset box."""
        self.subset_spin.setValue(0 if subset is None else int(subset))

    def _open_file(self):
        path = ask_open_path(self, self._settings, "data", "Open CIFAR-10 tarball",
                             "CIFAR-10 archive (*.tar.gz *.tgz);;All files (*)")
        if path:
            self.loadRequested.emit(path, self.subset())

    def _open_folder(self):
        path = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Open CIFAR-10 folder", last_folder(self._settings, "data"))
        if path:
            remember_folder(self._settings, "data", str(Path(path).parent))
            self.loadRequested.emit(path, self.subset())

    def _reload(self):
        if self.spec is not None:
            self.loadRequested.emit(self.spec, None if self.spec == "probe" else self.subset())

    # --- state shown -------------------------------------------------------------------------
    def set_busy(self, text: str):
        self._error = False
        self.dataset_label.setText(text)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.progress_label.setVisible(False)
        for b in (self.probe_button, self.open_button, self.download_button, self.reload_button):
            b.setEnabled(False)

    def set_load_progress(self, done: int, total: int):
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def set_idle(self):
        """Loading/downloading has ended: hide the progress (an error message stays)."""
        self.progress.setVisible(False)
        self.progress_label.setVisible(self._error)
        self.cancel_button.setVisible(False)
        for b in (self.probe_button, self.open_button, self.download_button, self.reload_button):
            b.setEnabled(True)

    def set_download_progress(self, done: float, total: float, speed: float):
        self._error = False
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.progress_label.setVisible(True)
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            eta = (total - done) / speed if speed > 0 else 0
            self.progress_label.setText(f"{_mb(done)} of {_mb(total)} at {_mb(speed)}/s, "
                                        f"about {eta:.0f} s left")
        else:
            self.progress.setRange(0, 0)
            self.progress_label.setText(f"{_mb(done)} at {_mb(speed)}/s")

    def set_downloading(self):
        """A download has started: no second one until it ends."""
        self.set_download_progress(0, 0, 0)
        self.download_button.setEnabled(False)

    def show_loaded(self, splits):
        """Describe ``splits`` again (after a failed or finished load of something else)."""
        if splits is not None:
            self.dataset_label.setText(describe(splits))

    def set_error(self, message: str):
        self._error = True
        self.set_idle()
        self.progress_label.setVisible(True)
        self.progress_label.setText(f"<span style='color:#c62828'>{message}</span>")
        self.progress_label.setWordWrap(True)

    def set_splits(self, splits, spec):
        """Show a freshly loaded DataSplits."""
        self._error = False
        self.set_idle()
        self.spec = spec
        self.dataset_label.setText(describe(splits))
        n = (len(splits.train), len(splits.val), len(splits.test))
        self.sizes_label.setText(f"<b>Splits:</b> {n[0]:,} train · {n[1]:,} validation · "
                                 f"{n[2]:,} test")
        self.classes_label.setText("<b>Classes:</b> " + ", ".join(splits.class_names))
        rng = np.random.default_rng(0)
        idx = np.sort(rng.choice(len(splits.train), size=min(24, len(splits.train)),
                                 replace=False))
        labels = splits.train.labels
        self.thumbs.set_images(np.asarray(splits.train.images[idx]), [int(i) for i in idx],
                               [splits.class_names[int(labels[i])] for i in idx])
        probe = (splits.info or {}).get("probe") if hasattr(splits, "info") else None
        if probe:
            self.cue_spin.setValue(int(probe.get("cue_row", 0)) + 1)
        self.subset_spin.setEnabled(True)
        self.reload_button.setEnabled(True)
