"""Every named choice of a run, written once: the command line, the engine and the app read
them from here.

Plain Python only (no NumPy, nothing from the rest of core), so ``python main.py --help``
builds its argument parser without loading the engine. A tuple lists names in the order
they are offered; a dict maps each name to the label the app shows (its keys are the names,
so ``name in OPTIMIZERS`` and ``", ".join(OPTIMIZERS)`` work as for a tuple).
"""

from __future__ import annotations

# Model kinds -> label. core.models.MODELS maps the same kinds to their classes.
MODEL_KINDS = {"row-rnn": "row-RNN (32 rows → RNN)",
               "cnn-rnn": "CNN+RNN (conv → feature map → RNN)"}
# Timesteps T per kind: the row-RNN reads the 32 image rows, the CNN+RNN the 8 rows of its
# 8 x 8 conv feature map.
TIMESTEPS = {"row-rnn": 32, "cnn-rnn": 8}
DEFAULT_HIDDEN = {"row-rnn": 256, "cnn-rnn": 128}

# Recurrent cells -> label (core.cells.CELLS maps the same names to their layer functions).
CELL_KINDS = {"rnn": "vanilla RNN", "lstm": "LSTM", "gru": "GRU"}
# How the CNN+RNN reads its 8 x 8 feature map -> label: 8 map rows, or 64 map positions in
# raster order. The row-RNN always reads image rows.
SEQUENCES = {"rows": "8 map rows", "positions": "64 map positions"}
SEQUENCE_TIMESTEPS = {"rows": 8, "positions": 64}  # T of the CNN+RNN per sequence layout


def timesteps_of(kind: str, sequence: str = "rows") -> int:
    """T of model ``kind`` reading its input in layout ``sequence`` (KeyError if unknown)."""
    if kind == "cnn-rnn":
        return SEQUENCE_TIMESTEPS[sequence]
    return TIMESTEPS[kind]


ACTIVATIONS = ("tanh", "relu")
INITS = ("xavier", "orthogonal", "identity", "normal")  # for W_hh, see core.init
GATED_INITS = ("xavier", "orthogonal")  # for the gated cells' W_hh blocks (identity/normal
                                        # stay the vanilla cell's)
DTYPES = ("float32", "float64")

OPTIMIZERS = {"adam": "Adam", "momentum": "SGD + momentum", "nesterov": "SGD + Nesterov",
              "sgd": "SGD"}
CLIP_MODES = {"norm": "global norm", "value": "element value", "none": "off"}
SCHEDULES = ("constant", "step", "warmup-exp")

NORMALIZATIONS = ("per-channel", "per-pixel", "unit")
SPLIT_SCHEMES = ("default", "seed000", "seed001")

# Presets: the TrainConfig fields each one sets on top of the defaults.
PRESETS: dict[str, dict] = {
    # seed 000: row-RNN H=256, SGD lr 2e-3, x0.95/epoch, elementwise clip 5, reg 1e-4,
    # per-pixel mean/std, batch 128, up to 200 epochs with patience 40, 49k/1k/1k split.
    "seed000": {
        "model": "row-rnn", "hidden": 256, "activation": "tanh", "init": "xavier",
        "optimizer": "sgd", "lr": 2e-3, "reg": 1e-4, "clip": "value", "clip_threshold": 5.0,
        "batch_size": 128, "epochs": 200, "patience": 40, "eval_every": 0,
        "schedule": "step", "decay": 0.95, "normalization": "per-pixel", "augment": False,
        "scheme": "seed000",
    },
    # seed 001: CNN+RNN conv 64/64, H=128, weight decay 5e-4 (as L2), lr 0.02 (SGD momentum
    # 0.9), batch 256, 15 epochs, 1-epoch warmup then x0.9/epoch, global-norm clip 5, [0,1]
    # scaling, crop+flip, 40% subset split 9:1, one hour budget (the seed's --max-hours 1).
    "seed001": {
        "model": "cnn-rnn", "channels": (64, 64), "hidden": 128, "activation": "tanh",
        "init": "xavier", "optimizer": "momentum", "momentum": 0.9, "lr": 0.02, "reg": 5e-4,
        "clip": "norm", "clip_threshold": 5.0, "batch_size": 256, "epochs": 15, "patience": 0,
        "eval_every": 0, "schedule": "warmup-exp", "warmup_epochs": 1.0, "decay": 0.9,
        "normalization": "unit", "augment": True, "crop_pad": 4, "scheme": "seed001",
        "max_minutes": 60.0,
    },
    # quick: a small row-RNN on 20k images, stopped by a one-minute budget on a busy machine.
    "quick": {
        "model": "row-rnn", "hidden": 128, "activation": "tanh", "init": "orthogonal",
        "optimizer": "adam", "lr": 2e-3, "reg": 0.0, "clip": "norm", "clip_threshold": 5.0,
        "batch_size": 128, "epochs": 20, "patience": 0, "eval_every": 0,
        "schedule": "step", "decay": 0.9, "normalization": "per-channel", "augment": False,
        "scheme": "default", "subset": 20000, "max_minutes": 1.0,
    },
    # best-row: the strongest row-RNN found for a 30-minute budget. Adam at 3e-4 (1e-3 gave
    # loss spikes), H=256 (384 cost twice the time for no gain per epoch), horizontal flips
    # and 2-pixel crops against overfitting (the crops lifted the row-LSTM by 3.7 points), 250
    # epochs with a slow x0.985/epoch decay (26 minutes on one core); no early stop (the
    # best-val parameters are restored at the end).
    "best-row": {
        "model": "row-rnn", "hidden": 256, "activation": "tanh", "init": "orthogonal",
        "optimizer": "adam", "lr": 3e-4, "reg": 1e-5, "clip": "norm", "clip_threshold": 5.0,
        "batch_size": 128, "epochs": 250, "patience": 0, "eval_every": 0,
        "schedule": "step", "decay": 0.985, "normalization": "per-channel", "augment": True,
        "crop_pad": 2, "scheme": "default", "max_minutes": 30.0,
    },
    # best-cnn: the strongest CNN+RNN found for 30 minutes on 2 cores. Nesterov SGD 0.03
    # after a one-epoch warmup, then x0.95 per epoch over 70 epochs (the rate anneals ~35x),
    # which fits the budget on two cores; crop+flip and L2 5e-4 against overfitting; H=256
    # for a wider summary of the 8 rows.
    "best-cnn": {
        "model": "cnn-rnn", "channels": (64, 64), "hidden": 256, "activation": "tanh",
        "init": "orthogonal", "optimizer": "nesterov", "momentum": 0.9, "lr": 0.03,
        "reg": 5e-4, "clip": "norm", "clip_threshold": 5.0, "batch_size": 128, "epochs": 70,
        "patience": 0, "eval_every": 0, "schedule": "warmup-exp", "warmup_epochs": 1.0,
        "decay": 0.95, "normalization": "per-channel", "augment": True, "crop_pad": 4,
        "scheme": "default", "max_minutes": 30.0,
    },
    # cnn-positions: the CNN+RNN reading its 8x8 feature map as 64 positions (seed 001's
    # unrolling), the vanilla cell by default; `--cell lstm` for the gated comparison.
    # Nesterov 0.03, a one-epoch warmup, x0.92 per epoch over 40 epochs, H = 128: at T = 64
    # the vanilla cell's gradient vanishes long before the first positions.
    "cnn-positions": {
        "model": "cnn-rnn", "sequence": "positions", "channels": (64, 64), "hidden": 128,
        "activation": "tanh", "init": "orthogonal", "optimizer": "nesterov", "momentum": 0.9,
        "lr": 0.03, "reg": 5e-4, "clip": "norm", "clip_threshold": 5.0, "batch_size": 128,
        "epochs": 40, "patience": 0, "eval_every": 0, "schedule": "warmup-exp",
        "warmup_epochs": 1.0, "decay": 0.92, "normalization": "per-channel", "augment": True,
        "crop_pad": 4, "scheme": "default", "max_minutes": 30.0,
    },
    # irnn: IRNN (Le et al. 2015) - ReLU units, W_hh = I, biases 0, a small learning rate and
    # tight clipping so the identity's long memory is not blown up by the first steps.
    "irnn": {
        "model": "row-rnn", "cell": "rnn", "hidden": 256, "activation": "relu",
        "init": "identity", "gain": 1.0, "optimizer": "adam", "lr": 1e-4, "reg": 0.0,
        "clip": "norm", "clip_threshold": 1.0, "batch_size": 128, "epochs": 60, "patience": 0,
        "eval_every": 0, "schedule": "constant", "normalization": "per-channel",
        "augment": False, "scheme": "default", "max_minutes": 30.0,
    },
    # best-row-lstm: a gated row reader for the same 30 minutes as best-row. H = 256, Adam
    # 1e-3 with a x0.95/epoch decay over 40 epochs, the forget bias 1 (keep c_t at first),
    # orthogonal W_hh blocks, flips and 2-pixel crops: without the crops an LSTM at H = 128
    # overfitted from epoch 14 (57.8% test); with them H = 128 reached 61.5% and H = 256
    # 64.0%, the better validation accuracy of the two, in 17 minutes on one core.
    "best-row-lstm": {
        "model": "row-rnn", "cell": "lstm", "forget_bias": 1.0, "hidden": 256,
        "init": "orthogonal", "optimizer": "adam", "lr": 1e-3, "reg": 1e-5, "clip": "norm",
        "clip_threshold": 5.0, "batch_size": 128, "epochs": 40, "patience": 0,
        "eval_every": 0, "schedule": "step", "decay": 0.95, "normalization": "per-channel",
        "augment": True, "crop_pad": 2, "scheme": "default", "max_minutes": 30.0,
    },
}
