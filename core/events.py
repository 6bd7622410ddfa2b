"""The events :class:`core.trainer.Trainer` reports, one TypedDict per ``type``.

Each event goes to the trainer's listener and out of ``Trainer.events()``; the app's worker
forwards them to the GUI thread, the command line prints them. All values are plain Python
numbers/strings/bools except ``StepEvent.dh_norm`` (a fresh float32 array) and
``StepEvent.clip`` (``core.clipping.ClipRecord.to_dict()``).

Letters: T = timesteps of the model (32 row-rnn, 8 cnn-rnn).
"""

from __future__ import annotations

from typing import Literal, TypedDict

import numpy as np


class StepEvent(TypedDict):
    """One parameter update."""

    type: Literal["step"]
    step: int             # updates done, this one included (1 = the first)
    epoch: float          # epochs done, with the fraction of the current one
    loss: float           # the batch's mean cross-entropy (+ L2), before the update
    acc: float | None     # the batch's accuracy (None if the model gave no probabilities)
    lr: float             # the learning rate used for this update
    images_per_s: float   # smoothed training speed
    dh_norm: np.ndarray   # float32 (T,): mean per-sample ||dL/dh_t|| (t = 0 first row read)
    clip: dict            # ClipRecord.to_dict(): mode, threshold, norm_before/after, fired...
    seconds: float        # training time so far, pauses excluded


class EvalEvent(TypedDict):
    """An evaluation (every ``eval_every`` steps, or once per epoch)."""

    type: Literal["eval"]
    step: int
    epoch: float
    train_loss: float | None  # on a fixed random subset of the training split
    train_acc: float | None
    val_loss: float | None    # None when the validation split is empty
    val_acc: float | None
    best: bool                # the best val accuracy so far (its parameters are kept)


class CheckpointEvent(TypedDict):
    """A checkpoint was written (after an evaluation, or at the end)."""

    type: Literal["checkpoint"]
    path: str
    kind: Literal["best", "last"]


class FinishedEvent(TypedDict):
    """The run ended (always the last event)."""

    type: Literal["finished"]
    reason: Literal["completed", "early_stopped", "time_budget", "cancelled", "diverged"]
    message: str               # one line saying what happened (and what to try, if diverged)
    step: int
    epoch: float
    best_val_acc: float | None
    seconds: float             # absent from the copy kept in history['finished']


Event = StepEvent | EvalEvent | CheckpointEvent | FinishedEvent
