"""Start / Pause / Stop, epoch progress with ETA and speed, checkpoint save/load.

Visible above every tab, so a user can watch the explorer while the model trains.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets
from tqdm import tqdm

from app.resources import icon


class RunToolBar(QtWidgets.QToolBar):
    """Train (new run) and Continue (the loaded checkpoint or the stopped run) side by side, so
    which one throws the current model away is visible before the click."""

    startClicked = QtCore.Signal()
    continueClicked = QtCore.Signal()
    pauseToggled = QtCore.Signal(bool)
    stopClicked = QtCore.Signal()
    saveClicked = QtCore.Signal()
    loadClicked = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__("Training", parent)
        self.setObjectName("runToolBar")
        self.setMovable(False)
        self.setToolButtonStyle(QtCore.Qt.ToolButtonTextBesideIcon)
        self.train_button = QtWidgets.QPushButton(icon("play"), "Train")
        self.train_button.setObjectName("trainButton")
        self.train_button.setToolTip("Train a new model with the settings on the left")
        self.continue_button = QtWidgets.QPushButton(icon("play"), "Continue")
        self.continue_button.setObjectName("continueButton")
        self.pause_button = QtWidgets.QPushButton(icon("pause"), "Pause")
        self.pause_button.setObjectName("pauseButton")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Pause after the current step (press again to resume)")
        self.stop_button = QtWidgets.QPushButton(icon("stop"), "Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setToolTip("Stop after the current step; the model so far is kept")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setObjectName("epochProgress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("not training")
        self.progress.setMinimumWidth(260)
        self.speed_label = QtWidgets.QLabel("")
        self.speed_label.setObjectName("speedLabel")
        self.save_button = QtWidgets.QPushButton(icon("save"), "Save checkpoint…")
        self.save_button.setObjectName("saveButton")
        self.load_button = QtWidgets.QPushButton(icon("open"), "Load checkpoint…")
        self.load_button.setObjectName("loadButton")
        self.addWidget(self.train_button)
        # a widget in a toolbar is shown and hidden through its action, not setVisible
        self.continue_action = self.addWidget(self.continue_button)
        self.continue_action.setVisible(False)
        for w in (self.pause_button, self.stop_button):
            self.addWidget(w)
        self.addSeparator()
        self.addWidget(self.progress)
        self.addWidget(self.speed_label)
        spacer = QtWidgets.QWidget()
        spacer.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Preferred)
        self.addWidget(spacer)
        self.addWidget(self.save_button)
        self.addWidget(self.load_button)
        self.train_button.clicked.connect(self.startClicked)
        self.continue_button.clicked.connect(self.continueClicked)
        self.pause_button.toggled.connect(self._pause_toggled)
        self.stop_button.clicked.connect(self.stopClicked)
        self.save_button.clicked.connect(self.saveClicked)
        self.load_button.clicked.connect(self.loadClicked)
        self._position = ""      # "epoch e of E · step s" of the last progress shown
        self.set_running(False)
        self.save_button.setEnabled(False)

    def _pause_toggled(self, on: bool):
        self.pause_button.setText("Resume" if on else "Pause")
        self.pause_button.setIcon(icon("play" if on else "pause"))
        self.pauseToggled.emit(on)

    def set_running(self, running: bool, can_start: bool = True):
        self.train_button.setEnabled(not running and can_start)
        self.continue_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.load_button.setEnabled(not running)
        if not running:
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self.pause_button.setText("Pause")
            self.pause_button.setIcon(icon("pause"))
            self.pause_button.blockSignals(False)

    def set_continue(self, step: int | None, what: str = ""):
        """Offer Continue from ``step`` (``what``: the loaded checkpoint, the stopped run), and
        label Train as the new run it starts; None: no Continue, Train is plain Train."""
        offer = step is not None
        self.continue_action.setVisible(offer)
        if offer:
            self.continue_button.setText(f"Continue from step {step:,}")
            self.continue_button.setToolTip(f"Continue training {what} from step {step:,}, "
                                            "with its optimizer state and history")
            self.train_button.setText("New run")
            self.train_button.setToolTip(
                f"Start a new run at step 0 with the settings on the left; {what} stays only "
                "if you saved it (Continue trains it further instead)")
        else:
            self.train_button.setText("Train")
            self.train_button.setToolTip("Train a new model with the settings on the left")

    def set_progress(self, step: int, epoch: float, epochs: int, images_per_s: float,
                     seconds: float, steps_per_epoch: int):
        frac = min(1.0, epoch / max(1, epochs))
        self.progress.setValue(int(1000 * frac))
        self._position = f"epoch {epoch:.2f} of {epochs} · step {step}"
        if self.pause_button.isChecked():
            self.set_paused(True)
            return
        eta = seconds / frac - seconds if frac > 0 else 0.0
        self.progress.setFormat(f"{self._position} · ETA {tqdm.format_interval(max(0.0, eta))}")
        self.speed_label.setText(f"  {images_per_s:,.0f} images/s  ")

    def set_paused(self, paused: bool):
        """While paused there is no speed and no time left to show: say where it stands."""
        if paused:
            self.progress.setFormat(f"paused · {self._position}" if self._position
                                    else "paused")
            self.speed_label.setText("")

    def set_message(self, text: str):
        self.progress.setFormat(text)
        self.speed_label.setText("")
