"""The command line when things go wrong around a run: divergence, a full disk, resuming with
the same command, two runs in one folder, and small option mistakes (issue 8 §2, 3, 6-8).

Runs are tiny (probe task, H <= 8); a few cases start real processes (a lock held by another
run, a killed writer's temporary files) or mount a 1 MB tmpfs (skipped where not permitted).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import core.fileio as fileio
from core.checkpoint import load_checkpoint
from core.datasets import load_data
from tests.cifar_fixtures import write_cifar_tarball
from tests.test_cli_errors import ROOT, TINY, error_line, expect_error, run

PROBE = ["--model", "row-rnn", "--data", "probe", "--subset", "200", *TINY]


def strict_json(path: Path):
    def refuse(token):
        raise ValueError(f"{path} holds the non-JSON literal {token}")
    return json.loads(path.read_text(), parse_constant=refuse)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- §2 divergence --------------------------------------------------------------------------------
def test_a_finite_but_absurd_loss_exits_3_like_nan(tmp_path, capsys):
    code, out, err = run(capsys, "train", *PROBE, "--lr", "1e6", "--clip", "none",
                         "--out", tmp_path / "o")
    assert code == 3, out + err
    line = error_line(err)
    assert line.startswith("error: training diverged at step ") and "chance level" in line
    metrics = strict_json(tmp_path / "o" / "metrics.json")
    assert metrics["reason"] == "diverged"
    strict_json(tmp_path / "o" / "history.json")


def test_overflow_before_the_first_evaluation_is_no_traceback(tmp_path, capsys):
    out_dir = tmp_path / "o"
    code, out, err = run(capsys, "train", *PROBE, "--lr", "1e30", "--optimizer", "sgd",
                         "--clip", "none", "--out", out_dir)
    assert code == 3 and "diverged" in error_line(err)
    assert {"history.json", "metrics.json", "last.npz"} <= set(listing(out_dir))
    for name in ("history.json", "metrics.json"):
        strict_json(out_dir / name)
    ck = load_checkpoint(out_dir / "last.npz")  # the last good parameters
    assert ck.meta["params_are"] == "last_good"


# -- §3 write errors ------------------------------------------------------------------------------
@pytest.fixture
def disk_full_on(monkeypatch):
    """disk_full_on(name): writing the file called ``name`` runs out of space half-way."""
    real_open = open

    def arm(name):
        def fake_open(path, mode="r", *a, **kw):
            f = real_open(path, mode, *a, **kw)
            if Path(path).name.startswith(f".{name}.") and "b" in mode:
                def write(data, real_write=f.write):
                    real_write(bytes(data)[:10])
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                f.write = write
            return f
        monkeypatch.setattr(fileio, "open", fake_open, raising=False)
    return arm


@pytest.mark.parametrize("name, what", [("last.npz", "checkpoint"), ("best.npz", "checkpoint"),
                                        ("history.json", "file"), ("metrics.json", "file")])
def test_disk_full_for_each_training_file(tmp_path, capsys, disk_full_on, name, what):
    out_dir = tmp_path / "o"
    assert run(capsys, "train", *PROBE, "--out", out_dir)[0] == 0
    before = {p: (out_dir / p).read_bytes() for p in listing(out_dir)}
    disk_full_on(name)
    line = expect_error(capsys, ["train", *PROBE, "--seed", "5", "--out", out_dir],
                        code=1)
    assert line == (f"error: cannot write {out_dir / name}: no space left on device; the "
                    f"previous {what} is kept; free some space or choose another --out folder")
    assert (out_dir / name).read_bytes() == before[name]
    assert listing(out_dir) == sorted(before)  # no temporary file left
    for other in ("best.npz", "last.npz"):  # what the run did write is whole
        load_checkpoint(out_dir / other)
    for other in ("history.json", "metrics.json"):
        strict_json(out_dir / other)


def test_disk_full_for_a_report_figure(tmp_path, capsys, disk_full_on):
    run_dir = tmp_path / "run"
    assert run(capsys, "train", *PROBE, "--out", run_dir)[0] == 0
    disk_full_on("confusion.png")
    line = expect_error(capsys, ["report", "--checkpoint", run_dir / "best.npz", "--data",
                                 "probe", "--out", tmp_path / "r", "--tsne-points", "0"])
    assert line.startswith(f"error: cannot write {tmp_path / 'r' / 'confusion.png'}: no space "
                           "left on device; nothing was written")
    assert not [p for p in listing(tmp_path / "r") if p.endswith(".tmp")]


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mnt = tmp_path / "full"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_real_full_filesystem(tiny_tmpfs, capsys):
    out_dir = tiny_tmpfs / "o"
    assert run(capsys, "train", *PROBE, "--out", out_dir)[0] == 0  # small files fit
    before = {p: (out_dir / p).read_bytes() for p in listing(out_dir)}
    # H=300: W_hh and Adam's two moments alone are ~1 MB per checkpoint
    line = expect_error(capsys, ["train", "--model", "row-rnn", "--data", "probe", "--subset",
                                 "100", "--epochs", "1", "--workers", "1", "--hidden", "300",
                                 "--out", out_dir])
    assert line.startswith(f"error: cannot write {out_dir / 'best.npz'}: no space left on "
                           "device; the previous checkpoint is kept")
    assert {p: (out_dir / p).read_bytes() for p in listing(out_dir)} == before


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_temp_files_of_a_killed_run_are_removed_by_the_next(tmp_path, capsys):
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    orphans = [out_dir / f".last.npz.{_dead_pid()}-0a1b2c3d.tmp",
               out_dir / f".history.json.{_dead_pid()}-0a1b2c3d.tmp"]
    for p in orphans:
        p.write_bytes(b"half a file")
    assert run(capsys, "train", *PROBE, "--out", out_dir)[0] == 0
    assert not [p for p in orphans if p.exists()]
    assert not [p for p in listing(out_dir) if p.endswith(".tmp")]


# -- §6 resume with the same command --------------------------------------------------------------
def test_the_same_command_plus_resume(tmp_path, capsys):
    d = tmp_path / "d"
    base = ["train", "--model", "row-rnn", "--data", "probe", "--subset", "200", "--seed",
            "1", "--hidden", "8", "--workers", "1", "--cue-row", "20"]
    assert run(capsys, *base, "--epochs", "1", "--out", d)[0] == 0
    code, out, err = run(capsys, *base, "--epochs", "2", "--resume", d / "last.npz",
                         "--out", d)
    assert code == 0, err
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["resumed_from_step"] == 2  # 2 steps an epoch


@pytest.mark.parametrize("flag, value, message", [
    ("--subset", "300", "--subset: the checkpoint {ck} was trained on 200 images, you asked "
                        "for 300"),
    ("--hidden", "16", "--hidden: the checkpoint {ck} was trained with hidden 8, you asked "
                       "for 16"),
    ("--seed", "2", "--seed: the checkpoint {ck} was trained with seed 1, you asked for 2"),
    ("--cue-row", "3", "--cue-row: the checkpoint {ck} was trained with the cue at row 20, "
                       "you asked for 3"),
    ("--model", "cnn-rnn", "--model: the checkpoint {ck} was trained with model row-rnn, you "
                           "asked for cnn-rnn"),
    ("--lr", "0.5", "--lr: the checkpoint {ck} was trained with lr 0.001, you asked for 0.5"),
])
def test_a_flag_that_differs_from_the_checkpoint_is_refused(tmp_path, capsys, flag, value,
                                                            message):
    d = tmp_path / "d"
    base = ["train", "--model", "row-rnn", "--data", "probe", "--subset", "200", "--seed",
            "1", "--hidden", "8", "--workers", "1", "--cue-row", "20", "--epochs", "1"]
    assert run(capsys, *base, "--out", d)[0] == 0
    argv = list(base)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    ck = d / "last.npz"
    line = expect_error(capsys, [*argv, "--resume", ck, "--out", d])
    assert line.startswith(f"error: {message.format(ck=ck)}"), line


def test_a_subset_checkpoint_rebuilds_its_split_by_itself(tmp_path, capsys, monkeypatch):
    # the app trains on a subset it loaded: the TrainConfig has no subset, the data info has
    monkeypatch.setenv("RNNSCOPE_CACHE", str(tmp_path / "cache"))
    tarball = write_cifar_tarball(tmp_path / "src")
    from core.config import TrainConfig
    from core.trainer import Trainer

    splits = load_data(tarball, subset=60, seed=3)
    cfg = TrainConfig(model="row-rnn", hidden=8, batch_size=20, epochs=1, seed=3)
    Trainer(cfg, splits, checkpoint_dir=tmp_path / "app").run()
    code, out, err = run(capsys, "train", "--data", tarball, "--epochs", "2", "--resume",
                         tmp_path / "app" / "last.npz", "--out", tmp_path / "app")
    assert code == 0, err
    assert "resuming" in err
    code, _, err = run(capsys, "evaluate", "--checkpoint", tmp_path / "app" / "last.npz",
                       "--data", tarball)
    assert code == 0, err


# -- §7 two runs, one folder ----------------------------------------------------------------------
def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    out_dir = tmp_path / "o"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "main.py", "train", "--model", "row-rnn",
                              "--data", "probe", "--hidden", "8", "--workers", "1",
                              "--epochs", "200", "--out", str(out_dir)], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        owner = out_dir / ".rnnscope.lock.pid"
        deadline = time.monotonic() + 120
        while not (owner.exists() and owner.read_text().strip()):
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "main.py", "train", *PROBE, "--out",
                                 str(out_dir)], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert second.stderr.strip().splitlines()[-1] == (
            f"error: {out_dir} is being written by another run (pid {first.pid}); wait for it "
            "to finish or choose another folder")
        assert first.poll() is None  # the first run goes on
    finally:
        first.kill()
        first.wait()


# -- §8 small ones ------------------------------------------------------------------------------
@pytest.mark.parametrize("points", ["1", "2"])
def test_report_with_one_or_two_tsne_points(tmp_path, capsys, points):
    run_dir = tmp_path / "run"
    assert run(capsys, "train", *PROBE, "--out", run_dir)[0] == 0
    code, out, err = run(capsys, "report", "--checkpoint", run_dir / "best.npz", "--data",
                         "probe", "--out", tmp_path / "r", "--tsne-points", points)
    assert code == 0, err
    assert (tmp_path / "r" / "tsne.png").stat().st_size > 1000


def test_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expect_error(capsys, ["train", *PROBE, "--out", ""], "--out is empty")
    assert listing(tmp_path) == []


def test_cue_row_messages_count_from_one(tmp_path, capsys):
    expect_error(capsys, ["train", *PROBE, "--cue-row", "32", "--out", tmp_path / "o"],
                 "--cue-row 32", "give 1..29 (1 = top)")
    assert run(capsys, "train", *PROBE, "--cue-row", "29", "--out", tmp_path / "o")[0] == 0


def test_subset_in_scientific_notation_is_a_count(tmp_path, capsys):
    code, _, err = run(capsys, "train", *PROBE[:-len(TINY) - 2], "--subset", "1e2", *TINY,
                       "--out", tmp_path / "o")
    assert code == 0, err
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["config"]["subset"] == 100
    expect_error(capsys, ["train", *PROBE[:-len(TINY) - 2], "--subset", "150.5",
                          "--out", tmp_path / "o"], "--subset 150.5", "whole number")


def test_batch_size_message_names_the_real_limit(tmp_path, capsys):
    expect_error(capsys, ["train", *PROBE, "--batch-size", "100000", "--out", tmp_path / "o"],
                 "batch_size = 100000 is invalid", "from 1 to 65,536")
