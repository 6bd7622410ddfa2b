"""The explorer: step through one image row by row, forward then backward.

Frames run 1..2T. Frames 1..T are the forward pass (timestep t = frame: the RNN reads row t,
the heatmap gains column t, the class probabilities are those after t rows). Frames T+1..2T are
the backward pass (t = 2T + 1 - frame, from T down to 1: the gradient ||dl/dh_t|| is revealed
right to left). The slider always shows t; the phase buttons say which pass it belongs to.

Which image rows a step reads comes with the trace (core.timesteps.step_bands): one row per step
for the row-RNN, a 4-row band with a wider receptive field for the CNN+RNN, whose steps are
called feature-map steps in every text. The narration has a fixed height of a few lines, so the
playback controls above it stay where they are whatever it says.

Gated cells (LSTM, GRU): the heatmap's selector shows h_t, the LSTM's cell state c_t or any
gate in the same unit x timestep layout; the backward plot adds ||dl/dc_t|| for the LSTM; the
narration says what the forget gate (GRU: the update gate z) did at the step for this image.
With the CNN+RNN reading its map position by position (T = 64) the band on the image is the
step's square patch and its receptive field.

The panel only displays the dict app.trace_job.explorer_trace returns; it asks for one with
``imageRequested(split, index)`` and never computes anything itself.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.clip_view import ClipView
from app.connectivity_strip import ConnectivityStrip, PixelOverlay
from app.elided_label import ElidedLabel
from app.feature_row_view import FeatureRowView
from app.fill_scroll_area import FillScrollArea
from app.grad_norm_plot import GradNormPlot
from app.hidden_heatmap import HiddenHeatmap
from app.plot_frame import PlotFrame
from app.plot_style import BAD, CUE, GOOD, SUBTLE, THUMBNAILS
from app.resources import icon
from app.row_image_view import RowImageView
from app.step_probs_plot import StepProbsPlot
from app.thumbnail_strip import ThumbnailStrip

NARRATION_LINES = 3   # the longest narration fits in three lines at a 1100 px wide window

# What the heatmap can show, in the selector's order: name -> (selector text, sentence).
QUANTITIES = {
    "h": ("h_t hidden state", "Each column is the memory after one step (a row, or a map "
          "position). Units that keep their colour across columns carry information forward; "
          "columns that wash out forget."),
    "c": ("c_t cell state", "The LSTM's long-term memory: a unit that keeps its colour over "
          "many columns is a forget gate near 1 holding a value."),
    "i": ("i_t input gate", "Bright = open: how much of the candidate g_t is written into c_t "
          "at each step."),
    "f": ("f_t forget gate", "Bright = keep: how much of c_t-1 survives each step; dark "
          "columns are where the cell forgets (and the gradient along c stops)."),
    "o": ("o_t output gate", "Bright = open: how much of tanh(c_t) the unit shows as h_t."),
    "g": ("g_t candidate", "The value -1..1 the LSTM would write into c_t, before the input "
          "gate scales it."),
    "z": ("z_t update gate", "Bright = keep: h_t = (1 - z) n_t + z h_t-1, so a bright unit "
          "holds its state (and passes the gradient back) unchanged."),
    "r": ("r_t reset gate", "Dark = ignore the old state when forming the candidate n_t."),
    "n": ("n_t candidate", "The new value -1..1 the GRU mixes in where z is dark."),
}

# Playback speeds in timesteps (an image row, a map row or a map position) per second.
SPEEDS = [("1 step/s", 1000), ("2 steps/s", 500), ("5 steps/s", 200), ("10 steps/s", 100),
          ("20 steps/s", 50)]


class ExplorerPanel(QtWidgets.QWidget):
    """Image picker, playback controls and the five synchronized views of one trace."""

    imageRequested = QtCore.Signal(str, int)        # split name, index in that split
    followChanged = QtCore.Signal(bool)
    misclassifiedRequested = QtCore.Signal(str)     # split whose mistakes to list
    message = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("explorerPanel")
        self.trace: dict | None = None
        self.T = 0
        self.frame = 0
        self.split_sizes: dict[str, int] = {}
        self.mistakes: dict[str, np.ndarray] = {}
        self.cue_rows: tuple[int, int] | None = None   # probe task: 0-based first, last row

        # --- picker row -------------------------------------------------------------------
        self.split_combo = QtWidgets.QComboBox()
        self.split_combo.setObjectName("splitSelect")
        self.split_combo.addItems(["val", "test"])
        self.split_combo.setToolTip("Pick images from the validation or the test split")
        self.index_spin = QtWidgets.QSpinBox()
        self.index_spin.setObjectName("imageIndex")
        self.index_spin.setRange(0, 0)
        self.index_spin.setToolTip("Index of the image in the split")
        self.random_button = QtWidgets.QPushButton(icon("random"), "Random")
        self.random_button.setObjectName("randomButton")
        self.wrong_check = QtWidgets.QCheckBox("only misclassified")
        self.wrong_check.setObjectName("misclassifiedCheck")
        self.wrong_check.setToolTip("Random picks and thumbnails only show images the current "
                                    "model gets wrong")
        self.follow_check = QtWidgets.QCheckBox("follow training")
        self.follow_check.setObjectName("followCheck")
        self.follow_check.setChecked(True)
        self.follow_check.setToolTip("Recompute this image's trace about once a second while "
                                     "the model trains, so you watch it change")
        # elided (whole in the tooltip): a long model description must not widen the panel
        self.model_label = ElidedLabel("")
        self.model_label.setObjectName("traceModelLabel")
        self.model_label.setMinimumWidth(60)
        self.model_label.setAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
        self.thumbs = ThumbnailStrip()
        picker = QtWidgets.QHBoxLayout()
        for w in (QtWidgets.QLabel("Image from"), self.split_combo, QtWidgets.QLabel("#"),
                  self.index_spin, self.random_button, self.wrong_check, self.follow_check):
            picker.addWidget(w)
        picker.addStretch(0)
        picker.addWidget(self.model_label, 1)

        # --- views ------------------------------------------------------------------------
        self.image_view = RowImageView()
        self.feature_view = FeatureRowView()
        self.heatmap = HiddenHeatmap()
        self.step_probs = StepProbsPlot()
        self.grad_norm = GradNormPlot(legend_columns=1)   # a narrow column: one entry a line
        self.clip_view = ClipView()
        self.prediction_label = QtWidgets.QLabel("")
        self.prediction_label.setObjectName("predictionLabel")
        self.prediction_label.setWordWrap(True)
        self.prediction_label.setTextFormat(QtCore.Qt.RichText)

        # which rows (and pixels) the decision depends on: beside the image, rows aligned
        self.conn_strip = ConnectivityStrip(self.image_view)
        self.conn_overlay = PixelOverlay(self.image_view.getPlotItem())
        self.conn_class_combo = QtWidgets.QComboBox()
        self.conn_class_combo.setObjectName("connectivityClassCombo")
        self.conn_class_combo.setToolTip("Whose logit the connectivity strip (right of the "
                                         "image) differentiates: the true class by default")
        self.conn_class_combo.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToContents)
        self.conn_overlay_check = QtWidgets.QCheckBox("per pixel")
        self.conn_overlay_check.setObjectName("connectivityOverlayCheck")
        self.conn_overlay_check.setToolTip("Colour the image by ||d logit / d pixel|| (log "
                                           "scale; bright = the decision depends on it)")
        self.image_frame = PlotFrame(
            "Input image", self.image_view,
            "The highlighted band is what the RNN reads at step t; dimmed rows come later. "
            "Right: ||d logit/d x|| per image row (log), the rows this decision depends on.",
            export_name="explorer_image", beside=self.conn_strip)
        self._stretch_beside(self.image_frame, self.conn_strip)
        # the strip beside the image changes the image's size after it is drawn: fit it again
        self.image_view.getPlotItem().getViewBox().sigResized.connect(
            lambda *_: QtCore.QTimer.singleShot(0, self._fit_image))
        conn_row = QtWidgets.QHBoxLayout()
        conn_row.setContentsMargins(0, 0, 0, 0)
        conn_row.addWidget(QtWidgets.QLabel("Connectivity of"))
        conn_row.addWidget(self.conn_class_combo)
        conn_row.addWidget(self.conn_overlay_check)
        conn_row.addStretch(1)
        self.feature_frame = PlotFrame(
            "Feature map read by the RNN", self.feature_view,
            "CNN+RNN: the mean over the conv channels at each feature-map step.",
            export_name="explorer_feature_map")
        self.heat_frame = PlotFrame(
            "Hidden state h_t (unit x timestep)", self.heatmap, QUANTITIES["h"][1],
            export_name="explorer_hidden")
        self.quantity_combo = QtWidgets.QComboBox()
        self.quantity_combo.setObjectName("heatmapQuantityCombo")
        self.quantity_combo.setToolTip("What the heatmap shows: the hidden state, the LSTM's "
                                       "cell state or one of the gates (each on its own scale)")
        self.quantity_combo.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToContents)
        self.quantity_combo.setVisible(False)
        self.heat_frame.add_header_widget(self.quantity_combo)
        self.probs_legend = QtWidgets.QLabel("")
        self.probs_legend.setObjectName("probsLegend")
        self.probs_legend.setTextFormat(QtCore.Qt.RichText)
        self.probs_frame = PlotFrame(
            "If the sequence stopped at t: class probabilities", self.step_probs,
            "Thick line = true class; dots = the class predicted after each step. "
            "Watch when the right answer takes over.",
            export_name="explorer_step_probs", beside=self.probs_legend)
        self.grad_frame = PlotFrame(
            "Backward pass: ||dl/dh_t|| and each step's part of dW_hh (log scale)",
            self.grad_norm,
            "The gradient starts at the last step and flows left; a steady fall to the left is "
            "the vanishing gradient. Squares: what step t adds to dW_hh (h_t-1ᵀ da_t).",
            export_name="explorer_grad_norm")
        self.clip_frame = PlotFrame(
            "Gradient clipping for this image", self.clip_view, "",
            export_name="explorer_clip", hover=False)

        left = QtWidgets.QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(self.image_frame)
        left.addLayout(conn_row)
        left.addWidget(self.feature_frame)
        left.addWidget(self.prediction_label)
        left.addStretch(1)
        mid = QtWidgets.QVBoxLayout()
        mid.setContentsMargins(0, 0, 0, 0)
        mid.addWidget(self.heat_frame, 1)
        mid.addWidget(self.probs_frame, 1)
        right = QtWidgets.QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.grad_frame, 1)
        right.addWidget(self.clip_frame, 1)
        views = QtWidgets.QHBoxLayout()
        views.setContentsMargins(0, 0, 0, 0)
        views.addLayout(left, 4)
        views.addLayout(mid, 5)
        views.addLayout(right, 4)
        # below the views' minimum size the area scrolls instead of drawing views over each other
        views_widget = QtWidgets.QWidget()
        views_widget.setLayout(views)
        self.views_area = FillScrollArea()
        self.views_area.setObjectName("explorerViews")
        self.views_area.setFrameShape(QtWidgets.QFrame.NoFrame)
        self.views_area.setWidget(views_widget)

        # --- playback ---------------------------------------------------------------------
        self.first_button = self._tool("first", "Go to the first row (Home)")
        self.back_button = self._tool("step-back", "One step back (Left)")
        self.play_button = QtWidgets.QPushButton(icon("play"), "Play")
        self.play_button.setObjectName("playButton")
        self.play_button.setToolTip("Play / pause the animation (Space)")
        self.play_button.setCheckable(True)
        self.fwd_button = self._tool("step-forward", "One step forward (Right)")
        self.last_button = self._tool("last", "Go to the end of the backward pass (End)")
        self.forward_radio = QtWidgets.QRadioButton("Forward pass")
        self.forward_radio.setObjectName("forwardPhase")
        self.backward_radio = QtWidgets.QRadioButton("Backward pass")
        self.backward_radio.setObjectName("backwardPhase")
        self.forward_radio.setChecked(True)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.slider.setObjectName("timestepSlider")
        self.slider.setRange(1, 1)
        self.slider.setPageStep(4)
        self.slider.setTickPosition(QtWidgets.QSlider.TicksBelow)
        self.t_label = QtWidgets.QLabel("t = –")
        self.t_label.setObjectName("timestepLabel")
        self.t_label.setMinimumWidth(70)
        self.speed_combo = QtWidgets.QComboBox()
        self.speed_combo.setObjectName("speedSelect")
        for name, _ in SPEEDS:
            self.speed_combo.addItem(name)
        self.speed_combo.setCurrentIndex(2)
        self.speed_combo.setToolTip("Animation speed")
        controls = QtWidgets.QHBoxLayout()
        for w in (self.first_button, self.back_button, self.play_button, self.fwd_button,
                  self.last_button):
            controls.addWidget(w)
        controls.addSpacing(8)
        controls.addWidget(self.forward_radio)
        controls.addWidget(self.backward_radio)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.t_label)
        controls.addWidget(self.speed_combo)
        self.narration = QtWidgets.QLabel("")
        self.narration.setObjectName("narration")
        self.narration.setWordWrap(True)
        self.narration.setTextFormat(QtCore.Qt.RichText)
        self.narration.setAlignment(QtCore.Qt.AlignLeft | QtCore.Qt.AlignTop)
        self.narration.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Fixed)
        self._fit_narration()

        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        lay.addLayout(picker)
        lay.addWidget(self.thumbs)
        lay.addWidget(self.views_area, 1)
        lay.addLayout(controls)
        lay.addWidget(self.narration)

        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.play_button.toggled.connect(self._set_playing)
        self.first_button.clicked.connect(lambda: self.set_frame(1))
        self.last_button.clicked.connect(lambda: self.set_frame(2 * self.T))
        self.back_button.clicked.connect(lambda: self.set_frame(self.frame - 1))
        self.fwd_button.clicked.connect(lambda: self.set_frame(self.frame + 1))
        self.slider.valueChanged.connect(self._slider_moved)
        self.forward_radio.toggled.connect(self._phase_clicked)
        self.speed_combo.currentIndexChanged.connect(self._speed_changed)
        self.split_combo.currentTextChanged.connect(self._split_changed)
        self.index_spin.valueChanged.connect(self._request)
        self.quantity_combo.currentIndexChanged.connect(self._quantity_changed)
        self.conn_class_combo.currentIndexChanged.connect(self._show_connectivity)
        self.conn_overlay_check.toggled.connect(self._show_connectivity)
        self.random_button.clicked.connect(self.pick_random)
        self.thumbs.picked.connect(self.index_spin.setValue)
        self.follow_check.toggled.connect(self.followChanged)
        self.wrong_check.toggled.connect(self._wrong_toggled)
        self._keys = {QtCore.Qt.Key_Space: self.play_button.toggle,
                      QtCore.Qt.Key_Left: lambda: self.set_frame(self.frame - 1),
                      QtCore.Qt.Key_Right: lambda: self.set_frame(self.frame + 1),
                      QtCore.Qt.Key_Home: lambda: self.set_frame(1),
                      QtCore.Qt.Key_End: lambda: self.set_frame(2 * self.T)}
        # an application-wide filter: the keys step t wherever the focus is in this window
        # (the tab bar, a button, the slider), before that widget uses them itself
        QtWidgets.QApplication.instance().installEventFilter(self)
        self._rng = np.random.default_rng()
        self._set_enabled(False)
        self.narration.setText("Train a model (or load a checkpoint) to explore how it reads "
                               "an image. Pick an image above.")

    # --- keys -----------------------------------------------------------------------------
    def eventFilter(self, obj, event):
        if (event.type() == QtCore.QEvent.KeyPress and event.key() in self._keys
                and event.modifiers() in (QtCore.Qt.NoModifier, QtCore.Qt.KeypadModifier)
                and self._takes_keys()):
            self._keys[event.key()]()
            return True
        return False

    def _takes_keys(self) -> bool:
        """True while this panel is shown in the active window and the focus is not in a text
        field (a line edit, a spin box, an editable combo box) or a popup/dialog."""
        if not self.isVisible():
            return False
        app = QtWidgets.QApplication
        if app.activePopupWidget() is not None or app.activeModalWidget() is not None:
            return False
        focus = app.focusWidget()
        if focus is not None:
            if focus.window() is not self.window():
                return False
            if isinstance(focus, (QtWidgets.QLineEdit, QtWidgets.QAbstractSpinBox,
                                  QtWidgets.QTextEdit, QtWidgets.QPlainTextEdit)):
                return False
            if isinstance(focus, QtWidgets.QComboBox) and focus.isEditable():
                return False
        elif app.activeWindow() is not self.window():
            return False
        return True

    def showEvent(self, ev):
        super().showEvent(ev)
        self._fit_narration()   # the window's style sheet reaches the label only once shown
        QtCore.QTimer.singleShot(0, self._fit_image)

    def _fit_image(self, *_):
        r, c = self.image_view.shape
        if r and c:
            # a resize the view got while its tab was hidden can leave its scene at the old
            # size (the image then runs under the caption): lay the scene out at today's size
            size = self.image_view.size()
            self.image_view.resizeEvent(QtGui.QResizeEvent(size, size))
            self.image_view.getPlotItem().getViewBox().setRange(
                xRange=(0, c), yRange=(0, r), padding=0.02)

    @staticmethod
    def _stretch_beside(frame: QtWidgets.QWidget, widget: QtWidgets.QWidget):
        """Let ``widget`` (put beside a plot by PlotFrame, top-aligned) take the row's full
        height, so its rows can line up with the image's."""
        top = frame.layout()
        for i in range(top.count()):
            sub = top.itemAt(i).layout()
            if sub is not None and sub.indexOf(widget) >= 0:
                sub.setAlignment(widget, QtCore.Qt.Alignment())

    def _fit_narration(self):
        """Room for NARRATION_LINES lines of rich text, measured by the label itself: its text
        document adds margins the font's line spacing does not count (they cut the third line
        of a long narration), and the style sheet adds padding and a border."""
        shown = self.narration.text()
        self.narration.setText("<br>".join(["<b>Xg</b>"] * NARRATION_LINES))
        needed = self.narration.heightForWidth(10_000)   # explicit breaks: any width will do
        self.narration.setText(shown)
        self.narration.setFixedHeight(max(needed, NARRATION_LINES
                                          * self.narration.fontMetrics().lineSpacing()) + 2)

    def changeEvent(self, ev):
        super().changeEvent(ev)
        if ev.type() in (QtCore.QEvent.FontChange, QtCore.QEvent.StyleChange):
            self._fit_narration()

    def _tool(self, name: str, tip: str) -> QtWidgets.QToolButton:
        b = QtWidgets.QToolButton()
        b.setIcon(icon(name))
        b.setToolTip(tip)
        b.setObjectName(name.replace("-", "") + "Button")
        return b

    def _set_enabled(self, on: bool):
        for w in (self.play_button, self.first_button, self.back_button, self.fwd_button,
                  self.last_button, self.slider, self.forward_radio, self.backward_radio):
            w.setEnabled(on)

    # --- image choice ---------------------------------------------------------------------
    def set_data(self, images_by_split: dict[str, np.ndarray], labels_by_split: dict,
                 class_names: list[str], cue_rows: tuple[int, int] | None = None):
        """New data set: thumbnails from the current split; request the first image.

        ``cue_rows``: the memory-probe task's cue band (0-based first and last image row), to
        outline in the image and shade in the gradient plot; None for CIFAR-10.
        """
        self.cue_rows = cue_rows
        self._images = images_by_split
        self._labels = labels_by_split
        self.class_names = list(class_names)
        self.split_sizes = {k: len(v) for k, v in images_by_split.items()}
        self.mistakes = {}
        self.trace = None
        self._set_enabled(False)
        self.prediction_label.setText("")
        self.model_label.setText("")
        self.narration.setText("New data: its first image appears as soon as it is traced.")
        self._split_changed(self.split_combo.currentText(), request=False)

    def _split_changed(self, split: str, request: bool = True):
        n = self.split_sizes.get(split, 0)
        self.index_spin.blockSignals(True)
        self.index_spin.setRange(0, max(0, n - 1))
        self.index_spin.blockSignals(False)
        self._fill_thumbs()
        if request and n:
            if self.wrong_check.isChecked() and split not in self.mistakes:
                self.misclassifiedRequested.emit(split)
            self._request()

    def _fill_thumbs(self):
        split = self.split_combo.currentText()
        images = getattr(self, "_images", {}).get(split)
        if images is None:
            self.thumbs.set_images([], [], [])
            return
        if self.wrong_check.isChecked() and split in self.mistakes:
            idx = self.mistakes[split][:THUMBNAILS]
        else:
            idx = np.arange(min(THUMBNAILS, len(images)))
        labels = self._labels[split]
        self.thumbs.set_images(images[idx], [int(i) for i in idx],
                               [self.class_names[int(labels[i])] for i in idx])

    def set_mistakes(self, split: str, indices: np.ndarray, checked: int | None = None):
        """Indices (into ``split``) the current model gets wrong, among the first ``checked``
        images of the split. With 'only misclassified' on, an image the model gets right is
        replaced by the first mistake."""
        self.mistakes[split] = np.asarray(indices, dtype=np.int64)
        if not self.wrong_check.isChecked() or split != self.split_combo.currentText():
            return
        self._fill_thumbs()
        n = len(indices)
        of = f" of the first {checked:,}" if checked else ""
        if n == 0:
            self.message.emit(f"The model gets every one{of} {split} images right.")
            return
        self.message.emit(f"The model gets {n:,}{of} {split} images wrong; the picker shows "
                          "only those.")
        self._show_a_mistake()

    def _show_a_mistake(self):
        """If 'only misclassified' is on and the image shown is not a known mistake: the
        first mistake instead."""
        split, idx = self.current_choice()
        wrong = self.mistakes.get(split)
        if self.wrong_check.isChecked() and wrong is not None and len(wrong) \
                and idx not in set(wrong.tolist()):
            self.index_spin.setValue(int(wrong[0]))

    def clear_mistakes(self):
        """The model changed: the list of its mistakes is out of date."""
        self.mistakes = {}

    def wants_mistakes(self) -> str | None:
        """The split whose mistakes 'only misclassified' needs (None when it is off)."""
        return self.split_combo.currentText() if self.wrong_check.isChecked() else None

    def follows_training(self) -> bool:
        return self.follow_check.isChecked()

    def _wrong_toggled(self, on: bool):
        split = self.split_combo.currentText()
        if on and split not in self.mistakes:
            self.misclassifiedRequested.emit(split)
        self._fill_thumbs()
        self._show_a_mistake()

    def pick_random(self):
        split = self.split_combo.currentText()
        n = self.split_sizes.get(split, 0)
        if not n:
            return
        if self.wrong_check.isChecked() and len(self.mistakes.get(split, [])):
            idx = int(self._rng.choice(self.mistakes[split]))
        else:
            idx = int(self._rng.integers(n))
        self.index_spin.setValue(idx)

    def current_choice(self) -> tuple[str, int]:
        return self.split_combo.currentText(), self.index_spin.value()

    def _request(self, *_):
        split, idx = self.current_choice()
        if self.split_sizes.get(split, 0):
            self.imageRequested.emit(split, idx)

    # --- trace display --------------------------------------------------------------------
    def set_trace(self, tr: dict):
        """Show a new trace (keeps the current frame, so following training stays in place)."""
        if tr is None:
            return
        if (tr["split"], tr["index"]) != self.current_choice():
            return  # an answer for an image the user has already left
        first = self.trace is None or self.T != tr["T"]
        self.trace = tr
        self.T = T = int(tr["T"])
        cnn = tr["kind"] == "cnn-rnn"
        step_rows = np.asarray(tr["step_rows"])
        self.image_view.set_image(tr["image"], rows_per_step=int(tr["rows_per_step"]))
        self.image_view.set_step_rows(step_rows, tr["seen_rows"], tr.get("step_cols"),
                                      tr.get("seen_cols"))
        self.image_view.set_marked_rows(self.cue_rows)
        self.feature_frame.setVisible(cnn)
        cue_steps = over = None
        if self.cue_rows is not None:
            a, b = self.cue_rows
            over = np.flatnonzero((step_rows[:, 1] >= a) & (step_rows[:, 0] <= b))
            cue_steps = (int(over[0]) + 1, int(over[-1]) + 1) if over.size else None
        if cnn and tr.get("seq") is not None:
            width = tr["image"].shape[1] // int(tr["rows_per_step"])
            self.feature_view.set_sequence(tr["seq"], width=width,
                                           sequence=tr.get("sequence", "rows"))
            if tr.get("map_rows") is not None:
                self.feature_view.set_step_rows(tr["map_rows"], None, tr.get("map_cols"))
            map_rows = tr.get("map_rows")
            marked = None
            if cue_steps is not None:
                marked = ((int(map_rows[over[0], 0]), int(map_rows[over[-1], 1]))
                          if map_rows is not None else (cue_steps[0] - 1, cue_steps[1] - 1))
            self.feature_view.set_marked_rows(marked)
            self.feature_frame.set_caption(self._feature_caption(tr))
        self.grad_norm.set_cue_steps(cue_steps)
        self._set_quantities(tr)
        self.step_probs.set_probs(tr["step_probs"], tr["class_names"], tr["label"])
        self.probs_legend.setText(self.step_probs.legend_html())
        self.grad_norm.set_norms(tr["dh_norm_t"], tr.get("bptt_cut"),
                                 weight_norms=tr.get("dWhh_norm_t"),
                                 cell_norms=tr.get("dc_norm_t"))
        self._set_grad_texts(tr)
        batch = tr.get("batch_size")
        batch_text = f"a batch of {batch} images" if batch else "a batch"
        self.clip_view.set_scope(
            f"This is one image's gradient. Training clips the mean over {batch_text}, which "
            "is smaller: it fires far less often (red marks on the Training tab).")
        self.slider.blockSignals(True)
        self.slider.setRange(1, T)
        self.slider.blockSignals(False)
        self._set_enabled(True)
        k = int(np.argmax(tr["probs"]))
        y = tr["label"]
        names = tr["class_names"]
        ok = k == y
        verdict = (f"<b style='color:{GOOD if ok else BAD}'>"
                   f"{'✓ right' if ok else '✗ wrong'}</b>")
        cue = ""
        if self.cue_rows is not None:
            a, b = self.cue_rows
            cue = (f"<br><span style='color:{CUE}'>Dashed frame: the cue, image rows "
                   f"{a + 1}–{b + 1}; the class is in these rows only.</span>")
        self.prediction_label.setMinimumHeight(0)
        self.prediction_label.setText(
            f"<b>After all {T} steps the model says:</b> {names[k]} ({tr['probs'][k]:.0%})<br>"
            f"<b>True class:</b> {names[y]} &nbsp; {verdict} &nbsp; "
            f"<span style='color:{SUBTLE}'>loss {tr['loss']:.3f}</span>{cue}")
        self.model_label.setText(tr.get("model_text", ""))
        self._fill_class_combo(names)
        self._show_connectivity()
        self.set_frame(2 * T if first else self.frame)

    def _fill_class_combo(self, names: list[str]):
        """'true class', 'predicted class', then every class; the choice is kept."""
        wanted = [("true class", "true"), ("predicted class", "predicted")] + [
            (n, k) for k, n in enumerate(names)]
        have = [(self.conn_class_combo.itemText(i), self.conn_class_combo.itemData(i))
                for i in range(self.conn_class_combo.count())]
        if have == wanted:
            return
        keep = self.conn_class_combo.currentData()
        self.conn_class_combo.blockSignals(True)
        self.conn_class_combo.clear()
        for text, data in wanted:
            self.conn_class_combo.addItem(text, data)
        i = self.conn_class_combo.findData(keep) if keep is not None else 0
        self.conn_class_combo.setCurrentIndex(max(0, i))
        self.conn_class_combo.blockSignals(False)

    def connectivity_class(self) -> int | None:
        """The class whose logit the strip shows for the current trace."""
        tr = self.trace
        if tr is None:
            return None
        choice = self.conn_class_combo.currentData()
        if choice == "true" or choice is None:
            return int(tr["label"])
        if choice == "predicted":
            return int(np.argmax(tr["probs"]))
        return int(choice)

    def _show_connectivity(self, *_):
        tr = self.trace
        con = None if tr is None else tr.get("connectivity")
        k = self.connectivity_class()
        if con is None or k is None:
            self.conn_strip.set_rows(None)
            self.conn_overlay.set_pixels(None)
            self.conn_overlay.setVisible(False)
            return
        self.conn_strip.set_rows(con["rows"][k], self.cue_rows)
        overlay = self.conn_overlay_check.isChecked()
        self.conn_overlay.set_pixels(con["log_pixels"][k] if overlay else None)
        self.conn_overlay.setVisible(overlay)
        names = tr["class_names"]
        self.conn_strip.setToolTip(f"||d logit({names[k]}) / d x|| per image row, log scale: "
                                   "the rows this decision depends on")

    def _feature_caption(self, tr: dict) -> str:
        T = int(tr["T"])
        step_rows, seen = tr["step_rows"], tr["seen_rows"]
        mid = min(T - 1, T // 2)
        (r0, r1), (s0, s1) = step_rows[mid], seen[mid]
        if tr.get("sequence") == "positions":
            (c0, c1), (q0, q1) = tr["step_cols"][mid], tr["seen_cols"][mid]
            return (f"Colour: the mean over the {self.feature_view.channels} channels at each "
                    f"map position; the RNN reads one position (all its channels) a step, row "
                    f"by row. A position covers a {r1 - r0 + 1}x{c1 - c0 + 1} patch but sees "
                    f"{s1 - s0 + 1}x{q1 - q0 + 1} pixels (e.g. step {mid + 1}: rows "
                    f"{r0 + 1}–{r1 + 1}, columns {c0 + 1}–{c1 + 1}; lighter square).")
        return (f"Colour: the mean over the {self.feature_view.channels} channels of the "
                f"second conv block (after ReLU) at each feature-map step and column. A step "
                f"is centred on {r1 - r0 + 1} image rows but sees {s1 - s0 + 1} (e.g. step "
                f"{mid + 1}: rows {r0 + 1}–{r1 + 1}, sees {s0 + 1}–{s1 + 1}; lighter band).")

    def _set_quantities(self, tr: dict):
        """Fill the heatmap and its selector with what this trace holds (h, c, the gates)."""
        quantities = {"h": tr["hidden"]}
        if tr.get("cell") is not None:
            quantities["c"] = tr["cell"]
        for name, values in (tr.get("gates") or {}).items():
            quantities[name] = values
        shown = self.quantity_combo.currentData()
        self.quantity_combo.blockSignals(True)
        self.quantity_combo.clear()
        for name in quantities:
            self.quantity_combo.addItem(QUANTITIES.get(name, (name, ""))[0], name)
        keep = shown if shown in quantities else "h"
        self.quantity_combo.setCurrentIndex(self.quantity_combo.findData(keep))
        self.quantity_combo.blockSignals(False)
        self.quantity_combo.setVisible(len(quantities) > 1)
        self.heatmap.set_quantities(quantities, tr.get("activation") or "tanh", show=keep)
        self._heat_texts(keep)

    def _heat_texts(self, name: str):
        label, sentence = QUANTITIES.get(name, (name, ""))
        # with the selector beside it the title need not repeat what is shown
        self.heat_frame.set_title("Unit x timestep" if self.quantity_combo.count() > 1
                                  else "Hidden state h_t (unit x timestep)")
        self.heat_frame.set_caption(sentence)

    def _quantity_changed(self, index: int):
        name = self.quantity_combo.itemData(index)
        if name is None or name not in self.heatmap.quantities:
            return
        self.heatmap.show_quantity(name)
        self._heat_texts(name)

    def _set_grad_texts(self, tr: dict):
        cell = tr.get("cell_type", "rnn")
        if cell == "lstm":
            self.grad_frame.set_title("Backward pass: ||dl/dh_t|| and ||dl/dc_t|| (log scale)")
            self.grad_frame.set_caption(
                "Triangles: ||dl/dc_t||, multiplied only by f_t per step back; where it stays "
                "level, the forget gate keeps the gradient alive.")
        elif cell == "gru":
            self.grad_frame.set_title("Backward pass: ||dl/dh_t|| (log scale)")
            self.grad_frame.set_caption(
                "Flowing left, the direct path multiplies the gradient by z_t per step: units "
                "with z near 1 pass it on, so a level curve means the gates keep it alive.")
        else:
            self.grad_frame.set_title(
                "Backward pass: ||dl/dh_t|| and each step's part of dW_hh (log scale)")
            self.grad_frame.set_caption(
                "The gradient starts at the last step and flows left; a steady fall to the left "
                "is the vanishing gradient. Squares: what step t adds to dW_hh "
                "(h_t-1ᵀ da_t).")

    def set_frame(self, frame: int):
        """Move to ``frame`` in 1..2T (clamped) and update every view."""
        if self.trace is None:
            return
        T = self.T
        self.frame = int(np.clip(frame, 1, 2 * T))
        forward = self.frame <= T
        t = self.frame if forward else 2 * T + 1 - self.frame
        self.slider.blockSignals(True)
        self.slider.setValue(t)
        self.slider.blockSignals(False)
        for r, on in ((self.forward_radio, forward), (self.backward_radio, not forward)):
            r.blockSignals(True)
            r.setChecked(on)
            r.blockSignals(False)
        self.t_label.setText(f"t = {t} / {T}")
        tr = self.trace
        if forward:
            self.image_view.set_step(t, dim_future=True)
            self.feature_view.set_step(t, dim_future=True)
            self.heatmap.show_until(t)
            self.step_probs.show_until(t)
            self.grad_norm.reveal_from(T + 1)
            self.clip_view.set_record(None)
            self.clip_view.summary.setText("The gradient exists once the backward pass has run "
                                           "(press End, or keep playing).")
        else:
            self.image_view.set_step(t, dim_future=False)
            self.feature_view.set_step(t, dim_future=False)
            self.heatmap.show_until(T)
            self.step_probs.show_until(T)
            self.grad_norm.reveal_from(t)
            if t == 1:
                self.clip_view.set_record(tr.get("clip"))
            else:
                self.clip_view.set_record(None)
                self.clip_view.summary.setText(
                    f"Backward pass at t = {t}: the gradient is still being accumulated.")
        self._narrate(forward, t)

    def _step_words(self, t: int) -> tuple[str, str]:
        """(what step t is called, which image rows it reads) for the narration."""
        tr = self.trace
        r0, r1 = (int(v) for v in tr["step_rows"][t - 1])
        if tr["kind"] != "cnn-rnn":
            return f"step {t}", f"image row {r0 + 1}"
        if tr.get("sequence") == "positions":
            (c0, c1) = (int(v) for v in tr["step_cols"][t - 1])
            mr, mc = int(tr["map_rows"][t - 1][0]), int(tr["map_cols"][t - 1][0])
            return (f"position step {t}",
                    f"map position ({mr + 1}, {mc + 1}) (image rows {r0 + 1}–{r1 + 1}, "
                    f"columns {c0 + 1}–{c1 + 1})")
        s0, s1 = (int(v) for v in tr["seen_rows"][t - 1])
        return (f"feature-map step {t}",
                f"feature-map step {t} (image rows {r0 + 1}–{r1 + 1}, seeing {s0 + 1}–{s1 + 1})")

    def _narrate(self, forward: bool, t: int):
        tr = self.trace
        T = self.T
        names = tr["class_names"]
        step, reads = self._step_words(t)
        cell = tr.get("cell_type", "rnn")
        if forward and cell != "rnn" and tr.get("gates"):
            k, p = self.step_probs.predicted_at(t)
            self.narration.setText(
                f"<b>Forward, {step} of {T}:</b> the {cell.upper()} reads {reads}. "
                f"{self._gate_words(t)} Stopped here it would say <b>{names[k]}</b> "
                f"({p:.0%}).")
            return
        if forward:
            k, p = self.step_probs.predicted_at(t)
            act = tr.get("activation", "tanh")
            self.narration.setText(
                f"<b>Forward, {step} of {T}:</b> the RNN reads {reads} and updates its "
                f"memory h_{t} = {act}(W_xh x_{t} + W_hh h_{t - 1} + b) — column {t} of the "
                f"heatmap. Stopped here it would say <b>{names[k]}</b> ({p:.0%}).")
            return
        g = tr["dh_norm_t"]
        gt = float(g[t - 1])
        gT = float(g[T - 1])
        cut = tr.get("bptt_cut") or 0
        if t <= cut:
            extra = (f"Truncated BPTT stops after {T - cut} steps, so h_{t} gets "
                     "<b>no gradient</b> at all and adds nothing to dW_hh.")
        else:
            extra = f"||dl/dh_{t}|| = {gt:.2e}"
            extra += (f", {gt / gT:.2g}x the gradient at the last step." if gT > 0 and gt > 0
                      else ".")
            if t < T:
                f = float(tr["factor_measured"][t])
                sigma = float(tr["factor_sigma"][t])
                if np.isfinite(f):
                    extra += f" The step back from h_{t + 1} multiplied it by {f:.2f}"
                    extra += (f" (at most σ_max(J) = {sigma:.2f})." if np.isfinite(sigma)
                              else ".")
            if cell != "rnn":
                extra += self._gate_gradient_words(t)
            w = tr.get("dWhh_norm_t")
            w = None if w is None else np.asarray(w, dtype=np.float64)
            if w is not None and w.sum() > 0 and t > 1:
                extra += (f" This step adds {w[t - 1]:.2e} to dW_hh "
                          f"({w[t - 1] / w.sum():.0%} of all steps' parts)." if cell == "rnn"
                          else f" Adds {w[t - 1]:.2e} to dW_hh ({w[t - 1] / w.sum():.0%}).")
        if cell != "rnn":   # more to say per step: the same three lines, fewer words
            self.narration.setText(f"<b>Backward, {step}</b> ({reads}): {extra}")
            return
        self.narration.setText(
            f"<b>Backward, {step}:</b> the error flows back from the output through W_hh "
            f"to h_{t} ({reads}). {extra}")

    def _gate_words(self, t: int) -> str:
        """What the keep gate did at forward step ``t`` (1-based) for this image."""
        tr = self.trace
        gates = tr["gates"]
        if "f" in gates and tr.get("cell") is not None:
            f = np.asarray(gates["f"][t - 1], dtype=np.float64)
            i = np.asarray(gates["i"][t - 1], dtype=np.float64)
            high = float(np.mean(f > 0.9))
            if t == 1:
                return (f"Forget gate mean f_1 = {f.mean():.2f}, but c_0 = 0: there is nothing "
                        f"to keep yet, so c_1 = i_1 ⊙ g_1 (mean input gate {i.mean():.2f}).")
            c_prev = np.asarray(tr["cell"][t - 2], dtype=np.float64)
            before = float(np.linalg.norm(c_prev))
            kept = float(np.linalg.norm(f * c_prev)) / before if before > 0 else float("nan")
            kept_words = (f"c_{t} keeps {kept:.0%} of c_{t - 1} (by norm)"
                          if np.isfinite(kept) else f"c_{t - 1} = 0, nothing to keep")
            return (f"Forget gate: mean f_{t} = {f.mean():.2f}, {high:.0%} of units above 0.9; "
                    f"{kept_words} and writes i ⊙ g on top (mean input gate {i.mean():.2f}).")
        if "z" in gates:
            z = np.asarray(gates["z"][t - 1], dtype=np.float64)
            high = float(np.mean(z > 0.9))
            return (f"Update gate: mean z_{t} = {z.mean():.2f}, {high:.0%} of units above 0.9: "
                    f"h_{t} = (1 − z) n_{t} + z h_{t - 1} keeps {z.mean():.0%} of h_{t - 1} on "
                    f"average and takes the rest from the candidate n_{t}.")
        return ""

    def _gate_gradient_words(self, t: int) -> str:
        """How the keep gate passes the gradient back at step ``t`` (1-based)."""
        tr = self.trace
        gates = tr.get("gates") or {}
        if tr.get("dc_norm_t") is not None and "f" in gates:
            dc = float(tr["dc_norm_t"][t - 1])
            text = f" Cell state: ||dl/dc_{t}|| = {dc:.2e}"
            if t < self.T:
                f = float(np.mean(gates["f"][t]))
                text += f", from c_{t + 1} only ⊙ f_{t + 1} (mean {f:.2f}), no W_hh."
            return text + ("" if t < self.T else ".")
        if "z" in gates and t < self.T:
            z = float(np.mean(gates["z"][t]))
            return (f" The direct path multiplies it by z_{t + 1} (mean {z:.2f}) on top of "
                    "the path through W_hh.")
        return ""

    def _slider_moved(self, t: int):
        if self.trace is None:
            return
        if self.backward_radio.isChecked():
            self.set_frame(2 * self.T + 1 - t)
        else:
            self.set_frame(t)

    def _phase_clicked(self, forward_checked: bool):
        if self.trace is None:
            return
        t = self.slider.value()
        self.set_frame(t if forward_checked else 2 * self.T + 1 - t)

    # --- playback ---------------------------------------------------------------------------
    def _set_playing(self, on: bool):
        if on and self.trace is None:
            self.play_button.setChecked(False)
            return
        self.play_button.setText("Pause" if on else "Play")
        self.play_button.setIcon(icon("pause" if on else "play"))
        if on:
            if self.frame >= 2 * self.T:
                self.set_frame(1)
            self.timer.start(SPEEDS[self.speed_combo.currentIndex()][1])
        else:
            self.timer.stop()

    def _speed_changed(self, i: int):
        if self.timer.isActive():
            self.timer.start(SPEEDS[i][1])

    def _tick(self):
        if self.frame >= 2 * self.T:
            self.play_button.setChecked(False)
            return
        self.set_frame(self.frame + 1)

    def stop_playing(self):
        self.play_button.setChecked(False)
