"""Training configuration: one dataclass, its validation, and the named presets.

``TrainConfig`` holds every choice of a run (model, optimizer, schedule, clipping, data scheme,
budget, seed). ``validate()`` raises :class:`core.errors.ConfigError` with a one-line message
naming the option; ``warnings()`` lists legal but risky combinations (e.g. no clipping with
ReLU). ``PRESETS`` maps a preset name to the fields it sets; ``TrainConfig.from_preset(name,
**overrides)`` builds and validates one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from core.errors import ConfigError
from core.names import (
    ACTIVATIONS,
    CELL_KINDS,
    CLIP_MODES,
    DEFAULT_HIDDEN,
    DTYPES,
    GATED_INITS,
    INITS,
    MODEL_KINDS,
    NORMALIZATIONS,
    OPTIMIZERS,
    PRESETS,
    SCHEDULES,
    SEQUENCES,
    SPLIT_SCHEMES,
    timesteps_of,
)

MAX_BATCH_SIZE = 65536  # one batch of CIFAR images as float32 is then already 0.8 GB


@dataclass
class TrainConfig:
    """Every option of a training run (see ``validate`` for the legal values).

    hidden: None = the model's default (row-rnn 256, cnn-rnn 128). cell: 'rnn' | 'lstm' | 'gru';
    activation applies to 'rnn' only, forget_bias (the bias of the state-keeping gate at
    init: the LSTM's f, the GRU's z) to 'lstm' and 'gru' only. sequence: how the cnn-rnn reads
    its 8 x 8 map, 'rows' (T = 8) or 'positions' (T = 64); the row-rnn reads image rows ('rows'
    only). bptt_window: None = full BPTT, else 1..T (T = 32 row-rnn, 8 or 64 cnn-rnn).
    reg: L2 strength (loss += reg/2 ||W||^2).
    clip_threshold: c for 'value' / 'norm' clipping. epochs: maximum number of epochs.
    patience: evaluations without a better val accuracy before stopping (0 = never stop early).
    eval_every: steps between evaluations (0 = once per epoch). schedule: 'constant' | 'step'
    (x decay every epoch) | 'warmup-exp' (warmup_epochs, then x decay per epoch).
    augment: random crop (padding crop_pad px; 0 = no crop) + horizontal flip.
    scheme / subset: passed to core.datasets.load_data. max_minutes: None = no time budget.
    workers: processes that share each training batch (core.process_parallel; 1 = this one).
    It changes only the order of floating-point sums, so a run is reproducible for a given
    value; the command line defaults to the machine's cores (up to 4), the app keeps 1 so
    the window stays responsive.
    """

    model: str = "row-rnn"
    hidden: int | None = None
    cell: str = "rnn"
    activation: str = "tanh"
    forget_bias: float = 1.0
    sequence: str = "rows"
    init: str = "xavier"
    gain: float = 1.0
    channels: tuple[int, int] = (64, 64)
    bptt_window: int | None = None
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    reg: float = 0.0
    clip: str = "norm"
    clip_threshold: float = 5.0
    batch_size: int = 128
    epochs: int = 10
    patience: int = 0
    eval_every: int = 0
    schedule: str = "constant"
    decay: float = 0.95
    warmup_epochs: float = 1.0
    normalization: str = "per-channel"
    augment: bool = False
    crop_pad: int = 4
    scheme: str = "default"
    subset: int | float | None = None
    max_minutes: float | None = None
    seed: int = 0
    dtype: str = "float32"
    workers: int = 1
    preset: str | None = field(default=None)

    # -- derived values -------------------------------------------------------------------
    @property
    def hidden_dim(self) -> int:
        """The hidden size actually used (resolves hidden=None to the model default)."""
        return int(self.hidden) if self.hidden is not None else DEFAULT_HIDDEN.get(self.model, 128)

    @property
    def timesteps(self) -> int:
        """T of the chosen model and layout (32 row-rnn, 8 or 64 cnn-rnn)."""
        return timesteps_of(self.model, self.sequence)

    @property
    def np_dtype(self):
        return np.dtype(self.dtype)

    def model_kwargs(self) -> dict:
        """Constructor keywords for core.models.RowRNN / CNNRNN (without dtype object)."""
        kw = {
            "hidden_dim": self.hidden_dim,
            "cell": self.cell,
            "activation": self.activation,
            "forget_bias": float(self.forget_bias),
            "init": self.init,
            "gain": float(self.gain),
            "bptt_window": self.bptt_window,
            "dtype": self.np_dtype.type,
            "seed": int(self.seed),
        }
        if self.model == "cnn-rnn":
            kw["channels"] = tuple(int(c) for c in self.channels)
            kw["sequence"] = self.sequence
        return kw

    # -- validation -----------------------------------------------------------------------
    def validate(self) -> TrainConfig:
        """Raise ConfigError (one line, naming the option) on any invalid value; return self."""

        def bad(option: str, value, why: str):
            raise ConfigError(f"{option} = {value!r} is invalid: {why}")

        def choice(option: str, value, allowed):
            if value not in allowed:
                bad(option, value, f"use one of {', '.join(allowed)}")

        def number(value) -> bool:
            return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
                value, bool) and math.isfinite(float(value))

        def integer(value) -> bool:
            return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

        choice("model", self.model, MODEL_KINDS)
        if self.hidden is not None and not (integer(self.hidden) and 1 <= self.hidden <= 4096):
            bad("hidden", self.hidden, "the hidden size must be an integer from 1 to 4096")
        choice("cell", self.cell, CELL_KINDS)
        choice("activation", self.activation, ACTIVATIONS)
        choice("init", self.init, INITS)
        if self.cell != "rnn" and self.activation != "tanh":
            bad("activation", self.activation,
                f"it applies to the vanilla cell only (cell rnn), not {self.cell}")
        if self.cell != "rnn" and self.init not in GATED_INITS:
            bad("init", self.init, f"{self.init} is a vanilla-cell scheme (cell rnn; identity "
                f"with relu is the IRNN); the {self.cell} cell takes {' or '.join(GATED_INITS)}")
        if not number(self.forget_bias):
            bad("forget_bias", self.forget_bias, "the forget bias must be a finite number")
        if self.cell == "rnn" and float(self.forget_bias) != 1.0:
            bad("forget_bias", self.forget_bias, "it applies to the gated cells (lstm, gru) "
                "only, not the vanilla rnn")
        choice("sequence", self.sequence, SEQUENCES)
        if self.model != "cnn-rnn" and self.sequence != "rows":
            bad("sequence", self.sequence, "the row-rnn reads image rows; 'positions' is for "
                "the cnn-rnn")
        if not (number(self.gain) and self.gain > 0):
            bad("gain", self.gain, "the init gain must be a positive number")
        ch = tuple(self.channels) if isinstance(self.channels, (list, tuple)) else None
        if ch is None or len(ch) != 2 or not all(integer(c) and 1 <= c <= 1024 for c in ch):
            bad("channels", self.channels, "give two conv channel counts, e.g. (64, 64)")
        T = timesteps_of(self.model, self.sequence)
        if self.bptt_window is not None and not (
                integer(self.bptt_window) and 1 <= self.bptt_window <= T):
            bad("bptt_window", self.bptt_window,
                f"the BPTT window must be 1..{T} for {self.model} (T = {T}), or None for full BPTT")
        choice("optimizer", self.optimizer, OPTIMIZERS)
        if not (number(self.lr) and self.lr > 0):
            bad("lr", self.lr, "the learning rate must be > 0 (e.g. 0.001)")
        if not (number(self.momentum) and 0 <= self.momentum < 1):
            bad("momentum", self.momentum, "momentum must be in [0, 1)")
        if not (number(self.reg) and self.reg >= 0):
            bad("reg", self.reg, "the L2 strength must be >= 0")
        choice("clip", self.clip, CLIP_MODES)
        if not (number(self.clip_threshold) and self.clip_threshold > 0):
            bad("clip_threshold", self.clip_threshold, "the clip threshold must be > 0")
        if not (integer(self.batch_size) and 1 <= self.batch_size <= MAX_BATCH_SIZE):
            bad("batch_size", self.batch_size,
                f"the batch size must be an integer from 1 to {MAX_BATCH_SIZE:,}")
        if not (integer(self.epochs) and self.epochs >= 1):
            bad("epochs", self.epochs, "the number of epochs must be an integer >= 1")
        if not (integer(self.patience) and self.patience >= 0):
            bad("patience", self.patience, "patience must be an integer >= 0 (0 = off)")
        if not (integer(self.eval_every) and self.eval_every >= 0):
            bad("eval_every", self.eval_every,
                "eval_every must be an integer number of steps >= 0 (0 = once per epoch)")
        choice("schedule", self.schedule, SCHEDULES)
        if not (number(self.decay) and 0 < self.decay <= 1):
            bad("decay", self.decay, "the decay factor must be in (0, 1]")
        if not (number(self.warmup_epochs) and self.warmup_epochs >= 0):
            bad("warmup_epochs", self.warmup_epochs, "the warmup must be >= 0 epochs")
        choice("normalization", self.normalization, NORMALIZATIONS)
        if not isinstance(self.augment, (bool, np.bool_)):
            bad("augment", self.augment, "augment must be true or false")
        if not (integer(self.crop_pad) and 0 <= self.crop_pad <= 16):
            bad("crop_pad", self.crop_pad, "the crop padding must be 0..16 pixels")
        choice("scheme", self.scheme, SPLIT_SCHEMES)
        if self.subset is not None:
            s = self.subset
            ok = (integer(s) and s >= 1) or (number(s) and not integer(s) and 0 < s <= 1)
            if not ok:
                bad("subset", s, "give a number of images >= 1 or a fraction in (0, 1]")
        if self.max_minutes is not None and not (number(self.max_minutes)
                                                 and self.max_minutes > 0):
            bad("max_minutes", self.max_minutes, "the time budget must be > 0 minutes (or None)")
        if not (integer(self.seed) and 0 <= self.seed < 2**32):
            bad("seed", self.seed, "the seed must be an integer in 0..2**32-1")
        choice("dtype", self.dtype, DTYPES)
        if not (integer(self.workers) and 1 <= self.workers <= 64):
            bad("workers", self.workers, "the number of training threads must be 1..64")
        return self

    def warnings(self) -> list[str]:
        """Legal but risky combinations, one line each (for the CLI / GUI to show)."""
        out = []
        if self.init == "identity" and self.activation == "tanh":
            out.append("init 'identity' is meant for relu (IRNN); with tanh it trains but "
                       "starts with saturating memory")
        if self.activation == "relu" and self.clip == "none":
            out.append("relu without clipping often explodes; consider --clip norm")
        if self.init == "normal" and self.gain > 1.5:
            out.append(f"init gain {self.gain} makes W_hh expand the state every step: "
                       "expect exploding gradients")
        if self.optimizer == "adam" and self.lr > 0.01:
            out.append(f"lr {self.lr} is high for Adam (1e-3 is usual)")
        return out

    # -- conversions ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-able dict of every field (channels as a list)."""
        d = dataclasses.asdict(self)
        d["channels"] = [int(c) for c in self.channels]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ConfigError. Validates."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown training option(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(names))}")
        d = dict(d)
        if "channels" in d and isinstance(d["channels"], list):
            d["channels"] = tuple(d["channels"])
        return cls(**d).validate()

    @classmethod
    def from_preset(cls, name: str, **overrides) -> TrainConfig:
        """The preset's fields, then ``overrides`` (applied as given, None included); validated."""
        if name not in PRESETS:
            raise ConfigError(f"preset {name!r} is unknown; use one of {', '.join(PRESETS)}")
        d = {**PRESETS[name], "preset": name, **overrides}
        return cls.from_dict(d)

