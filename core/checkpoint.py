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
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.datasets import Normalizer
from core.errors import CheckpointError
from core.fileio import atomic_write, json_text
from core.models import build_model

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


def _check_file_type(path: Path) -> None:
    """Refuse what is not a zip archive before numpy guesses (and suggests pickle loading)."""
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


def read_checkpoint_arrays(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and check the archive only: (meta, arrays by full key). CheckpointError on any fault."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; give the .npz file "
                              "(e.g. best.npz or last.npz inside it)")
    _check_file_type(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            if "meta_json" not in keys:
                raise CheckpointError(f"{path} is not an rnnscope checkpoint (no meta_json "
                                      "entry); give a best.npz/last.npz written by rnnscope")
            arrays = {k: z[k] for k in keys}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError,
            AttributeError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupted or truncated: "
                              f"{reason}); use another checkpoint or retrain") from None
    try:
        meta = json.loads(arrays.pop("meta_json").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
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
    return meta, arrays


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


def load_checkpoint(path, expect_kind: str | None = None,
                    expect_data: str | None = None) -> Checkpoint:
    """Load ``path`` into a fresh model; CheckpointError (one line) on any problem.

    expect_kind: 'row-rnn' | 'cnn-rnn' | None; a checkpoint of another kind is refused.
    expect_data: 'cifar10' | 'probe' | None; a checkpoint trained on the other data set is
    refused (see :func:`check_dataset`).
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
    if set(params) != set(model.params):
        missing = sorted(set(model.params) - set(params))
        extra = sorted(set(params) - set(model.params))
        raise CheckpointError(f"{path} does not match a {kind} model (missing {missing}, "
                              f"unexpected {extra}); it was written for another architecture")
    for name, arr in params.items():
        target = model.params[name]
        if arr.shape != target.shape:
            raise CheckpointError(f"{path}: parameter {name} has shape {arr.shape}, the "
                                  f"{kind} model needs {target.shape}; wrong architecture")
        if not np.all(np.isfinite(arr)):
            raise CheckpointError(f"{path}: parameter {name} holds NaN/inf; the checkpoint is "
                                  "unusable")
        target[...] = arr
    normalizer = None
    if meta.get("normalizer") is not None:
        try:
            normalizer = Normalizer.from_dict(meta["normalizer"])
        except Exception as exc:
            raise CheckpointError(f"{path}: its normalisation statistics cannot be read "
                                  f"({exc!r})") from None
    opt_state = dict(meta.get("optimizer_scalars") or {})
    for k, v in arrays.items():
        if k.startswith("opt/"):
            opt_state[k[len("opt/"):]] = v
    extra = {k[len("extra/"):]: v for k, v in arrays.items() if k.startswith("extra/")}
    return Checkpoint(model, normalizer, opt_state, meta, extra)
