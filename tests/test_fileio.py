"""core.fileio: atomic writes that keep the previous file, strict JSON, orphaned temp files."""

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from core import fileio
from core.errors import WriteError


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_disk_full_mid_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "metrics.json"
    fileio.write_json_atomic(path, {"a": 1})
    before = path.read_bytes()

    def half_then_full(f):
        f.write(b'{"a": ')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(WriteError) as info:
        fileio.atomic_write(path, half_then_full)
    assert str(info.value) == (f"cannot write {path}: no space left on device; the previous "
                               "file is kept; free some space or choose another --out folder")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_first_write_that_fails_says_nothing_was_written(tmp_path):
    def denied(f):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    with pytest.raises(WriteError, match="read-only file system; nothing was written$"):
        fileio.atomic_write(tmp_path / "last.npz", denied, what="checkpoint")
    assert list(tmp_path.iterdir()) == []


def test_json_is_strict_and_takes_numpy_values(tmp_path):
    obj = {"loss": float("nan"), "norms": np.array([1.0, np.inf], np.float32),
           "n": np.int64(3), "ok": np.bool_(True), "t": (1, float("-inf")), "p": tmp_path}
    path = fileio.write_json_atomic(tmp_path / "h.json", obj)

    def refuse(token):
        raise ValueError(token)

    got = json.loads(path.read_text(), parse_constant=refuse)
    assert got == {"loss": None, "norms": [1.0, None], "n": 3, "ok": True, "t": [1, None],
                   "p": str(tmp_path)}
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_temp_files_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    dead = tmp_path / f".last.npz.{_dead_pid()}-0123abcd.tmp"
    live = tmp_path / f".history.json.{os.getppid()}-0123abcd.tmp"  # our parent is alive
    mine = fileio.temp_path(tmp_path / "best.npz")
    other = tmp_path / ".last.npz.notapid.tmp"
    for p in (dead, live, mine, other):
        p.write_bytes(b"partial")
    assert fileio.temp_writer_pid(mine.name) == os.getpid()
    removed = fileio.remove_stale_temps(tmp_path)
    assert removed == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, mine, other))


def test_old_temp_files_go_even_if_their_pid_is_alive_again(tmp_path):
    old = tmp_path / f".last.npz.{os.getppid()}-0123abcd.tmp"
    old.write_bytes(b"x")
    t = old.stat().st_mtime - 2 * fileio.ORPHAN_MAX_AGE_S
    os.utime(old, (t, t))
    assert fileio.remove_stale_temps(tmp_path) == [old]
