"""The command line as a user meets it: every bad input is one `error: ...` line and exit 1.

Each case runs ``main.main(argv)`` (in-process, the same code path as ``python main.py``) on a
crafted bad input and checks: the exit code, that stderr holds exactly one ``error:`` line
naming the file or option and saying what is wrong, that no traceback escaped, and that a
failed data load left nothing in the cache. A few cases run ``python main.py`` in a fresh
process to check the real exit code (and, for unreadable files, a process without the root
capability to read anything). Training runs are tiny (probe task / 100-image fixture, H <= 8).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import main as cli
from tests.cifar_fixtures import cifar_tarball_bytes, write_cifar_folder, write_cifar_tarball

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--hidden", "8", "--workers", "1"]


def run(capsys, *argv):
    """Run the CLI in-process -> (exit code, stdout, stderr); fails on any escaped exception."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def error_line(err: str) -> str:
    """The single `error: ...` line of stderr (progress lines may precede it)."""
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, f"expected one error line, got {err!r}"
    return lines[0]


def expect_error(capsys, argv, *fragments, code=1) -> str:
    got, out, err = run(capsys, *argv)
    assert got == code, (got, out, err)
    line = error_line(err)
    for frag in fragments:
        assert frag in line, f"{frag!r} not in {line!r}"
    return line


def cache_entries() -> list[str]:
    decoded = Path(os.environ["RNNSCOPE_CACHE"]) / "decoded"
    return sorted(p.name for p in decoded.iterdir()) if decoded.exists() else []


def _subprocess(argv, env_extra=None, prefix=()):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run([*prefix, sys.executable, "main.py", *map(str, argv)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


# -- checkpoints made once by the CLI itself ------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny real runs: row-RNN on the probe task, row-RNN on a CIFAR fixture, CNN on the probe."""
    base = tmp_path_factory.mktemp("runs")
    cifar = write_cifar_tarball(base / "fixture")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNNSCOPE_CACHE", str(base / "cache"))
        mp.delenv("RNNSCOPE_DATA", raising=False)
        jobs = {
            "probe": ["--model", "row-rnn", "--data", "probe", "--subset", "200", *TINY],
            "cifar": ["--model", "row-rnn", "--data", cifar, *TINY],
            "cnn": ["--model", "cnn-rnn", "--data", "probe", "--subset", "20",
                    "--batch-size", "20", "--epochs", "1", "--hidden", "4", "--workers", "1"],
        }
        for name, argv in jobs.items():
            assert cli.main(["train", *map(str, argv), "--out", str(base / name)]) == 0, name
    return {"cifar_data": cifar, "probe": base / "probe", "cifar": base / "cifar",
            "cnn": base / "cnn", "base": base}


# -- data -----------------------------------------------------------------------------------------
def _train_on(data, out):
    return ["train", "--model", "row-rnn", "--data", data, *TINY, "--out", out]


def _folder_with(tmp_path, name, payload: bytes):
    folder = write_cifar_folder(tmp_path / "src")
    (folder / name).write_bytes(payload)
    return folder


def test_truncated_batch_file_2mb(tmp_path, capsys):
    folder = write_cifar_folder(tmp_path, n_per_batch=700)  # 2.15 MB per batch
    batch = folder / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:2_000_000])
    expect_error(capsys, _train_on(folder, tmp_path / "o"), str(batch), "truncated",
                 "python main.py download")
    assert cache_entries() == []


@pytest.mark.parametrize("cut", [2_000_000, 300])
def test_tarball_cut_short(tmp_path, capsys, cut):
    raw = cifar_tarball_bytes(n_per_batch=700)
    tar = tmp_path / "cifar-10-python.tar.gz"
    tar.write_bytes(raw[:cut])
    expect_error(capsys, _train_on(tar, tmp_path / "o"), str(tar), "truncated")
    assert cache_entries() == []


def test_tarball_not_gzip_and_empty(tmp_path, capsys):
    page = tmp_path / "cifar-10-python.tar.gz"
    page.write_text("<html>404 Not Found</html>\n")
    expect_error(capsys, _train_on(page, tmp_path / "o"), str(page), "not a gzip")
    empty = tmp_path / "empty.tar.gz"
    empty.write_bytes(b"")
    expect_error(capsys, _train_on(empty, tmp_path / "o"), str(empty), "empty (0 bytes)")
    assert cache_entries() == []


def test_folder_missing_a_batch_also_inside_a_parent_folder(tmp_path, capsys):
    folder = write_cifar_folder(tmp_path)
    (folder / "data_batch_3").unlink()
    for given in (folder, tmp_path):  # the batches folder, or the folder that contains it
        expect_error(capsys, _train_on(given, tmp_path / "o"), "missing data_batch_3",
                     "incomplete")
    assert cache_entries() == []


@pytest.mark.parametrize("payload, fragment", [
    ({b"pixels": np.zeros((10, 3072), np.uint8), b"labels": [0] * 10}, "lacks the key(s) data"),
    ({"data": np.zeros((10, 1024), np.uint8), "labels": [0] * 10}, "expected uint8 (N, 3072)"),
    ({b"data": np.zeros((10, 3072), np.uint8), b"labels": [0] * 9 + [10]}, "outside 0..9"),
    (None, "empty (0 bytes)"),
], ids=["wrong-keys", "wrong-shape-str-keys", "label-10", "empty-file"])
def test_bad_batch_pickles(tmp_path, capsys, payload, fragment):
    raw = b"" if payload is None else pickle.dumps(payload, protocol=2)
    folder = _folder_with(tmp_path, "data_batch_2", raw)
    expect_error(capsys, _train_on(folder, tmp_path / "o"), str(folder / "data_batch_2"),
                 fragment)
    assert cache_entries() == []


def test_wrong_data_paths(tmp_path, capsys):
    expect_error(capsys, _train_on(tmp_path / "nope", tmp_path / "o"), "--data",
                 "no such file or folder")
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty_dir" / "notes.txt").write_text("hi")
    expect_error(capsys, _train_on(tmp_path / "empty_dir", tmp_path / "o"),
                 str(tmp_path / "empty_dir"), "holds neither cifar-10-python.tar.gz")
    assert cache_entries() == []


def test_out_is_a_file(tmp_path, capsys, runs):
    f = tmp_path / "a_file"
    f.write_text("x")
    expect_error(capsys, ["train", "--model", "row-rnn", "--data", "probe", "--out", f],
                 f"--out {f} is a file")
    expect_error(capsys, ["report", "--checkpoint", runs["probe"] / "best.npz", "--data",
                          "probe", "--out", f], f"--out {f} is a file")
    expect_error(capsys, ["download", "--dest", f], f"--dest {f} is a file")
    assert f.read_text() == "x"


# -- checkpoints ----------------------------------------------------------------------------------
def _bad_checkpoints(tmp_path, good: Path) -> dict:
    raw = good.read_bytes()
    made = {"text": ("notes.txt", b"just some text\n"), "empty": ("empty.npz", b""),
            "truncated": ("cut.npz", raw[: len(raw) // 2]),
            "pickle": ("pickle.npz", pickle.dumps({"a": 1}))}
    out = {}
    for key, (name, data) in made.items():
        (tmp_path / name).write_bytes(data)
        out[key] = tmp_path / name
    np.save(tmp_path / "array.npy", np.zeros(3))
    np.savez(tmp_path / "plain.npz", W=np.zeros(3))
    out["npy"], out["plain"] = tmp_path / "array.npy", tmp_path / "plain.npz"
    return out


@pytest.mark.parametrize("kind, fragment", [
    ("text", "not an rnnscope checkpoint (a text file"),
    ("empty", "is empty (0 bytes)"),
    ("truncated", "corrupted or truncated"),
    ("pickle", "not an rnnscope checkpoint (a Python pickle"),
    ("npy", "not an rnnscope checkpoint (a single .npy array"),
    ("plain", "no meta_json entry"),
])
def test_bad_checkpoint_files(tmp_path, capsys, runs, kind, fragment):
    path = _bad_checkpoints(tmp_path, runs["probe"] / "best.npz")[kind]
    line = expect_error(capsys, ["evaluate", "--checkpoint", path, "--data", "probe"],
                        str(path), fragment)
    assert "allow_pickle" not in line  # numpy's advice to unpickle must never reach the user


def test_checkpoint_path_missing_or_a_folder(tmp_path, capsys, runs):
    expect_error(capsys, ["evaluate", "--checkpoint", tmp_path / "nope.npz", "--data", "probe"],
                 "does not exist")
    expect_error(capsys, ["evaluate", "--checkpoint", runs["probe"], "--data", "probe"],
                 "is a folder", "best.npz")
    expect_error(capsys, ["report", "--checkpoint", runs["probe"], "--data", "probe",
                          "--out", tmp_path / "r"], "is a folder")


def test_cnn_checkpoint_where_a_row_rnn_is_expected(tmp_path, capsys, runs):
    expect_error(capsys, ["train", "--resume", runs["cnn"] / "last.npz", "--model", "row-rnn",
                          "--data", "probe", "--out", tmp_path / "o"], "model")


def test_checkpoint_of_the_other_data_set(capsys, runs):
    expect_error(capsys, ["evaluate", "--checkpoint", runs["probe"] / "best.npz", "--data",
                          runs["cifar_data"]], "trained on the memory-probe task",
                 "--data probe")
    expect_error(capsys, ["evaluate", "--checkpoint", runs["cifar"] / "best.npz", "--data",
                          "probe"], "trained on CIFAR-10")


def test_negative_tsne_points(tmp_path, capsys, runs):
    code, out, err = run(capsys, "report", "--checkpoint", runs["probe"] / "best.npz",
                         "--data", "probe", "--out", tmp_path / "r", "--tsne-points", "-5")
    assert code in (1, 2) and "tsne-points" in err


# -- usage, results and exit codes ----------------------------------------------------------------
def test_bad_usage_exits_2(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--model", "row-rnn", "--data", "probe")
    assert code == 2 and "--out" in err
    code, _, err = run(capsys, "train", "--data", "probe", "--out", tmp_path / "o")
    assert code == 2 and "--model" in err
    code, _, err = run(capsys, "evaluate", "--checkpoint", "x.npz")
    assert code == 2 and "--data" in err


def test_bad_option_values_exit_1(tmp_path, capsys):
    expect_error(capsys, ["train", "--model", "row-rnn", "--data", "probe", "--subset", "abc",
                          "--out", tmp_path / "o"], "--subset")
    expect_error(capsys, ["train", "--model", "row-rnn", "--data", "probe", "--epochs", "-1",
                          "--out", tmp_path / "o"], "epochs")


def test_evaluate_json_and_text(capsys, runs):
    code, out, err = run(capsys, "evaluate", "--checkpoint", runs["probe"] / "best.npz",
                         "--data", "probe", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["images"] == 1000 and 0.0 <= result["accuracy"] <= 1.0
    assert result["loss"] > 0 and 0.0 <= result["ece"] <= 1.0
    code, out, _ = run(capsys, "evaluate", "--checkpoint", runs["probe"] / "best.npz",
                       "--data", "probe")
    assert code == 0 and "accuracy" in out and "loss" in out and "ECE" in out


def test_train_diverged_exits_3(tmp_path, capsys):
    code, out, err = run(capsys, "train", "--model", "row-rnn", "--data", "probe", "--subset",
                         "200", "--epochs", "3", "--lr", "1e6", "--optimizer", "sgd", "--clip",
                         "none", "--activation", "relu", "--hidden", "8", "--workers", "1",
                         "--out", tmp_path / "o")
    assert code == 3
    assert "diverged" in error_line(err)
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["reason"] == "diverged"


def test_overfit_says_whether_it_reached_the_target(capsys):
    code, out, err = run(capsys, "overfit", "--model", "row-rnn", "--size", "20", "--hidden",
                         "16", "--workers", "1")
    assert code == 0, out + err
    assert "reached" in out and "on 20 images" in out
    # one epoch at a tiny learning rate cannot memorise anything: a clear no, exit 1
    code, out, err = run(capsys, "overfit", "--model", "row-rnn", "--size", "20", "--hidden",
                         "16", "--workers", "1", "--epochs", "1", "--lr", "1e-7")
    assert code == 1, out + err
    assert "did not reach 99% training accuracy on 20 images" in out and "Traceback" not in err
    code, out, err = run(capsys, "overfit", "--model", "row-rnn", "--size", "3")
    assert code == 1 and err.strip().startswith("error: --size 3 is too small")


# -- real processes: exit codes, and files the user cannot read -----------------------------------
def test_process_exit_code_and_one_line(tmp_path):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(cifar_tarball_bytes()[:500])
    r = _subprocess(_train_on(bad, tmp_path / "o"), {"RNNSCOPE_CACHE": str(tmp_path / "c")})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: {bad} is truncated")
    assert not (tmp_path / "c" / "decoded").exists() or not any((tmp_path / "c" /
                                                                 "decoded").iterdir())


def _unreadable_prefix(tmp_path) -> tuple[str, ...]:
    """How to run a process that cannot read a mode-000 file (root needs its caps dropped)."""
    if os.name != "posix":
        pytest.skip("file modes are POSIX")
    probe = tmp_path / "probe-000"
    probe.write_text("x")
    probe.chmod(0)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: every file is readable")
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    r = subprocess.run([*prefix, "cat", str(probe)], capture_output=True)
    if r.returncode == 0:
        pytest.skip("this process can read mode-000 files")
    return prefix


def test_unreadable_files(tmp_path, runs):
    prefix = _unreadable_prefix(tmp_path)
    env = {"RNNSCOPE_CACHE": str(tmp_path / "c")}
    folder = write_cifar_folder(tmp_path / "f")
    (folder / "test_batch").chmod(0)
    tar = write_cifar_tarball(tmp_path / "t")
    tar.chmod(0)
    ckpt = tmp_path / "best.npz"
    shutil.copy(runs["probe"] / "best.npz", ckpt)
    ckpt.chmod(0)
    cases = [(_train_on(folder, tmp_path / "o"), str(folder / "test_batch")),
             (_train_on(tar, tmp_path / "o"), str(tar)),
             (["evaluate", "--checkpoint", ckpt, "--data", "probe"], str(ckpt))]
    for argv, name in cases:
        r = _subprocess(argv, env, prefix)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and name in last and "permission denied" in last
    assert not (tmp_path / "c" / "decoded").exists() or not any((tmp_path / "c" /
                                                                 "decoded").iterdir())


def test_data_cifar10_looks_in_the_environment_then_the_cache(capsys, runs, monkeypatch,
                                                              tmp_path):
    ckpt = runs["cifar"] / "best.npz"
    monkeypatch.setenv("RNNSCOPE_CACHE", str(tmp_path / "empty-cache"))
    expect_error(capsys, ["evaluate", "--checkpoint", ckpt, "--data", "cifar10"],
                 "CIFAR-10 not found", "RNNSCOPE_DATA")
    monkeypatch.setenv("RNNSCOPE_DATA", str(runs["cifar_data"]))
    code, out, err = run(capsys, "evaluate", "--checkpoint", ckpt, "--data", "cifar10", "--json")
    assert code == 0, err
    assert json.loads(out)["images"] > 0


def test_cue_row_counts_image_rows_from_one(capsys, tmp_path):
    code, out, err = run(capsys, "train", "--model", "row-rnn", "--data", "probe", "--cue-row",
                         "1", *TINY, "--out", tmp_path / "top")
    assert code == 0 and "cue rows 1-4 of 32" in err
    expect_error(capsys, ["train", "--model", "row-rnn", "--data", "probe", "--cue-row", "0",
                          *TINY, "--out", tmp_path / "o"], "--cue-row 0", "1..29")


def test_overfit_on_cifar10_trains_on_exactly_size_images(capsys, runs):
    code, out, err = run(capsys, "overfit", "--model", "row-rnn", "--size", "20", "--hidden",
                         "16", "--workers", "1", "--data", runs["cifar_data"])
    assert "on 20 training images of CIFAR-10" in out, out
    assert code == 0 and "reached" in out
