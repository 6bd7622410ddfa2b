"""Damaged checkpoints through the command line: one `error: ...` line and exit 1, never a
traceback, whether the checkpoint is evaluated or resumed.

Every case starts from a real mid-epoch ``last.npz`` (a tiny row-RNN on the probe task,
stopped after 3 steps, so it holds the epoch's permutation, the best parameters, optimizer
moments and a history) and breaks one part of it: a metadata field of the wrong type or out of
range, a zip entry that is not a valid ``.npy``, parameters, best parameters or optimizer state
of the wrong shape or NaN. The good checkpoint itself evaluates and resumes (first test), so each
refusal is caused by the one broken part.
"""

from __future__ import annotations

import io
import json
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import main as cli
from core.checkpoint import save_checkpoint
from core.config import TrainConfig
from core.datasets import load_data
from core.trainer import Trainer

SUBSET = 300


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A real last.npz written mid-epoch: step 3 of 6, evaluated at step 2."""
    folder = tmp_path_factory.mktemp("run")
    splits = load_data("probe", subset=SUBSET, seed=0)
    cfg = TrainConfig(model="row-rnn", hidden=8, optimizer="adam", lr=5e-3, batch_size=50,
                      epochs=2, eval_every=2, subset=SUBSET, seed=0, workers=1)
    trainer = Trainer(cfg, splits, checkpoint_dir=folder)
    for ev in trainer.events():
        if ev["type"] == "step" and ev["step"] == 3:
            trainer.cancel()
    path = folder / "last.npz"
    with np.load(path) as z:
        assert "extra/perm" in z.files and "extra/best/W_hh" in z.files
        assert "opt/m/W_hh" in z.files
    return path


def _entries(path) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(arrays.pop("meta_json").tobytes()), arrays


def _write(path, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """An .npz as numpy writes it (json.dumps lets NaN through, as a hand edit might)."""
    np.savez(path, **arrays, meta_json=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    return path


def _broken(good, tmp_path, meta_edit=None, arrays_edit=None) -> Path:
    meta, arrays = _entries(good)
    if meta_edit is not None:
        meta_edit(meta)
    if arrays_edit is not None:
        arrays_edit(arrays)
    return _write(tmp_path / "broken.npz", meta, arrays)


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def refused(capsys, argv, *fragments) -> str:
    code, out, err = run(capsys, *argv)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 1 and len(lines) == 1, (code, out, err)
    for frag in fragments:
        assert frag in lines[0], f"{frag!r} not in {lines[0]!r}"
    return lines[0]


def evaluate(path):
    return ["evaluate", "--checkpoint", path, "--data", "probe"]


def resume(path, out):
    return ["train", "--resume", path, "--data", "probe", "--out", out]


def test_the_good_checkpoint_evaluates_and_resumes(good, tmp_path, capsys):
    code, out, _ = run(capsys, *evaluate(good))
    assert code == 0 and "accuracy" in out
    copy = _broken(good, tmp_path)  # rewritten by numpy, unchanged: still accepted
    code, _, err = run(capsys, *resume(copy, tmp_path / "out"))
    assert code == 0 and "resuming" in err and "at step 3" in err


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(meta):
        d = meta
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value(d[keys[-1]]) if callable(value) else value
    return edit


def _delete(*keys):
    def edit(meta):
        d = meta
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return edit


NAN = float("nan")

# (case id, metadata edit, words the error line must hold)
META_CASES = [
    ("step-text", _set("step", "3"), ["step"]),
    ("step-negative", _set("step", -1), ["step"]),
    ("step-fraction", _set("step", 2.5), ["step"]),
    ("step-bool", _set("step", True), ["step"]),
    ("epoch-index-negative", _set("epoch_index", -1), ["epoch_index"]),
    ("epoch-text", _set("epoch", "one"), ["epoch"]),
    ("pos-beyond-the-data", _set("pos", 10 ** 6), ["pos"]),
    ("pos-text", _set("pos", "150"), ["pos"]),
    ("seconds-nan", _set("seconds", NAN), ["seconds"]),
    ("seconds-negative", _set("seconds", -4.0), ["seconds"]),
    ("eval-pending-text", _set("eval_pending", "no"), ["eval_pending"]),
    ("last-eval-after-step", _set("last_eval_step", 99), ["last_eval_step"]),
    ("evals-since-best-negative", _set("evals_since_best", -2), ["evals_since_best"]),
    ("best-acc-text", _set("best_val_acc", "0.3"), ["best_val_acc"]),
    ("best-acc-above-one", _set("best_val_acc", 1.5), ["best_val_acc"]),
    ("best-acc-nan", _set("best_val_acc", NAN), ["best_val_acc"]),
    ("best-step-text", _set("best_step", "2"), ["best_step"]),
    ("params-are-number", _set("params_are", 1), ["params_are"]),
    ("rng-state-text", _set("rng_state", "seed 0"), ["rng_state"]),
    ("rng-state-garbled", _set("rng_state", "state", {"state": "x", "inc": 1}), ["rng_state"]),
    ("history-text", _set("history", "none"), ["history"]),
    ("history-steps-text", _set("history", "steps", "many"), ["history", "steps"]),
    ("history-step-not-a-dict", _set("history", "steps", [1, 2]), ["history", "steps"]),
    ("history-step-loss-text", _set("history", "steps", lambda s: [{**s[0], "loss": "high"}]),
     ["history", "loss"]),
    ("history-step-number-missing", _set("history", "steps", lambda s: [{"loss": 2.3}]),
     ["history", "step"]),
    ("history-evals-acc-text", _set("history", "evals", lambda e: [{**e[0], "val_acc": "x"}]),
     ["history", "val_acc"]),
    ("history-dh-norm-row-text", _set("history", "dh_norm", [[1, "abc"]]),
     ["history", "dh_norm"]),
    ("history-dh-norm-ragged", _set("history", "dh_norm", lambda d: [d[0], [2, [1.0, 2.0]]]),
     ["history", "dh_norm"]),
    ("history-dh-norm-bare-number", _set("history", "dh_norm", [5]), ["history", "dh_norm"]),
    ("data-text", _set("data", "probe"), ["data"]),
    ("data-name-number", _set("data", "name", 5), ["data", "name"]),
    ("data-n-train-text", _set("data", "n_train", "300"), ["data", "n_train"]),
    ("data-probe-cue-row-text", _set("data", "info", "probe", "cue_row", "x"),
     ["data", "cue_row"]),
    ("data-probe-cue-row-out-of-range", _set("data", "info", "probe", "cue_row", 40),
     ["cue_row"]),
    ("train-config-text", _set("train_config", "adam"), ["train_config"]),
    ("train-config-lr-text", _set("train_config", "lr", "fast"), ["train_config", "lr"]),
    ("train-config-unknown-option", _set("train_config", "colour", "red"),
     ["train_config", "colour"]),
    ("train-config-other-model", _set("train_config", "model", "cnn-rnn"),
     ["train_config", "cnn-rnn", "row-rnn"]),
    ("train-config-other-hidden-size", _set("train_config", "hidden", 16),
     ["train_config", "hidden"]),
    ("optimizer-scalars-text", _set("optimizer_scalars", "adam"), ["optimizer"]),
    ("optimizer-lr-text", _set("optimizer_scalars", "lr", "x"), ["optimizer", "lr"]),
    ("optimizer-t-negative", _set("optimizer_scalars", "t", -1), ["optimizer", "t"]),
    ("optimizer-t-fraction", _set("optimizer_scalars", "t", 1.5), ["optimizer", "t"]),
    ("optimizer-t-missing", _delete("optimizer_scalars", "t"), ["optimizer", "t"]),
    ("optimizer-beta1-above-one", _set("optimizer_scalars", "beta1", 1.5),
     ["optimizer", "beta1"]),
    ("optimizer-name-unknown", _set("optimizer_scalars", "name", "rmsprop"),
     ["optimizer", "rmsprop"]),
    ("optimizer-name-not-the-configs", _set("optimizer_scalars", "name", "sgd"),
     ["optimizer", "sgd", "adam"]),
    ("optimizer-array-key-in-scalars", _set("optimizer_scalars", "m/W_hh", 1.0),
     ["optimizer", "m/W_hh"]),
    ("normalizer-text", _set("normalizer", "per-channel"), ["normali"]),
    ("normalizer-std-zero", _set("normalizer", "std", [0.0, 1.0, 1.0]), ["normali"]),
    ("normalizer-mean-nan", _set("normalizer", "mean", [NAN, 1.0, 1.0]), ["normali"]),
    ("normalizer-mean-wrong-shape", _set("normalizer", "mean", [1.0, 2.0]), ["normali"]),
    ("normalizer-kind-unknown", _set("normalizer", "kind", "z-score"), ["normali"]),
    ("normalizer-std-missing", _set("normalizer", "std", None), ["normali"]),
    ("model-kind-number", _set("model_kind", 5), ["model"]),
]


@pytest.mark.parametrize("edit, fragments", [c[1:] for c in META_CASES],
                         ids=[c[0] for c in META_CASES])
def test_metadata_of_the_wrong_type_or_range(good, tmp_path, capsys, edit, fragments):
    bad = _broken(good, tmp_path, meta_edit=edit)
    for argv in (evaluate(bad), resume(bad, tmp_path / "out")):
        refused(capsys, argv, str(bad), *fragments)
    assert not (tmp_path / "out" / "last.npz").exists()


def _drop_optimizer_arrays(arrays):
    for key in [k for k in arrays if k.startswith("opt/")]:
        del arrays[key]


# parts a resume needs but a view of the model does not: evaluate accepts, resume refuses
# (case id, metadata edit, arrays edit, words the error line must hold)
RESUME_ONLY_CASES = [
    ("no-history-steps", _delete("history", "steps"), None, ["history", "steps"]),
    ("no-history", _delete("history"), None, ["history"]),
    ("no-step", _delete("step"), None, ["step"]),
    ("no-rng-state", _delete("rng_state"), None, ["rng_state"]),
    ("no-optimizer-state", _set("optimizer_scalars", {}), _drop_optimizer_arrays,
     ["optimizer"]),
]


@pytest.mark.parametrize("meta_edit, arrays_edit, fragments", [c[1:] for c in RESUME_ONLY_CASES],
                         ids=[c[0] for c in RESUME_ONLY_CASES])
def test_training_state_missing_a_part(good, tmp_path, capsys, meta_edit, arrays_edit,
                                       fragments):
    bad = _broken(good, tmp_path, meta_edit=meta_edit, arrays_edit=arrays_edit)
    code, out, _ = run(capsys, *evaluate(bad))
    assert code == 0 and "accuracy" in out
    refused(capsys, resume(bad, tmp_path / "out"), str(bad), *fragments)


def _array(key, fn):
    def edit(arrays):
        arrays[key] = fn(arrays[key])
    return edit


def _drop(key):
    def edit(arrays):
        del arrays[key]
    return edit


def _add(key, value):
    def edit(arrays):
        arrays[key] = value
    return edit


def _with_nan(a):
    a = a.copy()
    a.flat[0] = np.nan
    return a


ARRAY_CASES = [
    ("param-text", _array("param/W_hh", lambda a: a.astype("U8")), ["W_hh"]),
    ("param-integers", _array("param/W_hh", lambda a: a.astype(np.int64)), ["W_hh"]),
    ("best-nan", _array("extra/best/W_hh", _with_nan), ["best", "W_hh", "NaN"]),
    ("best-wrong-shape", _array("extra/best/W_hh", lambda a: np.zeros((3, 3), a.dtype)),
     ["best", "W_hh", "shape"]),
    ("best-text", _array("extra/best/b_q", lambda a: a.astype("U8")), ["best", "b_q"]),
    ("best-missing-one", _drop("extra/best/b_q"), ["best", "b_q"]),
    ("best-unknown-name", _add("extra/best/W_zz", np.zeros(3, np.float32)), ["best", "W_zz"]),
    ("optimizer-wrong-shape", _array("opt/m/W_hh", lambda a: np.zeros((2, 2), a.dtype)),
     ["optimizer", "m/W_hh", "shape"]),
    ("optimizer-nan", _array("opt/s/W_xh", _with_nan), ["optimizer", "s/W_xh", "NaN"]),
    ("optimizer-unknown-parameter", _add("opt/m/W_zz", np.zeros(3, np.float32)),
     ["optimizer", "W_zz"]),
    ("optimizer-unknown-slot", _add("opt/v/W_hh", np.zeros((8, 8), np.float32)),
     ["optimizer", "v"]),
    ("optimizer-slot-incomplete", _drop("opt/s/b_q"), ["optimizer", "s/b_q"]),
    ("perm-missing", _drop("extra/perm"), ["shuffling order"]),
    ("perm-wrong-length", _array("extra/perm", lambda a: a[:-1]), ["perm"]),
    ("perm-not-a-permutation", _array("extra/perm", lambda a: np.full_like(a, 10 ** 6)),
     ["perm"]),
    ("perm-fractions", _array("extra/perm", lambda a: a + 0.5), ["perm"]),
]


@pytest.mark.parametrize("edit, fragments", [c[1:] for c in ARRAY_CASES],
                         ids=[c[0] for c in ARRAY_CASES])
def test_arrays_of_the_wrong_type_shape_or_value(good, tmp_path, capsys, edit, fragments):
    bad = _broken(good, tmp_path, arrays_edit=edit)
    refused(capsys, resume(bad, tmp_path / "out"), str(bad), *fragments)
    if not any(f in ("perm", "shuffling order") for f in fragments):  # evaluate needs no perm
        refused(capsys, evaluate(bad), str(bad), *fragments)


def _npy_bytes(header: dict, body: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + body


NOT_NPY = [
    ("garbage", b"this is not an array"),
    ("magic-only", b"\x93NUMPY\x01\x00"),
    ("header-not-a-dict", b"\x93NUMPY\x01\x00\x10\x00" + b"[1, 2, 3]      \n"),
    ("data-cut-short", _npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (8, 8)},
                                  b"\0" * 20)),
    ("huge-shape", _npy_bytes({"descr": "<f4", "fortran_order": False,
                               "shape": (10 ** 6, 10 ** 6)}, b"\0" * 64)),
    ("object-array", _npy_bytes({"descr": "|O", "fortran_order": False, "shape": (2,)},
                                b"\x80\x02N.")),
]


@pytest.mark.parametrize("entry", ["param/W_hh.npy", "extra/best/W_hh.npy", "meta_json.npy"])
@pytest.mark.parametrize("content", [c[1] for c in NOT_NPY], ids=[c[0] for c in NOT_NPY])
def test_zip_entry_that_is_not_a_valid_npy(good, tmp_path, capsys, entry, content):
    bad = tmp_path / "bad-entry.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, content if info.filename == entry else src.read(info))
    for argv in (evaluate(bad), resume(bad, tmp_path / "out")):
        line = refused(capsys, argv, str(bad))
        assert entry.removesuffix(".npy") in line or "metadata" in line


def test_model_only_checkpoint_given_to_resume(good, tmp_path, capsys):
    from core.checkpoint import load_checkpoint

    ck = load_checkpoint(good)
    bare = save_checkpoint(tmp_path / "model.npz", ck.model, ck.normalizer, None,
                           {"data": ck.meta["data"]})
    code, out, _ = run(capsys, *evaluate(bare))
    assert code == 0 and "accuracy" in out  # a model alone can be evaluated
    refused(capsys, resume(bare, tmp_path / "out"), str(bare), "no training state")
    refused(capsys, resume(bare, tmp_path / "out") + ["--model", "row-rnn"], str(bare),
            "no training state")


def test_best_checkpoint_given_to_resume(good, tmp_path, capsys):
    refused(capsys, resume(good.parent / "best.npz", tmp_path / "out"), "resume from last.npz")


def _run_with_deadline(capsys, argv, fifo: Path, seconds: float = 10.0):
    """Run the CLI on a thread; if it blocks opening the FIFO, unblock it and fail."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(code=cli.main(argv)), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # a writer lets the reader finish
        os.close(fd)
        thread.join(seconds)
        pytest.fail(f"{argv[0]} blocked on the FIFO {fifo}")
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return result["code"], err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_is_refused_at_once(tmp_path, capsys):
    fifo = tmp_path / "last.npz"
    os.mkfifo(fifo)
    for argv in (evaluate(fifo), resume(fifo, tmp_path / "out")):
        code, err = _run_with_deadline(capsys, [str(a) for a in argv], fifo)
        assert code == 1 and f"error: checkpoint {fifo} is not a regular file" in err, err


def test_folder_and_device_are_refused(tmp_path, capsys):
    refused(capsys, evaluate(tmp_path), str(tmp_path), "folder")
    if Path("/dev/zero").exists():
        refused(capsys, evaluate("/dev/zero"), "/dev/zero", "not a regular file")
