"""Model and training settings, validated in place by core.config.TrainConfig.

Every change rebuilds a TrainConfig; an invalid combination is explained under the form (the
ConfigError's one line) and ``validityChanged(False)`` disables Start. Risky but legal choices
(TrainConfig.warnings) are shown in orange.

The cell (vanilla RNN, LSTM, GRU) and, for the CNN+RNN, how it unrolls its feature map (8 rows
or 64 positions) are chosen here too; the activation applies to the vanilla cell only and is
disabled for the others, the sequence choice to the CNN+RNN only.
"""

from __future__ import annotations

import dataclasses

from PySide6 import QtCore, QtWidgets

from app.settings_scroll import shrinkable_combos
from app.train_worker import APP_WORKERS
from core.config import TrainConfig
from core.errors import ConfigError
from core.names import (
    ACTIVATIONS,
    CELL_KINDS,
    CLIP_MODES,
    DEFAULT_HIDDEN,
    INITS,
    MODEL_KINDS,
    OPTIMIZERS,
    PRESETS,
    SEQUENCES,
    TIMESTEPS,
)

# What the app starts with: small and quick, so a first run shows something within seconds.
APP_DEFAULTS = {
    "model": "row-rnn", "hidden": 64, "activation": "tanh", "init": "orthogonal",
    "optimizer": "adam", "lr": 2e-3, "clip": "norm", "clip_threshold": 5.0, "batch_size": 64,
    "epochs": 5, "eval_every": 25, "seed": 0,
}

# The IRNN of Le, Jaitly & Hinton (2015): a vanilla ReLU cell whose W_hh starts as the identity,
# so the state (and the gradient) is carried unchanged at first. Offered as a preset here when
# the command line has none of that name; small steps and clipping keep ReLU from exploding.
IRNN_LABEL = "IRNN (Le et al. 2015)"
APP_PRESETS = {
    "irnn": {
        "model": "row-rnn", "hidden": 128, "cell": "rnn", "activation": "relu",
        "init": "identity", "gain": 1.0, "optimizer": "adam", "lr": 1e-4, "clip": "norm",
        "clip_threshold": 1.0, "batch_size": 64, "epochs": 5, "eval_every": 25, "seed": 0,
    },
}
TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def timesteps_of(model: str, sequence: str = "rows") -> int:
    """T of ``model`` read as ``sequence`` (the CNN+RNN's 64 positions, else core.names)."""
    if model == "cnn-rnn" and sequence == "positions":
        return 64
    return TIMESTEPS[model]


def _preset_fields(name: str) -> dict:
    """The fields a preset sets, without any this build's TrainConfig does not have."""
    base = dict(PRESETS[name]) if name in PRESETS else dict(APP_PRESETS[name])
    return {k: v for k, v in base.items() if k in TRAIN_FIELDS}


class ModelPanel(QtWidgets.QGroupBox):
    validityChanged = QtCore.Signal(bool)
    configChanged = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__("Model and training", parent)
        self.setObjectName("modelPanel")
        self._base: dict = {}
        self._loading = False
        self.preset_combo = QtWidgets.QComboBox()
        self.preset_combo.setObjectName("presetSelect")
        self.preset_combo.addItem("app default (small, fast)", "")
        for name in PRESETS:
            self.preset_combo.addItem(IRNN_LABEL if name == "irnn" else f"preset: {name}", name)
        for name in APP_PRESETS:
            if name not in PRESETS:
                self.preset_combo.addItem(IRNN_LABEL, name)
        self.preset_combo.setToolTip("The presets of `python main.py train --preset NAME`")
        self.model_combo = QtWidgets.QComboBox()
        self.model_combo.setObjectName("modelSelect")
        for k, v in MODEL_KINDS.items():
            self.model_combo.addItem(v, k)
        self.cell_combo = self._combo("cellCombo", CELL_KINDS)
        self.cell_combo.setToolTip("The recurrent cell: the vanilla RNN, or the gated LSTM or "
                                   "GRU whose gates keep the gradient from vanishing")
        self.sequence_combo = self._combo("sequenceCombo", SEQUENCES)
        self.sequence_combo.setToolTip("CNN+RNN: read the 8 x 8 feature map as 8 rows, or as "
                                       "64 positions one at a time (where it vanishes too)")
        self.hidden_spin = QtWidgets.QSpinBox()
        self.hidden_spin.setObjectName("hiddenSpin")
        self.hidden_spin.setRange(1, 4096)
        self.activation_combo = self._combo("activationSelect", {a: a for a in ACTIVATIONS})
        self.init_combo = self._combo("initSelect", {i: i for i in INITS})
        self.gain_spin = QtWidgets.QDoubleSpinBox()
        self.gain_spin.setObjectName("gainSpin")
        self.gain_spin.setRange(0.01, 10.0)
        self.gain_spin.setSingleStep(0.1)
        self.clip_combo = self._combo("clipSelect", CLIP_MODES)
        self.clip_spin = QtWidgets.QDoubleSpinBox()
        self.clip_spin.setObjectName("clipThreshold")
        self.clip_spin.setRange(0.0, 1e6)
        self.clip_spin.setDecimals(3)
        self.optimizer_combo = self._combo("optimizerSelect", OPTIMIZERS)
        self.lr_edit = QtWidgets.QLineEdit()
        self.lr_edit.setObjectName("lrEdit")
        self.lr_edit.setToolTip("Learning rate, e.g. 0.001 or 1e-3")
        self.batch_spin = QtWidgets.QSpinBox()
        self.batch_spin.setObjectName("batchSpin")
        self.batch_spin.setRange(1, 4096)
        self.epochs_spin = QtWidgets.QSpinBox()
        self.epochs_spin.setObjectName("epochsSpin")
        self.epochs_spin.setRange(1, 1000)
        self.bptt_spin = QtWidgets.QSpinBox()
        self.bptt_spin.setObjectName("bpttSpin")
        self.bptt_spin.setRange(0, 32)
        self.bptt_spin.setSpecialValueText("full")
        self.bptt_spin.setToolTip("Truncated BPTT: only the last N timesteps get gradient "
                                  "(full = all of them)")
        self.eval_spin = QtWidgets.QSpinBox()
        self.eval_spin.setObjectName("evalSpin")
        self.eval_spin.setRange(0, 100000)
        self.eval_spin.setSpecialValueText("each epoch")
        self.eval_spin.setToolTip("Measure validation loss/accuracy every N steps")
        self.seed_spin = QtWidgets.QSpinBox()
        self.seed_spin.setObjectName("seedSpin")
        self.seed_spin.setRange(0, 2**31 - 1)
        self.error_label = QtWidgets.QLabel("")
        self.error_label.setObjectName("configError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c62828;")
        self.warning_label = QtWidgets.QLabel("")
        self.warning_label.setObjectName("configWarning")
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #e65100;")

        form = QtWidgets.QFormLayout(self)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.AllNonFixedFieldsGrow)
        # in a narrow dock a label goes above its field instead of pushing it out of view
        form.setRowWrapPolicy(QtWidgets.QFormLayout.WrapLongRows)
        form.addRow("Preset", self.preset_combo)
        form.addRow("Model", self.model_combo)
        pair = QtWidgets.QHBoxLayout()
        pair.addWidget(self.cell_combo)
        pair.addWidget(self.sequence_combo)
        form.addRow("Cell, sequence", pair)
        form.addRow("Hidden size H", self.hidden_spin)
        pair = QtWidgets.QHBoxLayout()
        pair.addWidget(self.activation_combo)
        pair.addWidget(self.init_combo)
        form.addRow("Activation, init", pair)
        form.addRow("Init gain", self.gain_spin)
        pair = QtWidgets.QHBoxLayout()
        pair.addWidget(self.clip_combo)
        pair.addWidget(self.clip_spin)
        form.addRow("Clipping, threshold", pair)
        pair = QtWidgets.QHBoxLayout()
        pair.addWidget(self.optimizer_combo)
        pair.addWidget(self.lr_edit)
        form.addRow("Optimizer, lr", pair)
        pair = QtWidgets.QHBoxLayout()
        pair.addWidget(self.batch_spin)
        pair.addWidget(QtWidgets.QLabel("epochs"))
        pair.addWidget(self.epochs_spin)
        form.addRow("Batch size", pair)
        form.addRow("BPTT window", self.bptt_spin)
        form.addRow("Evaluate every", self.eval_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow(self.error_label)
        form.addRow(self.warning_label)

        self.apply_preset("")
        self.preset_combo.currentIndexChanged.connect(
            lambda i: self.apply_preset(self.preset_combo.itemData(i)))
        self.model_combo.currentIndexChanged.connect(self._model_changed)
        for w in (self.hidden_spin, self.gain_spin, self.clip_spin, self.batch_spin,
                  self.epochs_spin, self.bptt_spin, self.eval_spin, self.seed_spin):
            w.valueChanged.connect(self._changed)
        for w in (self.activation_combo, self.init_combo, self.clip_combo, self.optimizer_combo):
            w.currentIndexChanged.connect(self._changed)
        self.cell_combo.currentIndexChanged.connect(self._structure_changed)
        self.sequence_combo.currentIndexChanged.connect(self._structure_changed)
        self.lr_edit.textChanged.connect(self._changed)
        # combos may get narrower than their longest item, so the form fits a laptop screen
        shrinkable_combos(self, chars=6)

    def _combo(self, name: str, items: dict) -> QtWidgets.QComboBox:
        c = QtWidgets.QComboBox()
        c.setObjectName(name)
        for k, v in items.items():
            c.addItem(v, k)
        return c

    @staticmethod
    def _select(combo: QtWidgets.QComboBox, key):
        i = combo.findData(key)
        if i >= 0:
            combo.setCurrentIndex(i)

    def apply_preset(self, name: str):
        """Fill the form from a CLI preset, the app's IRNN ('irnn') or '' (the app's small
        default)."""
        base = _preset_fields(name) if name else dict(APP_DEFAULTS)
        self.set_config(TrainConfig(**{**base, "preset": name or None}))

    def set_config(self, cfg: TrainConfig):
        """Show ``cfg`` in the form (used by presets and by loaded checkpoints)."""
        self._loading = True
        self._base = cfg.to_dict()
        self.preset_combo.blockSignals(True)   # show the preset, do not re-apply it
        self._select(self.preset_combo, cfg.preset or "")
        self.preset_combo.blockSignals(False)
        self._select(self.model_combo, cfg.model)
        self._select(self.cell_combo, getattr(cfg, "cell", "rnn"))
        self._select(self.sequence_combo, getattr(cfg, "sequence", "rows"))
        self.hidden_spin.setValue(cfg.hidden_dim)
        self._select(self.activation_combo, cfg.activation)
        self._select(self.init_combo, cfg.init)
        self.gain_spin.setValue(cfg.gain)
        self._select(self.clip_combo, cfg.clip)
        self.clip_spin.setValue(cfg.clip_threshold)
        self._select(self.optimizer_combo, cfg.optimizer)
        self.lr_edit.setText(f"{cfg.lr:g}")
        self.batch_spin.setValue(cfg.batch_size)
        self.epochs_spin.setValue(cfg.epochs)
        self.bptt_spin.setMaximum(self._timesteps())
        self.bptt_spin.setValue(cfg.bptt_window or 0)
        self.eval_spin.setValue(cfg.eval_every)
        self.seed_spin.setValue(cfg.seed)
        self._update_enabled()
        self._loading = False
        self._changed()

    def _timesteps(self) -> int:
        return timesteps_of(self.model_combo.currentData(), self.sequence_combo.currentData())

    def _update_enabled(self, editable: bool = True):
        """Activation: the vanilla cell only; sequence: the CNN+RNN only."""
        self.activation_combo.setEnabled(editable and self.cell_combo.currentData() == "rnn")
        self.sequence_combo.setEnabled(editable and self.model_combo.currentData() == "cnn-rnn")

    def _model_changed(self):
        if self._loading:
            return
        model = self.model_combo.currentData()
        self._loading = True
        self.hidden_spin.setValue(DEFAULT_HIDDEN[model] if self._base.get("preset") else
                                  self.hidden_spin.value())
        self.bptt_spin.setMaximum(self._timesteps())
        self._update_enabled()
        self._loading = False
        self._changed()

    def _structure_changed(self, *_):
        """The cell or the sequence changed: which options apply, and T."""
        if self._loading:
            return
        self._loading = True
        self.bptt_spin.setMaximum(self._timesteps())
        self._update_enabled()
        self._loading = False
        self._changed()

    def _changed(self, *_):
        if self._loading:
            return
        try:
            cfg = self.config()
        except ConfigError as exc:
            self.error_label.setText(str(exc))
            self.warning_label.setText("")
            self.validityChanged.emit(False)
            return
        self.error_label.setText("")
        self.warning_label.setText("\n".join(cfg.warnings()))
        self.validityChanged.emit(True)
        self.configChanged.emit()

    def is_valid(self) -> bool:
        try:
            self.config()
        except ConfigError:
            return False
        return True

    def config(self) -> TrainConfig:
        """The TrainConfig of the form (raises ConfigError with a one-line message)."""
        text = self.lr_edit.text().strip()
        try:
            lr = float(text)
        except ValueError:
            raise ConfigError(f"learning rate {text!r} is not a number; "
                              "write e.g. 0.001 or 1e-3") from None
        d = dict(self._base)
        d.pop("subset", None)       # the data panel decides what is loaded
        d.update({
            "model": self.model_combo.currentData(),
            "hidden": self.hidden_spin.value(),
            "activation": self.activation_combo.currentData(),
            "init": self.init_combo.currentData(),
            "gain": self.gain_spin.value(),
            "clip": self.clip_combo.currentData(),
            "clip_threshold": self.clip_spin.value(),
            "optimizer": self.optimizer_combo.currentData(),
            "lr": lr,
            "batch_size": self.batch_spin.value(),
            "epochs": self.epochs_spin.value(),
            "bptt_window": self.bptt_spin.value() or None,
            "eval_every": self.eval_spin.value(),
            "seed": self.seed_spin.value(),
            "max_minutes": None if not self._base.get("preset") else self._base.get(
                "max_minutes"),
        })
        cnn = d["model"] == "cnn-rnn"
        for name, value, default in (
                ("cell", self.cell_combo.currentData(), "rnn"),
                ("sequence", self.sequence_combo.currentData() if cnn else "rows", "rows")):
            if name in TRAIN_FIELDS:
                d[name] = value
            elif value != default:
                raise ConfigError(f"{name} {value!r} is not available in this build "
                                  f"(its training options have no '{name}')")
        if "workers" in d:
            d["workers"] = APP_WORKERS  # one training thread: the window stays responsive
        return TrainConfig.from_dict(d)

    def set_editable(self, on: bool):
        """Lock the form while a run trains (its config is fixed)."""
        for w in self.findChildren(QtWidgets.QWidget):
            if isinstance(w, (QtWidgets.QComboBox, QtWidgets.QAbstractSpinBox,
                              QtWidgets.QLineEdit)):
                w.setEnabled(on)
        self._update_enabled(on)
