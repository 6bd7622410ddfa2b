"""The training loop shared by the command line and the app's worker thread.

A :class:`Trainer` drives a model through epochs of shuffled mini-batches (seeded
``np.random.Generator``; augmentation where configured), clips, updates, evaluates on the
validation split every ``eval_every`` steps (0 = per epoch), stops early after ``patience``
evaluations without a better val accuracy (restoring the best parameters), stops on a time
budget, on ``cancel()``, or when the run diverges: a loss, gradient norm or gradient through
time that becomes NaN/inf, or a loss far above the chance level ln K (more than
``DIVERGED_LOSS_FACTOR`` times it); the last good parameters are then restored (and written to
``last.npz`` if no checkpoint of this run exists yet). It reports events (the TypedDicts of
:mod:`core.events`) to a listener callback and/or through the :meth:`Trainer.events`
generator; ``run()`` exhausts it.

Resuming from ``last.npz`` continues exactly: the checkpoint holds the parameters, optimizer
state, RNG state, the current epoch's permutation and position, the best parameters so far
and the history, so an interrupted + resumed run has the same history as an uninterrupted one.

Letters: N = training images, B = batch size, T = timesteps, K = classes.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from core.checkpoint import (
    Checkpoint,
    check_dataset,
    load_checkpoint,
    save_checkpoint,
    validate_training_state,
)
from core.clipping import clip_gradients
from core.config import TrainConfig
from core.datasets import Normalizer, augment_batch
from core.errors import CheckpointError, ConfigError, DataError
from core.events import CheckpointEvent, EvalEvent, Event, FinishedEvent, StepEvent
from core.layers import softmax_cross_entropy_terms
from core.models import build_model
from core.optim import make_optimizer
from core.process_parallel import BatchLoss
from core.schedules import make_schedule

EVAL_TRAIN_SUBSET = 1000   # train loss/acc at each evaluation: a fixed random subset this big
# a loss this many times the chance level ln K (46 for 10 classes) means the run has diverged:
# it is reached only when the parameters have blown up (a trained model scores ~1, chance 2.3)
DIVERGED_LOSS_FACTOR = 20.0
EVAL_BATCH = 500           # images per forward pass when evaluating
DH_ROWS_PER_EPOCH = 25     # about this many dh_norm rows per epoch are kept in the history
RESUMABLE_OVERRIDES = ("epochs", "max_minutes", "patience", "eval_every", "workers")
_SAME_DIR = object()


def build_model_from_config(config: TrainConfig):
    """A fresh model of kind ``config.model`` from the registry ``core.models.MODELS``
    (seeded with config.seed); ConfigError for a kind it does not hold."""
    return build_model({"kind": config.model, **config.model_kwargs()})


def _clean(x):
    """float(x) if finite, else None (keeps history strict JSON)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


class Trainer:
    """Stepwise training engine (see module docstring).

    Public state: model, normalizer, optimizer, schedule, history (JSON-able dict), step (updates
    done), epoch (float: epochs done incl. the fraction of the current one), best_val_acc,
    finished (the 'finished' event once done, else None), seconds (training time, pauses
    excluded).
    """

    def __init__(self, config: TrainConfig, splits, model=None,
                 listener: Callable[[Event], None] | None = None,
                 checkpoint_dir: Path | str | None = None,
                 normalizer: Normalizer | None = None, parent_part: bool = True):
        """normalizer: a fitted Normalizer to use (a checkpoint's, see resume_from); None fits
        one of ``config.normalization`` on the training split. parent_part: with ``workers``
        > 1, this process computes one part of each batch itself and ``workers`` - 1 worker
        processes the others (faster on an idle machine: the parent would otherwise wait);
        False leaves every part to ``workers`` processes (the app: the window keeps its core).
        The result is the same either way."""
        self.config = config.validate()
        self.splits = splits
        self.listener = listener
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        n = len(splits.train.labels)
        if n == 0:
            raise DataError("the training split is empty; choose a larger subset")
        self.n_train = n
        if model is None:
            model = build_model_from_config(config)
        kind = getattr(model, "kind", None)
        if kind is not None and kind != config.model:
            raise ConfigError(f"model = {config.model!r} does not match the given {kind} model")
        self.model = model
        self.parent_part = bool(parent_part)
        # workers > 1: processes, see close()
        self._loss = BatchLoss(model, config.workers, parent_part=self.parent_part)
        self.dtype = config.np_dtype
        if normalizer is None:
            normalizer = Normalizer(config.normalization).fit(splits.train.images)
        elif not normalizer.fitted:
            raise ConfigError(f"the given Normalizer('{normalizer.kind}') is not fitted")
        self.normalizer = normalizer
        self.optimizer = make_optimizer(config.optimizer, config.lr, momentum=config.momentum)
        self.schedule = make_schedule(config.schedule, config.lr, factor=config.decay,
                                      warmup_epochs=config.warmup_epochs)
        self.rng = np.random.default_rng(config.seed)
        self.steps_per_epoch = -(-n // config.batch_size)
        self._dh_stride = max(1, self.steps_per_epoch // DH_ROWS_PER_EPOCH)
        sub_rng = np.random.default_rng([config.seed, 1])
        self._train_eval_idx = np.sort(sub_rng.choice(n, min(n, EVAL_TRAIN_SUBSET),
                                                      replace=False))
        # loop position
        self.step = 0
        self.epoch_index = 0
        self.pos = 0
        self._perm: np.ndarray | None = None
        self.seconds = 0.0
        self._last_eval_step = 0
        self._eval_pending = False  # an evaluation is due (set after the step that made it so)
        self._last_saved_step = -1
        # best / last good parameters
        self.best_val_acc: float | None = None
        self.best_step: int | None = None
        self._best_params: dict[str, np.ndarray] | None = None
        self._evals_since_best = 0
        self._last_good = {k: v.copy() for k, v in model.params.items()}
        self._last_good_step = 0
        n_classes = len(getattr(splits.train, "class_names", None) or ()) or 10
        self.chance_loss = math.log(n_classes)
        self._diverged = ""  # what diverged, set by an evaluation that found it
        self._diverged_at: int | None = None  # ... at this step (else: the step being taken)
        # control
        self._running = threading.Event()
        self._running.set()
        self._cancel = threading.Event()
        self._sec_per_image: float | None = None
        self.finished: dict | None = None
        self.history: dict = {
            "config": config.to_dict(),
            "data": self._data_info(),
            "steps_per_epoch": self.steps_per_epoch,
            "steps": [],
            "evals": [],
            "dh_norm": [],
            "finished": None,
        }

    # -- control (thread-safe) ----------------------------------------------------------------
    def pause(self) -> None:
        """Hold the loop before its next step (the current step finishes)."""
        self._running.clear()

    def resume(self) -> None:
        """Continue after :meth:`pause`."""
        self._running.set()

    def cancel(self) -> None:
        """Stop before the next step with reason 'cancelled' (also wakes a paused loop)."""
        self._cancel.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def epoch(self) -> float:
        """Epochs done, with the fraction of the current epoch."""
        return self.epoch_index + self.pos / self.n_train

    # -- running ----------------------------------------------------------------------------
    def run(self) -> FinishedEvent:
        """Train until done; return the 'finished' event."""
        for _ in self.events():
            pass
        return self.finished

    def events(self) -> Iterator[Event]:
        """Train, yielding every event (each also goes to the listener first). However it
        ends (finished, an exception, the generator closed), the worker processes end too."""
        try:
            yield from self._events()
        finally:
            self.close()

    def close(self) -> None:
        """End the worker processes of ``workers`` > 1 and free their shared memory (a later
        run starts new ones). The model keeps its parameters."""
        self._loss.close()

    def _events(self) -> Iterator[Event]:
        if self.finished is not None:
            return
        cfg = self.config
        budget = cfg.max_minutes * 60.0 if cfg.max_minutes is not None else None
        reason = None
        detail = ""
        t_mark = time.perf_counter()
        while True:
            if not self._running.is_set():
                self.seconds += time.perf_counter() - t_mark
                while not self._running.wait(0.05):
                    pass
                t_mark = time.perf_counter()
            if self._cancel.is_set():
                reason = "cancelled"
                break
            now = time.perf_counter()
            self.seconds += now - t_mark
            t_mark = now
            if budget is not None and self.seconds >= budget:
                reason = "time_budget"
                break
            if self.epoch_index >= cfg.epochs:
                reason = "completed"
                break
            if self._eval_pending:  # due after the last step; Stop may interrupt it
                try:
                    yield from self._evaluate_and_save(stoppable=True)
                except _EvalStopped:
                    continue  # cancelled meanwhile: the check above ends the run
                if self._diverged:
                    reason, detail = "diverged", self._diverged
                    break
                if cfg.patience > 0 and self._evals_since_best >= cfg.patience:
                    reason = "early_stopped"
                    break
                continue
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                ev, detail = self._train_step()  # overflow is detected, not warned about
            if ev is None:
                reason = "diverged"
                break
            yield self._emit(ev)
            epoch_done = self.pos == 0
            due = (self.step % cfg.eval_every == 0) if cfg.eval_every > 0 else epoch_done
            self._eval_pending = self._eval_pending or due
        self.seconds += time.perf_counter() - t_mark
        yield from self._finish(reason, detail)

    def _emit(self, ev: Event) -> Event:
        if self.listener is not None:
            self.listener(ev)
        return ev

    def _absurd_loss(self, what: str, loss: float | None) -> str:
        """'' if ``loss`` is a sane loss, else what diverged (for the message)."""
        if loss is None:
            return f"{what} became NaN or inf"
        if not math.isfinite(loss):
            return f"{what} became {loss}"
        if loss > DIVERGED_LOSS_FACTOR * self.chance_loss:
            return (f"{what} became {loss:.4g}, far above the chance level ln K = "
                    f"{self.chance_loss:.2f}")
        return ""

    def _train_step(self) -> tuple[StepEvent | None, str]:
        """One update. Returns (step event, '') or (None, what diverged)."""
        cfg = self.config
        t0 = time.perf_counter()
        if self._perm is None:
            self._perm = self.rng.permutation(self.n_train)
        idx = self._perm[self.pos:self.pos + cfg.batch_size]
        train = self.splits.train
        images = train.images[idx]
        y = np.asarray(train.labels[idx], dtype=np.int64)
        if cfg.augment:
            images = augment_batch(images, self.rng, crop_pad=cfg.crop_pad, flip=True)
        X = self.model.input_from_images(self.normalizer.apply(images, dtype=self.dtype))
        lr = float(self.schedule(self.epoch))
        loss, grads, trace = self._loss(X, y, cfg.reg, "norms")
        loss = float(loss)
        absurd = self._absurd_loss("the loss", loss)
        if absurd:
            return None, absurd
        rec = clip_gradients(grads, cfg.clip, cfg.clip_threshold)
        if not math.isfinite(rec.norm_before):
            return None, f"the gradient norm became {rec.norm_before}"
        dh_norm = getattr(trace, "dh_norm", None)
        dh_norm = (np.asarray(dh_norm, dtype=np.float32).copy() if dh_norm is not None
                   else np.zeros(0, np.float32))
        if not np.all(np.isfinite(dh_norm)):  # float32 overflow of a finite float64 gradient
            return None, "the gradient through time overflowed to inf"
        params = self.model.params
        for k, v in params.items():   # the parameters that just gave a finite loss and gradient
            self._last_good[k][...] = v
        self._last_good_step = self.step
        self.optimizer.step(params, grads, lr)

        self.step += 1
        self.pos += len(idx)
        if self.pos >= self.n_train:
            self.epoch_index += 1
            self.pos = 0
            self._perm = None
        acc = None
        probs = getattr(trace, "probs", None)
        if probs is not None:
            acc = float(np.mean(np.argmax(probs, axis=1) == y))
        dt = time.perf_counter() - t0
        spi = dt / len(idx)
        self._sec_per_image = spi if self._sec_per_image is None else (
            0.9 * self._sec_per_image + 0.1 * spi)
        epoch = self.epoch
        self.history["steps"].append({
            "step": self.step, "epoch": epoch, "loss": loss, "acc": acc, "lr": lr,
            "clip_fired": bool(rec.fired), "grad_norm": _clean(rec.norm_before),
        })
        if (self.step - 1) % self._dh_stride == 0 and dh_norm.size:
            self.history["dh_norm"].append(
                [self.step, [float(f"{v:.5g}") for v in dh_norm.tolist()]])
        ev: StepEvent = {
            "type": "step", "step": self.step, "epoch": epoch, "loss": loss, "acc": acc,
            "lr": lr, "images_per_s": 1.0 / self._sec_per_image if self._sec_per_image else 0.0,
            "dh_norm": dh_norm, "clip": rec.to_dict(), "seconds": self.seconds + dt,
        }
        return ev, ""

    # -- evaluation -----------------------------------------------------------------------------
    def _metrics(self, images, labels, stoppable: bool = False) -> dict:
        """{'loss','acc'} of the current parameters on uint8 images (no augmentation).
        stoppable: raise _EvalStopped between batches once cancel() was called."""
        n = len(labels)
        if n == 0:
            return {"loss": None, "acc": None}
        total_loss = 0.0
        correct = 0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for i in range(0, n, EVAL_BATCH):
                if stoppable and self._cancel.is_set():
                    raise _EvalStopped()
                loss_sum, n_correct = self._batch_metrics(images[i:i + EVAL_BATCH],
                                                          labels[i:i + EVAL_BATCH])
                total_loss += loss_sum
                correct += n_correct
        return {"loss": _clean(total_loss / n), "acc": correct / n}

    def _batch_metrics(self, images, labels) -> tuple[float, int]:
        """(sum of cross-entropies, number correct) of one batch of uint8 images."""
        x = self.normalizer.apply(np.asarray(images), dtype=self.dtype)
        s = np.asarray(self.model.scores(self.model.input_from_images(x)), dtype=np.float64)
        y = np.asarray(labels, dtype=np.int64)
        sample_losses, _ = softmax_cross_entropy_terms(s, y)
        return float(sample_losses.sum()), int(np.sum(np.argmax(s, axis=1) == y))

    def evaluate(self, split: str = "val", max_images: int | None = None) -> dict:
        """{'loss', 'acc'} on 'train' | 'val' | 'test' (max_images: evenly spaced subset)."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', not {split!r}")
        imageset = getattr(self.splits, split)
        n = len(imageset.labels)
        if max_images is not None and max_images < n:
            idx = np.linspace(0, n - 1, int(max_images)).astype(np.int64)
            return self._metrics(imageset.images[idx], imageset.labels[idx])
        return self._metrics(imageset.images, imageset.labels)

    def _evaluate_and_save(self, stoppable: bool = False) -> Iterator[dict]:
        train = self.splits.train
        tr = self._metrics(train.images[self._train_eval_idx],
                           train.labels[self._train_eval_idx], stoppable)
        va = self._metrics(self.splits.val.images, self.splits.val.labels, stoppable)
        self._eval_pending = False
        self._diverged = (self._absurd_loss("the training loss", tr["loss"])
                          or (self._absurd_loss("the validation loss", va["loss"])
                              if len(self.splits.val.labels) else ""))
        if self._diverged:
            self._diverged_at = self.step
            return  # not recorded: the caller stops the run as diverged
        score = va["acc"] if va["acc"] is not None else tr["acc"]
        best = self.best_val_acc is None or score > self.best_val_acc
        if best:
            self.best_val_acc = score
            self.best_step = self.step
            self._best_params = {k: v.copy() for k, v in self.model.params.items()}
            self._evals_since_best = 0
        else:
            self._evals_since_best += 1
        self._last_eval_step = self.step
        ev: EvalEvent = {
            "type": "eval", "step": self.step, "epoch": self.epoch,
            "train_loss": tr["loss"], "train_acc": tr["acc"],
            "val_loss": va["loss"], "val_acc": va["acc"], "best": bool(best),
        }
        self.history["evals"].append(dict(ev))
        yield self._emit(ev)
        if self.checkpoint_dir is not None:
            if best:
                yield self._emit(self._write("best"))
            yield self._emit(self._write("last"))

    def _write(self, kind: str) -> CheckpointEvent:
        """kind: 'best' | 'last' | 'last_good' (the restored parameters of a diverged run,
        written as last.npz)."""
        path = self.checkpoint_dir / f"{'last' if kind == 'last_good' else kind}.npz"
        if kind == "best":
            self._save(path, params=self._best_params)
        elif kind == "last_good":
            self._save(path, params_are="last_good")
            self._last_saved_step = self.step
        else:
            self._save(path)
            self._last_saved_step = self.step
        return {"type": "checkpoint", "path": str(path),
                "kind": "best" if kind == "best" else "last"}

    # -- finishing ------------------------------------------------------------------------------
    def _finish(self, reason: str, detail: str) -> Iterator[dict]:
        cfg = self.config
        if reason in ("completed", "time_budget") and self.step > self._last_eval_step:
            t0 = time.perf_counter()  # the loop's clock stopped: count this evaluation here
            for ev in self._evaluate_and_save():
                self.seconds += time.perf_counter() - t0
                yield ev
                t0 = time.perf_counter()
            if self._diverged:
                reason, detail = "diverged", self._diverged
        if reason == "diverged":
            for k, v in self.model.params.items():
                v[...] = self._last_good[k]
            message = self._divergence_message(detail)
        # last.npz = the exact state to resume from; after divergence the previous last.npz
        # (a consistent, finite state) is kept rather than overwritten. A run that diverged
        # before it wrote any still leaves its last good parameters on disk (not resumable).
        if self.checkpoint_dir is not None:
            if reason != "diverged" and self.step != self._last_saved_step:
                yield self._emit(self._write("last"))
            elif reason == "diverged" and self._last_saved_step < 0:
                yield self._emit(self._write("last_good"))
        restored = ""
        if reason != "diverged" and self._best_params is not None:
            for k, v in self.model.params.items():
                v[...] = self._best_params[k]
            restored = (f"; best val accuracy {self.best_val_acc:.2%} at step {self.best_step}"
                        " (its parameters restored)")
        if reason == "completed":
            message = f"completed {cfg.epochs} epochs ({self.step} steps){restored}"
        elif reason == "early_stopped":
            message = (f"stopped early at step {self.step}: no better val accuracy in "
                       f"{cfg.patience} evaluations{restored}")
        elif reason == "time_budget":
            message = (f"time budget of {cfg.max_minutes:g} min reached at step {self.step} "
                       f"(epoch {self.epoch:.2f}){restored}")
        elif reason == "cancelled":
            message = f"cancelled at step {self.step} (epoch {self.epoch:.2f}){restored}"
        ev: FinishedEvent = {
            "type": "finished", "reason": reason, "message": message, "step": self.step,
            "epoch": self.epoch, "best_val_acc": self.best_val_acc,
        }
        self.history["finished"] = dict(ev)
        ev["seconds"] = self.seconds
        self.finished = ev
        yield self._emit(ev)

    def _divergence_message(self, detail: str) -> str:
        cfg = self.config
        causes = [f"the learning rate {cfg.lr:g} is probably too high (try {cfg.lr / 10:g})"]
        if cfg.clip == "none":
            causes.append("clipping is off (try --clip norm)")
        if cfg.init == "normal" and cfg.gain > 1.0:
            causes.append(f"init gain {cfg.gain:g} makes W_hh explode (try gain 1)")
        if cfg.activation == "relu":
            causes.append("relu states are unbounded")
        best = ""
        if self.checkpoint_dir is not None and self.best_val_acc is not None:
            best = (f"; the best parameters (val {self.best_val_acc:.2%}) are in "
                    f"{self.checkpoint_dir / 'best.npz'}")
        at = self._diverged_at if self._diverged_at is not None else self.step + 1
        return (f"diverged at step {at} (epoch {self.epoch:.2f}): {detail}; "
                f"{'; '.join(causes)}; parameters from step {self._last_good_step} restored"
                f"{best}")

    # -- checkpoints ----------------------------------------------------------------------------
    def _data_info(self) -> dict:
        s = self.splits
        return {
            "name": getattr(s, "name", None),
            "description": getattr(s, "description", None),
            "info": getattr(s, "info", None),
            "n_train": len(s.train.labels), "n_val": len(s.val.labels),
            "n_test": len(s.test.labels),
        }

    def _save(self, path, params: dict[str, np.ndarray] | None = None,
              params_are: str = "current") -> Path:
        meta = {
            "train_config": self.config.to_dict(),
            "step": self.step, "epoch": self.epoch, "epoch_index": self.epoch_index,
            "pos": self.pos, "seconds": self.seconds,
            "rng_state": self.rng.bit_generator.state,
            "best_val_acc": self.best_val_acc, "best_step": self.best_step,
            "evals_since_best": self._evals_since_best, "last_eval_step": self._last_eval_step,
            "eval_pending": self._eval_pending,
            "history": self.history, "data": self._data_info(),
            "params_are": "best" if params is not None else params_are,
        }
        extra = {}
        if self._perm is not None:
            extra["perm"] = self._perm
        if self._best_params is not None:
            extra.update({f"best/{k}": v for k, v in self._best_params.items()})
        model = self.model
        if params is not None:
            model = _ParamsView(self.model, params)
        return save_checkpoint(path, model, self.normalizer, self.optimizer.state_dict(),
                               meta, extra)

    def save_checkpoint(self, path) -> Path:
        """Write the full training state (current parameters) to ``path`` atomically."""
        return self._save(Path(path))

    @classmethod
    def resume_from(cls, path, splits, listener=None, checkpoint_dir=_SAME_DIR,
                    overrides: dict | None = None, checkpoint: Checkpoint | None = None,
                    parent_part: bool = True) -> Trainer:
        """A Trainer that continues the run saved in ``path`` (normally ``last.npz``).

        checkpoint_dir: where to keep writing best/last.npz (default: the folder of ``path``;
        None = do not write). overrides: new values for epochs / max_minutes / patience /
        eval_every (e.g. to train longer) / workers (processes; exact resumes keep the same);
        any other option may be given only with the value it was trained with.
        checkpoint: ``path`` already loaded by the caller (so it is read once). parent_part:
        as for ``Trainer``.
        """
        path = Path(path)
        ck = checkpoint if checkpoint is not None else load_checkpoint(path)
        validate_training_state(ck, path)
        meta = ck.meta
        if "train_config" not in meta or "rng_state" not in meta:
            raise CheckpointError(f"{path} holds a model but no training state; it cannot be "
                                  "resumed (start a new run instead)")
        cfg_dict = dict(meta["train_config"])
        for key, value in (overrides or {}).items():
            if key not in RESUMABLE_OVERRIDES and cfg_dict.get(key) != value:
                raise ConfigError(f"{key} cannot change when resuming (trained with "
                                  f"{cfg_dict.get(key)!r}, asked for {value!r}); only "
                                  f"{', '.join(RESUMABLE_OVERRIDES)} can")
            cfg_dict[key] = value
        cfg = TrainConfig.from_dict(cfg_dict)
        check_dataset(meta, getattr(splits, "name", None), path)
        data = meta.get("data") or {}
        n_train = len(splits.train.labels)
        if data.get("n_train") not in (None, n_train):
            raise CheckpointError(f"{path} was trained on {data.get('n_train')} images but this "
                                  f"data has {n_train}; resume with the same data, scheme and "
                                  "subset")
        if checkpoint_dir is _SAME_DIR:
            checkpoint_dir = path.parent
        t = cls(cfg, splits, model=ck.model, listener=listener, checkpoint_dir=checkpoint_dir,
                normalizer=ck.normalizer, parent_part=parent_part)
        if meta.get("params_are") == "best":
            raise CheckpointError(f"{path} holds the best parameters, not the latest state; "
                                  "resume from last.npz")
        if meta.get("params_are") == "last_good":
            raise CheckpointError(f"{path} holds the last good parameters of a run that "
                                  "diverged, not a state to resume; start a new run with a "
                                  "lower learning rate")
        t.optimizer.load_state_dict(ck.optimizer_state)
        try:
            t.rng.bit_generator.state = meta["rng_state"]
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path} has an unusable RNG state ({exc})") from None
        t.step = int(meta["step"])
        t.epoch_index = int(meta["epoch_index"])
        t.pos = int(meta["pos"])
        t.seconds = float(meta.get("seconds", 0.0))
        t._last_eval_step = int(meta.get("last_eval_step", 0))
        t._eval_pending = bool(meta.get("eval_pending", False))
        if (t.checkpoint_dir is not None
                and (t.checkpoint_dir / "last.npz").resolve() == path.resolve()):
            t._last_saved_step = t.step  # last.npz already holds this state
        t.best_val_acc = meta.get("best_val_acc")
        t.best_step = meta.get("best_step")
        t._evals_since_best = int(meta.get("evals_since_best", 0))
        perm = ck.extra.get("perm")
        if t.pos > 0:
            if perm is None or len(perm) != n_train:
                raise CheckpointError(f"{path} is missing the epoch's shuffling order; it "
                                      "cannot be resumed exactly")
            t._perm = np.asarray(perm, dtype=np.int64)
        best = {k[len("best/"):]: v for k, v in ck.extra.items() if k.startswith("best/")}
        if best:
            t._best_params = {k: np.asarray(v, dtype=t.model.params[k].dtype).copy()
                              for k, v in best.items()}
        for k, v in t.model.params.items():
            t._last_good[k][...] = v
        t._last_good_step = t.step
        history = meta.get("history") or {}
        history["finished"] = None
        history["config"] = cfg.to_dict()
        t.history = history
        return t

    def reopen(self, params: dict[str, np.ndarray] | None = None,
               workers: int | None = None) -> None:
        """Continue a run that ended 'cancelled', in memory: the next :meth:`events` picks up
        at the step it stopped at, with the same optimizer, RNG and epoch position.

        params: the parameters the run had when it was cancelled (copies taken at its last
        step event); needed when the finish restored the best parameters over them, since
        the optimizer state belongs to the current ones. workers: continue on this many
        processes (one of the RESUMABLE_OVERRIDES; None keeps the run's). Raises ConfigError
        for any other end.
        """
        if self.finished is None:
            return
        if self.finished.get("reason") != "cancelled":
            raise ConfigError(f"a run that ended '{self.finished.get('reason')}' cannot be "
                              "continued in place; only a stopped (cancelled) one can")
        if workers is not None and workers != self.config.workers:
            self.config = dataclasses.replace(self.config, workers=workers).validate()
            self.history["config"] = self.config.to_dict()
            self._loss.close()
            self._loss = BatchLoss(self.model, self.config.workers, parent_part=self.parent_part)
        if params is not None:
            for k, v in self.model.params.items():
                v[...] = params[k]
        self.finished = None
        self.history["finished"] = None
        self._cancel.clear()
        self._running.set()


class _EvalStopped(Exception):
    """cancel() arrived while evaluating: the evaluation is abandoned (and stays pending)."""


class _ParamsView:
    """A stand-in model for save_checkpoint that carries other parameters (the best ones)."""

    def __init__(self, model, params):
        self.params = params
        self.config = model.config
        self.kind = getattr(model, "kind", None)
