"""The work behind ``python main.py train|evaluate|report|overfit|memory|download``.

``cli.main`` parses arguments and maps results to exit codes; this module loads data and
checkpoints, drives the :class:`core.trainer.Trainer`, prints progress (tqdm on a terminal,
plain lines otherwise) and writes result files atomically (core.fileio). A command that
writes into a folder holds a lock on it (filelock) for as long as it runs, so two runs cannot
mix their files there. User mistakes raise subclasses of :class:`core.errors.RnnscopeError`
with one-line messages.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from core.blas import limit_blas_threads
from core.errors import ConfigError, DataError, DownloadCancelled, FolderBusyError
from core.fileio import remove_stale_temps, write_json_atomic

TRAIN_FILES = ("history.json", "best.npz", "last.npz", "metrics.json")
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
# evaluating the whole 49,000-image training split after a run would take minutes on 2 cores;
# the train figures in metrics.json use at most this many training images (the first ones)
FINAL_TRAIN_IMAGES = 10_000
LOCK_NAME = ".rnnscope.lock"          # held (filelock) while a command writes into a folder
LOCK_OWNER_NAME = ".rnnscope.lock.pid"  # the pid of the holder, for the second run's message


# -- small helpers ------------------------------------------------------------------------------
def parse_subset(text: str) -> int | float:
    """'5000' -> 5000 images; '0.4' -> 40 % of the training set. ConfigError otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--subset {text!r} is not a number; give a count of images "
                          "(e.g. 5000) or a fraction (e.g. 0.4)") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"--subset {text}: give a count of images >= 1 (e.g. 5000) or a "
                          "fraction in (0, 1] (e.g. 0.4)")
    if value > 1:
        if not value.is_integer():
            raise ConfigError(f"--subset {text}: a count of images must be a whole number "
                              "(or give a fraction in (0, 1], e.g. 0.4)")
        return int(value)   # '5000', '1e3', '2000.0': a count
    if value == 1 and "." not in text and "e" not in text.lower():
        return 1            # '1': one image; '1.0': the whole set
    return value


def prepare_out_dir(out, option: str = "--out") -> Path:
    """Create ``out`` if needed and check it is a writable folder (ConfigError if not)."""
    if not str(out).strip():
        raise ConfigError(f"{option} is empty; give a folder to write the results into "
                          f"({option} . for the current folder)")
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file, not a folder; give a folder to write "
                          "the results into")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{option} {path} is not writable ({exc.strerror or exc}); choose "
                          "another folder") from None
    return path


@contextmanager
def locked_out_dir(path: Path):
    """Hold the lock of the output folder ``path`` while the block runs; FolderBusyError
    (naming the other run's pid) if another run holds it. Temporary files that killed runs
    left in the folder are removed once the lock is ours."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(path / LOCK_NAME), timeout=0)
    owner = path / LOCK_OWNER_NAME
    try:
        lock.acquire()
    except Timeout:
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            pid = None
        who = f" (pid {pid})" if pid is not None else ""
        raise FolderBusyError(f"{path} is being written by another run{who}; wait for it to "
                              "finish or choose another folder") from None
    try:
        with contextlib.suppress(OSError):  # only for the message above: not worth failing
            owner.write_text(f"{os.getpid()}\n")
        remove_stale_temps(path)
        yield path
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()


def dataset_of(data: str) -> str:
    """The data set a --data value names: 'probe' or 'cifar10'."""
    return "probe" if data == "probe" else "cifar10"


def check_data_spec(data: str) -> str:
    """'probe', 'cifar10' (look in $RNNSCOPE_DATA, then the cache folder) or an existing path;
    DataError naming --data otherwise."""
    if data in ("probe", "cifar10"):
        return data
    path = Path(data).expanduser()
    if not path.exists():
        raise DataError(f"--data {data}: no such file or folder; give the CIFAR-10 tarball "
                        "or its folder, `cifar10` to use $RNNSCOPE_DATA or the downloaded copy, "
                        "`probe` for the built-in task, or run `python main.py download`")
    return str(path)


def load_splits(data: str, *, scheme: str = "default", subset=None, seed: int = 0,
                probe_params: dict | None = None, log=None):
    """Load the data set named by ``data`` ('probe', 'cifar10' or a CIFAR-10 path) -> DataSplits."""
    from core.datasets import load_data

    spec = check_data_spec(data)
    if log:
        log("loading " + {"probe": "the memory-probe task", "cifar10": "CIFAR-10"}.get(spec, spec)
            + " ...")
    splits = load_data(spec, scheme=scheme, subset=subset, seed=seed,
                       probe_params=probe_params if spec == "probe" else None)
    if log:
        log(splits.description)
    return splits


def build_config(preset: str | None, overrides: dict):
    """TrainConfig from a preset (or the defaults) with ``overrides`` applied as given."""
    from core.config import TrainConfig

    if preset:
        return TrainConfig.from_preset(preset, **overrides)
    return TrainConfig.from_dict(overrides)


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def sigint_calls(callback):
    """While active, the first Ctrl-C calls ``callback()``; a second one interrupts at once."""
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:  # not the main thread
        yield
        return
    hits = {"n": 0}

    def handler(signum, frame):
        hits["n"] += 1
        if hits["n"] > 1:
            raise KeyboardInterrupt
        callback()

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# -- progress -----------------------------------------------------------------------------------
class TrainProgress:
    """Shows trainer events: a tqdm bar on a terminal, else a plain line every few seconds."""

    def __init__(self, total_steps: int, start_step: int = 0, stream=None, tty: bool | None = None,
                 every_seconds: float = 5.0, desc: str = "train"):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.total = max(1, int(total_steps))
        self.step = self.start_step = int(start_step)
        self._t0 = time.monotonic()
        self.every = every_seconds
        self._last_print = 0.0
        self.bar = None
        if self.tty:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, initial=self.step, unit="step", desc=desc,
                            file=self.stream, dynamic_ncols=True, leave=True)

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def __call__(self, ev: dict) -> None:
        kind = ev.get("type")
        if kind == "step":
            self._on_step(ev)
        elif kind == "eval":
            best = "  (best so far)" if ev.get("best") else ""
            self.write(f"epoch {ev['epoch']:.2f}  step {ev['step']}: train loss "
                       f"{ev['train_loss']:.4f} acc {100 * ev['train_acc']:.2f}%  |  val loss "
                       f"{ev['val_loss']:.4f} acc {100 * ev['val_acc']:.2f}%{best}")
        elif kind == "finished":
            self.close()

    def _on_step(self, ev: dict) -> None:
        step = int(ev["step"])
        if self.bar is not None:
            self.bar.update(max(0, step - self.step))
            self.bar.set_postfix_str(f"ep {ev['epoch']:.2f} loss {ev['loss']:.3f} acc "
                                     f"{100 * ev['acc']:.1f}% {ev.get('images_per_s', 0):.0f} "
                                     "img/s", refresh=False)
        else:
            now = time.monotonic()
            if now - self._last_print >= self.every or step >= self.total:
                self._last_print = now
                ips = ev.get("images_per_s", 0.0) or 0.0
                done = step - self.start_step
                left = (now - self._t0) / done * max(0, self.total - step) if done else math.nan
                eta = tqdm.format_interval(left) if math.isfinite(left) else "?"  # as the app
                self.write(f"step {step}/{self.total}  epoch {ev['epoch']:.2f}  loss "
                           f"{ev['loss']:.4f}  acc {100 * ev['acc']:.1f}%  {ips:.0f} img/s  "
                           f"ETA {eta}")
        self.step = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# -- train ----------------------------------------------------------------------------------------
def _probe_options(data: str, cue_row: int | None) -> dict | None:
    if cue_row is None:
        return None
    if data != "probe":
        raise ConfigError("--cue-row only applies to --data probe; drop it for CIFAR-10")
    from core.datasets import PROBE_DEFAULTS
    from core.probe import SIZE

    last = SIZE - PROBE_DEFAULTS["cue_height"] + 1  # the band's rows must fit in the image
    if not 1 <= int(cue_row) <= last:
        raise ConfigError(f"--cue-row {cue_row} is not a row the {PROBE_DEFAULTS['cue_height']}"
                          f"-row cue band can start on; give 1..{last} (1 = top)")
    return {"cue_row": int(cue_row) - 1}   # the command line counts rows from 1, core from 0


def _split_spec_of(meta: dict) -> dict:
    """How the checkpoint's data was split: {'scheme', 'subset', 'seed'}.

    The data description the trainer recorded comes first (the app trains on a subset it
    loaded, with no subset in the TrainConfig), then the TrainConfig."""
    cfg = _train_config_of(meta)
    data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    info = data.get("info") if isinstance(data.get("info"), dict) else {}
    spec = {"scheme": cfg.get("scheme", "default"), "subset": cfg.get("subset"),
            "seed": cfg.get("seed", 0)}
    for key in spec:
        if key in info:
            spec[key] = info[key]
    return spec


def _images(subset) -> str:
    """'2,000 images', '40% of the training set', 'the whole training set'."""
    if subset is None:
        return "the whole training set"
    if isinstance(subset, float):
        return f"{subset:.0%} of the training set"
    return f"{int(subset):,} images"


def _same(asked, trained) -> bool:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                  for v in (asked, trained))
    if numbers:
        return float(asked) == float(trained)
    if isinstance(asked, (list, tuple)) and isinstance(trained, (list, tuple)):
        return list(asked) == list(trained)
    return asked == trained


def _check_resume_flags(meta: dict, path, overrides: dict, preset, probe_params) -> dict:
    """The overrides a resume may apply (epochs, budget, ...). A flag that defines the data or
    the model and equals the checkpoint's value is dropped; one that differs is refused with
    both values (ConfigError)."""
    from core.config import TrainConfig
    from core.trainer import RESUMABLE_OVERRIDES

    cfg = _train_config_of(meta)
    spec = _split_spec_of(meta)

    def refuse(flag, trained, asked):
        raise ConfigError(f"{flag}: the checkpoint {path} was trained {trained}, you asked for "
                          f"{asked}; drop {flag} to resume as it was trained, or start a new "
                          "run in another --out folder")

    if preset is not None and preset != cfg.get("preset"):
        was = cfg.get("preset")
        refuse("--preset", f"with preset {was}" if was else "without a preset", preset)
    if probe_params is not None:
        trained_probe = _probe_params_of(meta) or {}
        row = trained_probe.get("cue_row")
        if row is not None and row != probe_params["cue_row"]:
            refuse("--cue-row", f"with the cue at row {row + 1}", probe_params["cue_row"] + 1)
    kept = {}
    for key, value in overrides.items():
        if key in RESUMABLE_OVERRIDES:
            kept[key] = value
            continue
        flag = "--" + key.replace("_", "-")
        if key == "subset":  # 1 = one image, 1.0 = the whole set: the type matters too
            trained = spec["subset"]
            if not (_same(value, trained) and isinstance(value, int) == isinstance(trained, int)):
                asked = f"{value:,}" if isinstance(value, int) else _images(value)
                refuse(flag, f"on {_images(trained)}", asked)
            continue
        # a field the checkpoint's config lacks (saved before it existed) had its default
        trained = cfg.get(key, getattr(TrainConfig, key, None))
        if key == "hidden" and trained is None:
            from core.config import DEFAULT_HIDDEN

            trained = DEFAULT_HIDDEN.get(cfg.get("model"))
        if not _same(value, trained):
            refuse(flag, f"with {key.replace('_', ' ')} {trained}", value)
    return kept


def make_trainer(data: str, out_dir: Path | None, *, preset=None, overrides=None, subset=None,
                 cue_row=None, resume=None, log=_stderr_line):
    """Load the data and build a Trainer (new, or continuing ``resume``) -> (trainer, splits)."""
    from core.trainer import Trainer

    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    probe_params = _probe_options(data, cue_row)
    if subset is not None:
        overrides["subset"] = parse_subset(subset) if isinstance(subset, str) else subset
    if resume is not None:
        from core.checkpoint import check_dataset, load_checkpoint, validate_training_state

        ck = load_checkpoint(resume)  # read once: the Trainer continues from this object
        validate_training_state(ck, resume)  # before its flags: a model-only file has none
        check_dataset(ck.meta, dataset_of(data), resume)
        overrides = _check_resume_flags(ck.meta, resume, overrides, preset, probe_params)
        spec = _split_spec_of(ck.meta)
        if data == "probe":
            probe_params = _probe_params_of(ck.meta)
        splits = load_splits(data, scheme=spec["scheme"], subset=spec["subset"],
                             seed=int(spec["seed"]), probe_params=probe_params, log=log)
        trainer = Trainer.resume_from(resume, splits, checkpoint_dir=out_dir,
                                      overrides=overrides, checkpoint=ck)
        if log:
            log(f"resuming {resume} at step {trainer.step} (epoch {trainer.epoch:.2f})")
        return trainer, splits
    if data == "probe" and preset and "subset" not in overrides:
        overrides["subset"] = None  # a preset's subset size is meant for CIFAR-10
    if "workers" not in overrides:
        from core.threads import default_workers

        overrides["workers"] = default_workers()
    config = build_config(preset, overrides)
    for w in config.warnings():
        if log:
            log(f"warning: {w}")
    splits = load_splits(data, scheme=config.scheme, subset=config.subset, seed=config.seed,
                         probe_params=probe_params, log=log)
    return Trainer(config, splits, checkpoint_dir=out_dir), splits


def final_metrics(trainer, splits) -> dict:
    """Train/val/test accuracy, loss (and test ECE) of the trainer's current parameters; the
    train figures on at most FINAL_TRAIN_IMAGES training images (the first ones)."""
    from core import analysis, metrics

    out = {}
    for name in ("train", "val", "test"):
        part = getattr(splits, name)
        limit = FINAL_TRAIN_IMAGES if name == "train" else None
        pred = analysis.predict(trainer.model, trainer.normalizer, part, max_images=limit)
        s = metrics.summarize(pred.probs, pred.labels)
        out[f"{name}_acc"], out[f"{name}_loss"] = s["acc"], s["loss"]
        out[f"{name}_images"] = s["n"]
        if name == "test":
            out["test_ece"] = s["ece"]
    return out


def train_command(data: str, out, *, preset=None, overrides=None, subset=None, cue_row=None,
                  resume=None, stream=None) -> int:
    """`train`: run to the end, write history/best/last/metrics into ``out`` -> exit code.

    ``out`` is locked for the whole run: a second run on the same folder is refused."""
    out_dir = prepare_out_dir(out)
    check_data_spec(data)
    with locked_out_dir(out_dir):
        trainer, splits = make_trainer(data, out_dir, preset=preset, overrides=overrides,
                                       subset=subset, cue_row=cue_row, resume=resume)
        return _run_training(trainer, splits, out_dir, resumed=resume is not None,
                             stream=stream)


def _run_training(trainer, splits, out_dir: Path, resumed: bool, stream=None) -> int:
    cfg = trainer.config
    start_step = trainer.step
    progress = TrainProgress(cfg.epochs * trainer.steps_per_epoch, start_step=start_step,
                             stream=stream)
    layout = f", {cfg.sequence}" if cfg.model == "cnn-rnn" else ""
    progress.write(f"training {cfg.model} ({cfg.cell}{layout}, H={cfg.hidden_dim}, "
                   f"{cfg.optimizer} lr {cfg.lr:g}, "
                   f"clip {cfg.clip}) for up to {cfg.epochs} epochs of "
                   f"{trainer.steps_per_epoch} steps"
                   + (f", budget {cfg.max_minutes:g} min" if cfg.max_minutes else "")
                   + f" -> {out_dir}")
    step_speeds = []
    interrupted = {"flag": False}

    def on_sigint():
        interrupted["flag"] = True
        trainer.cancel()

    try:
        # one BLAS thread: a multi-threaded OpenBLAS spins, and slows down badly beside
        # another training run or the --workers processes
        with sigint_calls(on_sigint), limit_blas_threads(1):
            for ev in trainer.events():
                if ev["type"] == "step" and ev.get("images_per_s"):
                    step_speeds.append(float(ev["images_per_s"]))
                progress(ev)
    finally:
        progress.close()
    finished = trainer.finished
    reason = finished["reason"]
    write_json_atomic(out_dir / "history.json", trainer.history)
    result = {
        "reason": reason, "message": finished["message"], "model": cfg.model,
        "preset": cfg.preset, "data": splits.description, "steps": trainer.step,
        "epochs": trainer.epoch, "seconds": trainer.seconds,
        "images_per_s": (trainer.epoch * trainer.n_train / trainer.seconds
                         if trainer.seconds > 0 else None),
        "step_images_per_s": (sorted(step_speeds)[len(step_speeds) // 2]
                              if step_speeds else None),
        "best_val_acc": trainer.best_val_acc, "resumed_from_step": start_step if resumed else None,
        "config": cfg.to_dict(),
        "files": {name: (out_dir / name).exists() for name in ("best.npz", "last.npz")},
    }
    if reason != "diverged":
        if not interrupted["flag"]:
            _stderr_line("measuring final train/val/test accuracy ...")
            result.update(final_metrics(trainer, splits))
    write_json_atomic(out_dir / "metrics.json", result)
    if reason == "diverged":
        _stderr_line(f"error: training {finished['message']}")
        return EXIT_DIVERGED
    if interrupted["flag"]:
        _stderr_line(f"train: interrupted — {finished['message']}; state saved in "
                     f"{out_dir / 'last.npz'} (resume with --resume)")
        return EXIT_INTERRUPTED
    print(f"{finished['message']}")
    print(f"test accuracy {100 * result['test_acc']:.2f}%  (val {100 * result['val_acc']:.2f}%, "
          f"train {100 * result['train_acc']:.2f}% on {result['train_images']} images)  "
          f"{trainer.seconds:.0f} s, {result['images_per_s'] or 0:.0f} images/s -> {out_dir}")
    return EXIT_OK


# -- overfit ------------------------------------------------------------------------------------
# the sanity check's settings where no preset gives them: plain Adam, nothing that fights
# memorising (no L2, no augmentation), small batches so an epoch of 100 images is 4 updates
OVERFIT_DEFAULTS = {"optimizer": "adam", "lr": 2e-3, "schedule": "constant", "batch_size": 25,
                    "clip": "norm", "clip_threshold": 5.0}
OVERFIT_FORCED = {"reg": 0.0, "augment": False, "patience": 0, "eval_every": 0}


def overfit_command(data: str, *, preset=None, overrides=None, subset=None, cue_row=None,
                    size: int = 100, target: float = 0.99, max_epochs: int = 300,
                    stream=None) -> int:
    """`overfit`: can the model memorise ``size`` training images? Trains on them (a stratified
    subset) until its accuracy on them reaches ``target`` -> exit 0, or gives up after
    ``max_epochs`` / the time budget (default 5 minutes) -> exit 1; diverged -> 3."""
    if subset is not None:
        raise ConfigError("overfit trains on --size images; --subset does not apply")
    if int(size) != size or size < 10:
        raise ConfigError(f"--size {size} is too small; give at least 10 images")
    if not 0 < target <= 1:
        raise ConfigError(f"--target {target} must be a training accuracy in (0, 1]")
    check_data_spec(data)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    settings = {} if preset else dict(OVERFIT_DEFAULTS)
    settings.update(OVERFIT_FORCED)
    settings.update({"epochs": max_epochs, "max_minutes": 5.0})
    settings.update(given)
    subset = int(size)
    if dataset_of(data) == "cifar10":  # a CIFAR-10 subset is split 9:1 into train and val
        from core.splits import VAL_FRACTION

        subset = next(k for k in range(subset, 2 * subset + 2)
                      if k - max(1, int(round(k * VAL_FRACTION))) >= size)
    trainer, splits = make_trainer(data, None, preset=preset, overrides=settings,
                                   subset=subset, cue_row=cue_row)
    cfg, n = trainer.config, trainer.n_train
    out = stream or sys.stdout
    print(f"overfit: {cfg.model} (H={cfg.hidden_dim}, {cfg.optimizer} lr {cfg.lr:g}) on {n} "
          f"training images of {splits.description}; target {100 * target:.0f}% training "
          f"accuracy, at most {cfg.epochs} epochs", file=out, flush=True)
    best = 0.0
    reached = None
    with sigint_calls(trainer.cancel), limit_blas_threads(1):
        for ev in trainer.events():
            if ev["type"] != "eval" or ev.get("train_acc") is None:
                continue
            acc = float(ev["train_acc"])
            best = max(best, acc)
            epoch = int(round(ev["epoch"]))
            if epoch % 10 == 0:
                print(f"  epoch {epoch}: training accuracy {100 * acc:.1f}%", file=out,
                      flush=True)
            if acc >= target:
                reached = epoch
                trainer.cancel()
    reason = trainer.finished["reason"]
    if reason == "diverged":
        _stderr_line(f"error: training {trainer.finished['message']}")
        return EXIT_DIVERGED
    if reached is not None:
        print(f"reached {100 * best:.1f}% training accuracy on {n} images after {reached} "
              f"epochs ({trainer.seconds:.1f} s): the model can memorise a small set, so the "
              "gradients reach the parameters", file=out)
        return EXIT_OK
    why = ("it was interrupted" if reason == "cancelled" else
           f"it stopped on the time budget of {cfg.max_minutes:g} min"
           if reason == "time_budget" else f"it ran {cfg.epochs} epochs")
    print(f"did not reach {100 * target:.0f}% training accuracy on {n} images ({why}; best "
          f"{100 * best:.1f}%): try another learning rate, initialisation or clipping, or more "
          "epochs", file=out)
    return EXIT_ERROR


def _train_config_of(meta: dict) -> dict:
    """The TrainConfig dict stored in a checkpoint's metadata ({} if none)."""
    value = meta.get("train_config")
    return value if isinstance(value, dict) else {}


def _history_of(meta: dict) -> dict:
    value = meta.get("history")
    return value if isinstance(value, dict) else {}


def _probe_params_of(meta: dict) -> dict | None:
    """The probe-task parameters a checkpoint was trained on (None if not the probe task)."""
    data = meta.get("data") or {}
    info = data.get("info") if isinstance(data, dict) else None
    probe = info.get("probe") if isinstance(info, dict) else None
    return dict(probe) if isinstance(probe, dict) else None


def splits_for_checkpoint(meta: dict, data: str, log=None):
    """Load ``data`` split as the checkpoint's data was (scheme, subset, seed, probe
    parameters), so `evaluate`/`report` measure the same test split that training reported on.
    """
    spec = _split_spec_of(meta)
    if data == "probe":
        return load_splits(data, subset=spec["subset"], seed=int(spec["seed"]),
                           probe_params=_probe_params_of(meta), log=log)
    return load_splits(data, scheme=spec["scheme"], subset=spec["subset"],
                       seed=int(spec["seed"]), log=log)


# -- evaluate -------------------------------------------------------------------------------------
def evaluate_checkpoint(checkpoint, data: str, log=None, batch_size: int = 500) -> dict:
    """Accuracy, loss and 15-bin ECE of a checkpoint on the test split -> JSON-able dict."""
    from core import analysis, metrics
    from core.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint, expect_data=dataset_of(data))
    splits = splits_for_checkpoint(ck.meta, data, log=log)
    pred = analysis.predict(ck.model, ck.normalizer, splits.test, batch_size=batch_size)
    summary = metrics.summarize(pred.probs, pred.labels)
    return {"checkpoint": str(checkpoint), "model": ck.meta.get("model_kind"),
            "data": splits.description, "split": "test", "images": summary["n"],
            "accuracy": summary["acc"], "loss": summary["loss"], "ece": summary["ece"],
            "ece_bins": metrics.ECE_BINS}


def evaluate_command(checkpoint, data: str, as_json: bool = False) -> int:
    result = evaluate_checkpoint(checkpoint, data, log=None if as_json else _stderr_line)
    if as_json:
        print(json.dumps(result))
    else:
        print(f"{result['model']} from {result['checkpoint']} on the test split "
              f"({result['images']} images)")
        print(f"  accuracy {100 * result['accuracy']:.2f}%   loss {result['loss']:.4f}   "
              f"ECE {100 * result['ece']:.2f}% ({result['ece_bins']} bins)")
    return EXIT_OK


# -- report ---------------------------------------------------------------------------------------
def report_command(checkpoint, data: str, out, tsne_points: int = 1000) -> int:
    """`report`: the report figures (``report.figures.write_report``) as PNGs in ``out``."""
    from core.checkpoint import load_checkpoint
    from report.data import report_data
    from report.figures import write_report  # matplotlib: only for this subcommand

    out_dir = prepare_out_dir(out)
    with locked_out_dir(out_dir):
        ck = load_checkpoint(checkpoint, expect_data=dataset_of(data))
        splits = splits_for_checkpoint(ck.meta, data, log=_stderr_line)
        rd = report_data(ck.model, ck.normalizer, splits, _history_of(ck.meta),
                         model_name=ck.meta.get("model_kind"), tsne_points=tsne_points,
                         log=_stderr_line, checkpoint=str(checkpoint))
        paths = write_report(rd, out_dir)
        write_json_atomic(out_dir / "summary.json", {
            "checkpoint": rd["checkpoint"], "model": rd["model"], "data": rd["data"],
            "test": rd["summary"], "class_names": rd["class_names"],
            "per_class_accuracy": rd["per_class_accuracy"],
            "figures": [p.name for p in paths]})
    s = rd["summary"]
    print(f"test accuracy {100 * s['acc']:.2f}%  loss {s['loss']:.4f}  ECE "
          f"{100 * s['ece']:.2f}% ({s['n']} images)")
    for p in paths:
        print(p)
    return EXIT_OK


# -- memory ---------------------------------------------------------------------------------------
MEMORY_FILES = ("memory.json", "memory.png", "gradients.png", "connectivity.png")


def parse_int_list(text, option: str) -> tuple[int, ...]:
    """'4,8,12' -> (4, 8, 12); ConfigError naming ``option`` otherwise."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: give comma-separated whole numbers, e.g. "
                          "4,8,12") from None
    return values


class MemoryProgress:
    """The bench's progress: on a terminal one tqdm bar per running run (one line each) and a
    line per finished run; otherwise only the line per finished run."""

    def __init__(self, stream=None, tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.bars: dict[int, object] = {}
        self.slots: dict[int, int] = {}
        self.total = 0
        self.finished = 0

    def _write(self, text: str) -> None:
        if self.tty:
            tqdm.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def __call__(self, ev: dict) -> None:
        kind = ev["type"]
        if kind == "bench_start":
            self.total = ev["runs"]
            sizes = ", ".join(f"{v['label']} H={v['hidden']} ({v['params']:,} params, lr "
                              f"{v['lr']:g})" for v in ev["variants"])
            self._write(f"memory bench: {ev['runs']} runs on {ev['workers']} process"
                        f"{'es' if ev['workers'] != 1 else ''}: {sizes}")
        elif kind == "run_start" and self.tty:
            slot = min(set(range(len(self.slots) + 1)) - set(self.slots.values()))
            self.slots[ev["run"]] = slot
            self.bars[ev["run"]] = tqdm(
                total=None, desc=f"{ev['label']} d={ev['distance']} seed {ev['seed']}",
                unit="step", position=slot, leave=False, file=self.stream, dynamic_ncols=True)
        elif kind == "run_step" and ev["run"] in self.bars:
            bar = self.bars[ev["run"]]
            if bar.total != ev["total_steps"]:
                bar.total = ev["total_steps"]
            bar.update(ev["step"] - bar.n)
            acc = "" if ev.get("acc") is None else f" acc {100 * ev['acc']:.0f}%"
            bar.set_postfix_str(f"loss {ev['loss']:.3f}{acc}", refresh=False)
        elif kind == "run_done":
            self._close(ev["run"])
            self.finished += 1
            r = ev["result"]
            g = r.get("g_first_over_last")
            diverged = "  DIVERGED: " + r["message"] if r.get("diverged") else ""
            self._write(f"[{self.finished}/{self.total}] {r['variant']} d={r['distance']} seed "
                        f"{r['seed']}: test {100 * r['test_acc']:.1f}% (val "
                        f"{100 * r['val_acc']:.1f}%), g_1/g_T "
                        f"{'-' if g is None else f'{g:.2g}'}, cue share "
                        f"{100 * r['cue_mass']:.0f}%, {r['seconds']:.1f} s{diverged}")

    def _close(self, run_id) -> None:
        bar = self.bars.pop(run_id, None)
        self.slots.pop(run_id, None)
        if bar is not None:
            bar.close()

    def close(self) -> None:
        for run_id in list(self.bars):
            self._close(run_id)


def accuracy_table_text(doc: dict) -> str:
    """The mean test accuracy per cell (rows) and distance (columns) as aligned text."""
    from core.memory_bench import accuracy_table

    rows = accuracy_table(doc)
    width = max([len("cell")] + [len(r[0]) for r in rows])
    head = f"{'cell':<{width}}" + "".join(f"{'d=' + str(d):>8}" for d in doc["distances"])
    lines = [head]
    for row in rows:
        cells = "".join(f"{'-' if v is None else f'{100 * v:.1f}%':>8}" for v in row[1:])
        lines.append(f"{row[0]:<{width}}{cells}")
    return "\n".join(lines)


def memory_command(out, *, cells=None, distances="4,8,12,16,20,24,28", seeds=3, hidden=None,
                   match="hidden", epochs=None, train_images=None, cue_height=4, noise=0.5,
                   activation="tanh", init="xavier", lr=None, workers=None,
                   stream=None) -> int:
    """`memory`: the memory bench (core.memory_bench) -> OUT/memory.json and its figures.

    ``out`` is locked for the whole bench. Ctrl-C: the running runs stop at their next step
    and the finished ones are written (memory.json says 'complete': false) -> exit 130."""
    from core import memory_bench as mb

    config = mb.BenchConfig(
        cells=tuple(c for c in cells.split(",")) if cells else (),
        distances=parse_int_list(distances, "--distances"), seeds=seeds,
        hidden=mb.BENCH_HIDDEN if hidden is None else hidden, match=match,
        epochs=mb.BENCH_EPOCHS if epochs is None else epochs, cue_height=cue_height,
        noise=noise, activation=activation, init=init, lr=mb.parse_lr(lr),
        n_train=mb.BENCH_SIZES["n_train"] if train_images is None else train_images)
    config.validate()
    if workers is not None and not 1 <= int(workers) <= 64:
        raise ConfigError(f"--workers {workers}: give 1 to 64 processes")
    out_dir = prepare_out_dir(out)
    with locked_out_dir(out_dir):
        progress = MemoryProgress(stream=stream)
        interrupted = {"flag": False}

        def on_sigint():
            interrupted["flag"] = True
            progress._write("memory: stopping after the running runs' current step "
                            "(Ctrl-C again to quit at once)")

        try:
            with sigint_calls(on_sigint):
                doc = mb.run_bench(config, workers=workers, progress=progress,
                                   should_stop=lambda: interrupted["flag"])
        finally:
            progress.close()
        from core.fileio import write_json_atomic
        from report.memory_figures import write_memory_figures  # matplotlib: only here

        write_json_atomic(out_dir / "memory.json", doc)
        paths = write_memory_figures(doc, out_dir)
    print(accuracy_table_text(doc))
    diverged = [r for r in doc["results"] if r.get("diverged")]
    if diverged:
        _stderr_line(f"warning: {len(diverged)} run(s) diverged (recorded with "
                     "\"diverged\": true); try a lower --lr for "
                     + ", ".join(sorted({r["variant"] for r in diverged})))
    print(f"{len(doc['results'])} runs in {doc['seconds']:.0f} s -> {out_dir / 'memory.json'}")
    for p in paths:
        print(p)
    if not doc["complete"]:
        _stderr_line(f"memory: interrupted — {len(doc['results'])} of "
                     f"{len(config.runs())} runs finished and written to "
                     f"{out_dir / 'memory.json'}")
        return EXIT_INTERRUPTED
    return EXIT_OK


# -- download -------------------------------------------------------------------------------------
def download_command(dest=None, stream=None) -> int:
    from core.download import download_cifar10

    stream = stream or sys.stderr
    cancelled = {"flag": False}
    bar = {"obj": None, "last": 0.0}

    def progress(done: int, total: int) -> None:
        if stream.isatty():
            if bar["obj"] is None:
                from tqdm.auto import tqdm

                bar["obj"] = tqdm(total=total or None, unit="B", unit_scale=True,
                                  unit_divisor=1024, desc="cifar-10-python.tar.gz", file=stream)
            b = bar["obj"]
            b.update(done - b.n)
        else:
            now = time.monotonic()
            if now - bar["last"] >= 5.0 or (total and done >= total):
                bar["last"] = now
                pct = f" ({100 * done / total:.0f}%)" if total else ""
                print(f"downloaded {done / 2**20:.1f} MiB{pct}", file=stream, flush=True)

    def cancel() -> bool:
        return cancelled["flag"]

    def on_sigint():
        cancelled["flag"] = True

    if dest is not None:
        dest = prepare_out_dir(dest, option="--dest")
    try:
        with sigint_calls(on_sigint):
            path = download_cifar10(dest_dir=dest, progress=progress, cancel=cancel)
    except DownloadCancelled:
        if bar["obj"] is not None:
            bar["obj"].close()
        print("download cancelled; nothing was kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if bar["obj"] is not None:
            bar["obj"].close()
    print(path)
    return EXIT_OK
