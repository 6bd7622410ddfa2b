"""Checkpoints: one ``.npz`` (no pickle) holding parameters, optimizer state and JSON metadata.

Layout of the archive (every entry a plain numeric array):

- ``param/<name>``  the model's parameters (e.g. ``param/W_hh``);
- ``opt/<key>``     the optimizer's array state (``opt/v/W_hh``, ``opt/m/W_hh`` ...);
- ``extra/<key>``   optional extra arrays (the trainer keeps the best parameters and the
  current epoch's permutation there, so a run resumes exactly);
- ``meta_json``     uint8 bytes of a UTF-8 JSON object: ``format``, ``version``, ``model_kind``,
  ``model_config``, ``normalizer`` (Normalizer.to_dict()), ``optimizer_scalars`` and whatever
  the caller put in ``meta`` (the trainer: step, epoch, RNG state, history, TrainConfig).

Writes are atomic (core.fileio.atomic_write): a temporary file in the same directory, fsync,
then ``os.replace`` — a crash or a full disk mid-write leaves the previous checkpoint intact
(a full disk is a one-line WriteError). Every read problem raises
:class:`core.errors.CheckpointError` with a one-line message naming the file.
"""

from __future__ import annotations

import json
import math
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.config import TrainConfig
from core.datasets import PROBE_DEFAULTS, Normalizer
from core.errors import CheckpointError, RnnscopeError
from core.fileio import atomic_write, json_text
from core.models import build_model
from core.optim import make_optimizer
from core.probe import check_params

FORMAT = "rnnscope-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: a ready model, its Normalizer, optimizer state, metadata, extras."""

    model: object
    normalizer: object
    optimizer_state: dict
    meta: dict
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def save_checkpoint(path, model, normalizer, optimizer_state: dict | None, meta: dict,
                    extra_arrays: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``path`` atomically; return it as a Path.

    model: has ``params`` (name -> array), ``config`` (JSON-able dict) and ``kind``.
    normalizer: has ``to_dict()`` (or None). optimizer_state: ``Optimizer.state_dict()``
    (arrays go to ``opt/<key>``, scalars into the JSON). meta: JSON-able dict.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    for name, p in model.params.items():
        arrays[f"param/{name}"] = np.asarray(p)
    scalars = {}
    for key, value in (optimizer_state or {}).items():
        if isinstance(value, np.ndarray):
            arrays[f"opt/{key}"] = value
        else:
            scalars[key] = value
    for key, value in (extra_arrays or {}).items():
        arrays[f"extra/{key}"] = np.asarray(value)
    full_meta = {
        "format": FORMAT,
        "version": VERSION,
        "model_kind": getattr(model, "kind", None),
        "model_config": getattr(model, "config", None),
        "normalizer": normalizer.to_dict() if normalizer is not None else None,
        "optimizer_scalars": scalars,
        **meta,
    }
    text = json_text(full_meta, separators=(",", ":"))
    arrays["meta_json"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: np.savez(f, **arrays), what="checkpoint")
    return path


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (a .npz), empty or not
_NPY_MAGIC = b"\x93NUMPY"
_RETRAIN = "use another checkpoint or retrain"


def _check_file_type(path: Path) -> None:
    """Refuse what is not a zip archive before numpy guesses (and suggests pickle loading).

    A path that is not a regular file (a FIFO, a device, a socket) is refused from its stat,
    before it is opened: opening a FIFO would wait for a writer forever.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc.strerror or exc}); "
                              "check the path") from None
    if stat.S_ISDIR(mode):
        raise CheckpointError(f"checkpoint {path} is a folder; give the .npz file "
                              "(e.g. best.npz or last.npz inside it)")
    if not stat.S_ISREG(mode):
        what = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                "a socket" if stat.S_ISSOCK(mode) else "not a file")
        raise CheckpointError(f"checkpoint {path} is not a regular file ({what}); give a "
                              "best.npz/last.npz written by rnnscope")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except PermissionError:
        raise CheckpointError(f"checkpoint {path} cannot be read (permission denied); fix its "
                              "permissions (e.g. chmod u+r) or copy it somewhere readable"
                              ) from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc.strerror or exc}); "
                              "check the file or use another checkpoint") from None
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes), not a checkpoint (a run cut off "
                              "while writing it?); use another checkpoint or retrain")
    if head[:4] in _ZIP_MAGIC:
        return
    if head.startswith(_NPY_MAGIC):
        what = "a single .npy array, not an .npz archive"
    elif head.startswith(b"\x80"):
        what = "a Python pickle, not an .npz archive"
    elif all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        what = "a text file, not an .npz archive"
    else:
        what = "not an .npz archive"
    raise CheckpointError(f"{path} is not an rnnscope checkpoint ({what}); give a "
                          "best.npz/last.npz written by rnnscope")


def _one_line(exc: BaseException, limit: int = 160) -> str:
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


class _Invalid(Exception):
    """One part of a checkpoint has the wrong type, shape or value (message: which and why)."""


def _read_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One zip entry as a numeric array, checked before anything is allocated.

    The header's shape and dtype must account for exactly the entry's bytes (so a damaged
    header cannot ask for terabytes), the dtype must be plain numbers (no objects, text or
    records) and the whole entry is read, so the zip CRC is checked.
    """
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
        if dtype.hasobject or dtype.kind not in "biuf":
            raise ValueError(f"it holds {dtype} data, not numbers")
        count = math.prod(shape)
        expected = count * dtype.itemsize
        available = info.file_size - f.tell()
        if expected != available:
            raise ValueError(f"its header declares {dtype} {tuple(shape)} ({expected:,} bytes) "
                             f"but it holds {available:,} bytes")
        data = f.read()
    if len(data) != expected:
        raise ValueError("it is cut short")
    arr = np.frombuffer(bytearray(data), dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C")


def _read_entries(path: Path) -> dict[str, np.ndarray]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupted or truncated: "
                              f"{_one_line(exc)}); {_RETRAIN}") from None
    arrays: dict[str, np.ndarray] = {}
    with zf:
        for info in zf.infolist():
            key = info.filename.removesuffix(".npy")
            try:
                if not info.filename.endswith(".npy"):
                    raise ValueError("it is not a .npy file")
                arrays[key] = _read_npy(zf, info)
            except Exception as exc:  # parsing untrusted bytes: every failure is a bad file
                raise CheckpointError(f"{path} is damaged: entry {key} is not a valid .npy array "
                                      f"({_one_line(exc)}); {_RETRAIN}") from None
    return arrays


def read_checkpoint_arrays(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and check the archive only: (meta, arrays by full key). CheckpointError on any fault.

    Every metadata field rnnscope writes is type- and range-checked when present (see
    :func:`check_metadata`); whether the arrays fit a model is checked by
    :func:`load_checkpoint`.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    _check_file_type(path)
    arrays = _read_entries(path)
    if "meta_json" not in arrays:
        raise CheckpointError(f"{path} is not an rnnscope checkpoint (no meta_json "
                              "entry); give a best.npz/last.npz written by rnnscope")
    raw = arrays.pop("meta_json")
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError("not bytes")
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{path} has corrupted metadata (meta_json is not JSON); use "
                              "another checkpoint or retrain") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rnnscope checkpoint (unknown metadata format)")
    version = meta.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path} has corrupted metadata (version {version!r} is not a "
                              "number); use another checkpoint or retrain")
    if version > VERSION:
        raise CheckpointError(f"{path} was written by a newer rnnscope (checkpoint version "
                              f"{version}); update rnnscope")
    try:
        check_metadata(meta)
    except _Invalid as exc:
        raise CheckpointError(f"{path} has corrupted metadata: {exc}; {_RETRAIN}") from None
    return meta, arrays


# --------------------------------------------------------------------------- metadata checks

def _show(value) -> str:
    if isinstance(value, str):
        return f"{value[:40]!r} (text)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if value is None:
        return "missing (null)"
    return repr(value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _integer(value, where: str, lo: int = 0, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if not (_is_int(value) and value >= lo):
        raise _Invalid(f"{where} is {_show(value)}, expected an integer >= {lo}")


def _number(value, where: str, lo: float | None = None, hi: float | None = None,
            none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if not (_is_number(value) and (lo is None or value >= lo) and (hi is None or value <= hi)):
        if lo is not None and hi is not None:
            want = f"a number in [{lo:g}, {hi:g}]"
        elif lo is not None:
            want = f"a finite number >= {lo:g}"
        else:
            want = "a finite number"
        raise _Invalid(f"{where} is {_show(value)}, expected {want}")


def _boolean(value, where: str) -> None:
    if not isinstance(value, bool):
        raise _Invalid(f"{where} is {_show(value)}, expected true or false")


def _text(value, where: str, none_ok: bool = True) -> None:
    if value is None and none_ok:
        return
    if not isinstance(value, str):
        raise _Invalid(f"{where} is {_show(value)}, expected text")


def _mapping(value, where: str, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if not isinstance(value, dict):
        raise _Invalid(f"{where} is {_show(value)}, expected a mapping")


def _listing(value, where: str) -> None:
    if not isinstance(value, list):
        raise _Invalid(f"{where} is {_show(value)}, expected a list")


_STAT_SHAPES = {"per-channel": (3,), "per-pixel": (32, 32, 3)}  # mean/std of a 32x32 RGB set


def _check_normalizer(d) -> None:
    """The Normalizer.to_dict() fields: a known kind and, unless 'unit', finite statistics of
    the kind's shape with positive standard deviations."""
    _mapping(d, "normalizer")
    kind = d.get("kind")
    if kind not in (*_STAT_SHAPES, "unit"):
        raise _Invalid(f"normalizer.kind is {_show(kind)}, expected one of "
                       f"{', '.join((*_STAT_SHAPES, 'unit'))}")
    if kind == "unit":
        return
    for key in ("mean", "std"):
        where = f"normalizer.{key}"
        try:
            stats = np.asarray(d.get(key), dtype=np.float64)
        except (TypeError, ValueError):
            raise _Invalid(f"{where} is not an array of numbers") from None
        if stats.shape != _STAT_SHAPES[kind]:
            raise _Invalid(f"{where} has shape {stats.shape}, '{kind}' normalisation needs "
                           f"{_STAT_SHAPES[kind]}")
        if not np.all(np.isfinite(stats)):
            raise _Invalid(f"{where} holds NaN/inf or a missing value")
        if key == "std" and not np.all(stats > 0):
            raise _Invalid(f"{where} holds a standard deviation <= 0")


_OPTIMIZER_SCALARS = {
    "sgd": ("lr",),
    "momentum": ("lr", "momentum", "nesterov"),
    "nesterov": ("lr", "momentum", "nesterov"),
    "adam": ("lr", "beta1", "beta2", "eps", "t"),
}


def _check_optimizer_scalars(scalars) -> None:
    _mapping(scalars, "optimizer_scalars")
    if not scalars:
        return  # a checkpoint without optimizer state (a model on its own)
    name = scalars.get("name")
    if name not in _OPTIMIZER_SCALARS:
        raise _Invalid(f"optimizer_scalars.name is {_show(name)}, expected one of "
                       f"{', '.join(_OPTIMIZER_SCALARS)}")
    for key in scalars:
        if "/" in key:
            raise _Invalid(f"optimizer_scalars holds {key}, which must be an array entry")
    needed = _OPTIMIZER_SCALARS[name]
    for key in needed:
        where = f"optimizer_scalars.{key}"
        if key not in scalars:
            raise _Invalid(f"{where} is missing ({name} needs {', '.join(needed)})")
        value = scalars[key]
        if key in ("lr", "eps") and not (_is_number(value) and value > 0):
            raise _Invalid(f"{where} is {_show(value)}, expected a number > 0")
        if key in ("momentum", "beta1", "beta2") and not (_is_number(value) and 0 <= value < 1):
            raise _Invalid(f"{where} is {_show(value)}, expected a number in [0, 1)")
        if key == "nesterov":
            _boolean(value, where)
        if key == "t":
            _integer(value, where)


def _records(history: dict, key: str):
    """(place, record) for each record of ``history[key]``, a list of mappings that each hold
    an integer ``step`` and an ``epoch`` >= 0 (checked here; the rest by the caller)."""
    records = history.get(key)
    if records is None:
        return
    _listing(records, f"history.{key}")
    for i, record in enumerate(records):
        where = f"history.{key}[{i}]"
        _mapping(record, where)
        _integer(record.get("step"), f"{where}.step")
        _number(record.get("epoch"), f"{where}.epoch", lo=0.0)
        yield where, record


def _check_history(history) -> None:
    _mapping(history, "history")
    for key in ("config", "data", "finished"):
        _mapping(history.get(key), f"history.{key}", none_ok=True)
    _integer(history.get("steps_per_epoch"), "history.steps_per_epoch", lo=1, none_ok=True)
    for where, s in _records(history, "steps"):
        _number(s.get("loss"), f"{where}.loss")
        _number(s.get("acc"), f"{where}.acc", 0.0, 1.0, none_ok=True)
        _number(s.get("lr"), f"{where}.lr", none_ok=True)
        _number(s.get("grad_norm"), f"{where}.grad_norm", none_ok=True)
        if "clip_fired" in s:
            _boolean(s["clip_fired"], f"{where}.clip_fired")
    for where, e in _records(history, "evals"):
        for key in ("train_loss", "val_loss"):
            _number(e.get(key), f"{where}.{key}", none_ok=True)
        for key in ("train_acc", "val_acc"):
            _number(e.get(key), f"{where}.{key}", 0.0, 1.0, none_ok=True)
        if "best" in e:
            _boolean(e["best"], f"{where}.best")
    rows = history.get("dh_norm")
    if rows is not None:
        _listing(rows, "history.dh_norm")
        width = None
        for i, row in enumerate(rows):
            where = f"history.dh_norm[{i}]"
            if not (isinstance(row, list) and len(row) == 2 and _is_int(row[0])
                    and isinstance(row[1], list)):
                raise _Invalid(f"{where} is {_show(row)}, expected [step, [norm per timestep]]")
            if not all(v is None or _is_number(v) for v in row[1]):
                raise _Invalid(f"{where} holds a norm that is not a number")
            if width is not None and len(row[1]) != width:
                raise _Invalid(f"{where} has {len(row[1])} timesteps, the rows before {width}")
            width = len(row[1])


_PROBE_INTEGERS = ("n_train", "n_val", "n_test", "cue_row", "cue_height", "seed")


def _check_data(data) -> None:
    _mapping(data, "data")
    for key in ("name", "description"):
        _text(data.get(key), f"data.{key}")
    for key in ("n_train", "n_val", "n_test"):
        _integer(data.get(key), f"data.{key}", none_ok=True)
    info = data.get("info")
    _mapping(info, "data.info", none_ok=True)
    probe = (info or {}).get("probe")
    if probe is None:
        return
    _mapping(probe, "data.info.probe")
    for key in _PROBE_INTEGERS:
        if key in probe:
            _integer(probe[key], f"data.info.probe.{key}", lo=0)
    if "noise" in probe:
        _number(probe["noise"], "data.info.probe.noise", 0.0, 1.0)
    p = {**PROBE_DEFAULTS, **probe}
    try:
        for what in ("n_train", "n_val", "n_test"):
            check_params(p[what], p["cue_row"], p["cue_height"], p["noise"], what)
    except RnnscopeError as exc:
        raise _Invalid(f"data.info.probe: {exc}") from None


# the architecture fields a TrainConfig and the model's own config must agree on
_ARCHITECTURE = (("hidden_dim", "hidden"), ("activation", "activation"),
                 ("bptt_window", "bptt_window"), ("dtype", "dtype"))


def _check_train_config(meta: dict) -> None:
    value = meta["train_config"]
    _mapping(value, "train_config")
    try:
        cfg = TrainConfig.from_dict(value)
    except Exception as exc:  # a ConfigError, or a value validate() cannot even compare
        raise _Invalid(f"train_config: {_one_line(exc, 400)}") from None
    kind = meta.get("model_kind")
    if kind is not None and cfg.model != kind:
        raise _Invalid(f"train_config.model is {cfg.model!r} but the parameters are of a "
                       f"{kind} model")
    model_config = meta.get("model_config")
    if isinstance(model_config, dict):
        wanted = cfg.model_kwargs()
        wanted["dtype"] = np.dtype(wanted["dtype"]).name
        pairs = list(_ARCHITECTURE)
        if cfg.model == "cnn-rnn":
            wanted["channels"] = list(wanted["channels"])
            pairs.append(("channels", "channels"))
        for model_key, option in pairs:
            have = model_config.get(model_key)
            if isinstance(have, (list, tuple)):
                have = list(have)
            if model_key in model_config and have != wanted[model_key]:
                raise _Invalid(f"train_config.{option} is {wanted[model_key]!r} but the model "
                               f"was built with {model_key} {have!r}")
    scalars = meta.get("optimizer_scalars")
    name = scalars.get("name") if isinstance(scalars, dict) else None
    if name is not None and name != cfg.optimizer:
        raise _Invalid(f"optimizer_scalars.name is {name!r} but train_config.optimizer is "
                       f"{cfg.optimizer!r}")


def _check_rng_state(value) -> None:
    _mapping(value, "rng_state")
    try:
        np.random.PCG64().state = value  # what Trainer's np.random.default_rng uses
    except Exception as exc:  # a state for another generator, or garbled numbers
        raise _Invalid(f"rng_state is not a usable random generator state "
                       f"({_one_line(exc)})") from None


def check_metadata(meta: dict) -> None:
    """Type- and range-check every field rnnscope writes, where present; raises _Invalid.

    Fields other code may add are left alone. What a resume additionally needs (the fields
    being present, the arrays fitting the model) is :func:`validate_training_state`'s job.
    """
    _text(meta.get("model_kind"), "model_kind")
    _mapping(meta.get("model_config"), "model_config", none_ok=True)
    if meta.get("normalizer") is not None:
        _check_normalizer(meta["normalizer"])
    if "optimizer_scalars" in meta:
        _check_optimizer_scalars(meta["optimizer_scalars"])
    for key in ("step", "epoch_index", "pos", "last_eval_step", "evals_since_best"):
        _integer(meta.get(key), key, none_ok=key not in meta)
    _integer(meta.get("best_step"), "best_step", none_ok=True)
    step = meta.get("step")
    for key in ("last_eval_step", "best_step"):
        if _is_int(step) and _is_int(meta.get(key)) and meta[key] > step:
            raise _Invalid(f"{key} is {meta[key]}, after the checkpoint's step {step}")
    pos, data = meta.get("pos"), meta.get("data")
    n_train = data.get("n_train") if isinstance(data, dict) else None
    if _is_int(pos) and _is_int(n_train) and pos >= max(n_train, 1):
        raise _Invalid(f"pos is {pos}, beyond the {n_train} training images of data.n_train")
    for key in ("epoch", "seconds"):
        if key in meta:
            _number(meta[key], key, lo=0.0)
    if "eval_pending" in meta:
        _boolean(meta["eval_pending"], "eval_pending")
    _number(meta.get("best_val_acc"), "best_val_acc", 0.0, 1.0, none_ok=True)
    if "params_are" in meta and meta["params_are"] not in ("best", "current", "last_good"):
        raise _Invalid(f"params_are is {_show(meta['params_are'])}, expected 'best', 'current' or "
                       "'last_good'")
    if "rng_state" in meta:
        _check_rng_state(meta["rng_state"])
    if "history" in meta:
        _check_history(meta["history"])
    if "data" in meta:
        _check_data(meta["data"])
    if "train_config" in meta:
        _check_train_config(meta)


# --------------------------------------------------------------------------- datasets

DATASET_LABELS = {"cifar10": "CIFAR-10", "probe": "the memory-probe task"}
_DATASET_HINTS = {"cifar10": "--data PATH (the CIFAR-10 tarball or its folder)",
                  "probe": "--data probe"}


def checkpoint_dataset(meta: dict) -> str | None:
    """The data set a checkpoint was trained on: 'cifar10' | 'probe' (None if not recorded)."""
    data = meta.get("data")
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def check_dataset(meta: dict, dataset: str | None, path) -> None:
    """CheckpointError if the checkpoint was trained on another data set than ``dataset``.

    ``dataset``: 'cifar10' | 'probe' (what the user is about to evaluate, report or resume on);
    None, or a checkpoint that does not record its data set, passes.
    """
    trained = checkpoint_dataset(meta)
    if dataset is None or trained is None or trained == dataset:
        return
    label = DATASET_LABELS.get
    hint = _DATASET_HINTS.get(trained, "the data set it was trained on")
    raise CheckpointError(f"{path} was trained on {label(trained, trained)}, not "
                          f"{label(dataset, dataset)}; use it with {hint}")


# --------------------------------------------------------------------------- loading

def _load_normalizer(d: dict, path: Path):
    """The Normalizer of ``d`` (already checked by :func:`check_metadata`)."""
    try:
        return Normalizer.from_dict(d)
    except Exception as exc:
        raise CheckpointError(f"{path}: its normalisation statistics cannot be read "
                              f"({_one_line(exc)}); {_RETRAIN}") from None


def _check_param_arrays(arrays: dict[str, np.ndarray], model, what: str, path: Path) -> None:
    """Each of ``arrays`` (name -> array) is a finite float array of its parameter's shape, and
    they cover every parameter of ``model`` and nothing else."""
    kind = getattr(model, "kind", None)
    if set(arrays) != set(model.params):
        missing = sorted(set(model.params) - set(arrays))
        extra = sorted(set(arrays) - set(model.params))
        raise CheckpointError(f"{path}: its {what} do not match a {kind} model (missing "
                              f"{missing}, unexpected {extra}); it was written for another "
                              "architecture or is damaged")
    for name, arr in arrays.items():
        target = model.params[name]
        if arr.shape != target.shape:
            raise CheckpointError(f"{path}: {what[:-1]} {name} has shape {arr.shape}, the "
                                  f"{kind} model needs {target.shape}; wrong architecture or a "
                                  "damaged file")
        if arr.dtype.kind != "f":
            raise CheckpointError(f"{path}: {what[:-1]} {name} holds {arr.dtype} values, not "
                                  f"floating point; {_RETRAIN}")
        if not np.all(np.isfinite(arr)):
            raise CheckpointError(f"{path}: {what[:-1]} {name} holds NaN/inf; the checkpoint "
                                  "is unusable")


def load_checkpoint(path, expect_kind: str | None = None,
                    expect_data: str | None = None) -> Checkpoint:
    """Load ``path`` into a fresh model; CheckpointError (one line) on any problem.

    expect_kind: 'row-rnn' | 'cnn-rnn' | None; a checkpoint of another kind is refused.
    expect_data: 'cifar10' | 'probe' | None; a checkpoint trained on the other data set is
    refused (see :func:`check_dataset`). Everything the file holds is checked, not only what a
    view of the model needs: the metadata (:func:`check_metadata`), the parameters, the kept
    best parameters and the optimizer state against the model.
    """
    path = Path(path)
    meta, arrays = read_checkpoint_arrays(path)
    check_dataset(meta, expect_data, path)
    kind = meta.get("model_kind")
    if expect_kind is not None and kind != expect_kind:
        raise CheckpointError(f"{path} holds a {kind} model, not a {expect_kind}; choose a "
                              f"{expect_kind} checkpoint or switch the model to {kind}")
    config = meta.get("model_config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} has no model configuration; it cannot be loaded")
    try:
        model = build_model(config)
    except Exception as exc:  # a config this version cannot build
        raise CheckpointError(f"{path}: cannot rebuild its {kind} model "
                              f"({str(exc).splitlines()[0] if str(exc) else exc!r})") from None
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    _check_param_arrays(params, model, "parameters", path)
    for name, arr in params.items():
        model.params[name][...] = arr
    best = {k[len("extra/best/"):]: v for k, v in arrays.items()
            if k.startswith("extra/best/")}
    if best:
        _check_param_arrays(best, model, "best parameters", path)
    normalizer = None
    if meta.get("normalizer") is not None:
        normalizer = _load_normalizer(meta["normalizer"], path)
    opt_state = dict(meta.get("optimizer_scalars") or {})
    for k, v in arrays.items():
        if k.startswith("opt/"):
            opt_state[k[len("opt/"):]] = v
    if opt_state:
        _check_optimizer_state(opt_state, model, path)
    extra = {k[len("extra/"):]: v for k, v in arrays.items() if k.startswith("extra/")}
    return Checkpoint(model, normalizer, opt_state, meta, extra)


def _check_optimizer_state(opt_state: dict, model, path: Path) -> None:
    """Load the state into a throw-away optimizer of its kind, against the model's parameters."""
    name = opt_state.get("name")
    if name is None:
        raise CheckpointError(f"{path} holds optimizer arrays but no optimizer_scalars; "
                              f"{_RETRAIN}")
    try:
        optimizer = make_optimizer(name, 1.0, nesterov=name == "nesterov")
        optimizer.load_state_dict(opt_state, params=model.params)
    except RnnscopeError as exc:
        raise CheckpointError(f"{path}: {exc}; {_RETRAIN}") from None


def validate_training_state(ck: Checkpoint, path) -> None:
    """CheckpointError unless ``ck`` (from :func:`load_checkpoint`) holds a complete training
    state that resumes exactly: the trainer's fields are present, its optimizer state covers
    every parameter, and mid-epoch its shuffling order is a permutation of the training set.

    Types and ranges were checked on loading; this checks what a resume needs in addition.
    """
    path = Path(path)
    meta = ck.meta
    state_keys = ("train_config", "rng_state", "step", "epoch_index", "pos", "history")
    present = [k for k in state_keys if k in meta]
    if not present:
        raise CheckpointError(f"{path} holds a model but no training state; it cannot be "
                              "resumed (start a new run instead)")
    missing = [k for k in state_keys if k not in meta]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}, part of its training "
                              "state; it cannot be resumed (start a new run, or resume from "
                              "another checkpoint)")
    history = meta["history"]
    lacking = [k for k in ("steps", "evals", "dh_norm") if k not in history]
    if lacking:
        raise CheckpointError(f"{path}: its history lacks {', '.join(lacking)}; it cannot be "
                              f"resumed ({_RETRAIN})")
    if not meta.get("optimizer_scalars"):
        raise CheckpointError(f"{path} holds no optimizer state; it cannot be resumed exactly "
                              "(start a new run instead)")
    slot_arrays = [k for k in ck.optimizer_state if "/" in k]
    if meta["step"] > 0 and not slot_arrays and meta["optimizer_scalars"]["name"] != "sgd":
        raise CheckpointError(f"{path} holds no optimizer moments after {meta['step']} steps; "
                              f"it cannot be resumed exactly ({_RETRAIN})")
    n_train = (meta.get("data") or {}).get("n_train")
    pos = meta["pos"]
    perm = ck.extra.get("perm")
    if pos > 0:
        if perm is None:
            raise CheckpointError(f"{path} is missing the epoch's shuffling order; it cannot "
                                  "be resumed exactly")
        n = n_train if n_train is not None else len(perm)
        if perm.ndim != 1 or perm.dtype.kind not in "iu" or len(perm) != n \
                or not np.array_equal(np.sort(perm), np.arange(n)):
            raise CheckpointError(f"{path}: its shuffling order (extra/perm, {perm.dtype} "
                                  f"{perm.shape}) is not a permutation of its {n} training "
                                  f"images; {_RETRAIN}")
