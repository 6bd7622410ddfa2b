"""Writing files so that a crash, a kill or a full disk never leaves a file a later run trusts.

Every file rnnscope writes (checkpoints, history.json, metrics.json, report PNGs and JSON)
goes through :func:`atomic_write`: the bytes go to a temporary file in the same folder,
named ``.<name>.<pid>-<random>.tmp``, which is flushed, fsync'ed and then renamed over the
target with ``os.replace`` (atomic on one filesystem). If writing fails, the temporary file is
deleted and the previous file stays as it was; an ``OSError`` (no space left, read-only
filesystem, permission denied) becomes a one-line :class:`core.errors.WriteError`.

A process that is killed mid-write leaves its temporary file behind; its name carries the
writer's pid, so the next run removes it once that process is gone
(:func:`remove_stale_temps`, built on the generic :func:`remove_orphans` that the download's
part folders use too).

JSON is strict (RFC 8259): :func:`json_text` turns NumPy scalars and arrays into plain
values and every non-finite float into ``null``, so no ``NaN``/``Infinity`` literal is ever
written.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from core.errors import WriteError

ORPHAN_MAX_AGE_S = 86400  # a temporary file older than a day goes even if its pid is reused
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


# -- JSON ---------------------------------------------------------------------------------------
def json_default(obj):
    """``json.dump(default=...)`` for NumPy values, tuples, sets, paths and dtypes."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, type) and issubclass(obj, np.generic):
        return np.dtype(obj).name
    if isinstance(obj, np.dtype):
        return obj.name
    raise TypeError(f"{type(obj).__name__} is not JSON-able")


def finite_or_none(obj):
    """A copy of ``obj`` (dicts, lists, tuples, scalars, NumPy values) with every NaN/inf
    float replaced by None; other values are returned as they are."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    if type(obj).__module__ == "numpy":
        return finite_or_none(json_default(obj))
    return obj


def json_text(obj, **dump_kw) -> str:
    """Strict JSON text of ``obj`` (non-finite floats as null, NumPy values as plain ones)."""
    return json.dumps(finite_or_none(obj), default=json_default, allow_nan=False, **dump_kw)


# -- atomic writes ------------------------------------------------------------------------------
def temp_path(path: Path) -> Path:
    """The temporary name this process writes ``path`` under (same folder, pid in the name)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def describe_os_error(exc: OSError) -> str:
    """'no space left on device', 'permission denied', ... (lower case, one line)."""
    if exc.errno is not None:
        text = os.strerror(exc.errno)
    else:
        text = exc.strerror or str(exc) or type(exc).__name__
    text = " ".join(text.split())
    return text[:1].lower() + text[1:]


def atomic_write(path, write: Callable[[IO[bytes]], None], *, what: str = "file",
                 mode: int = 0o644) -> Path:
    """Write ``path`` through ``write(binary_file)`` atomically; return ``path`` as a Path.

    ``what`` names the file in the error message ('checkpoint', 'report figure', ...).
    Raises WriteError (one line: the path, why, and that the previous file is kept) on any
    OSError; the previous ``path`` is left untouched and no temporary file remains.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise WriteError(write_error_message(path, exc, what)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def write_error_message(path: Path, exc: OSError, what: str = "file") -> str:
    kept = (f"the previous {what} is kept" if path.exists()
            else "nothing was written")
    hint = ("; free some space or choose another --out folder"
            if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "")
    return f"cannot write {path}: {describe_os_error(exc)}; {kept}{hint}"


def write_bytes_atomic(path, data: bytes, what: str = "file") -> Path:
    return atomic_write(path, lambda f: f.write(data), what=what)


def write_json_atomic(path, obj, indent: int | None = 1, what: str = "file") -> Path:
    """Write ``obj`` as strict JSON (see :func:`json_text`) to ``path`` atomically."""
    text = json_text(obj, indent=indent) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"), what=what)


# -- files left by killed processes -------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (True where that cannot be told)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but belongs to someone else
        return True
    return True


def remove_orphans(folder: Path, pid_of: Callable[[str], int | None], keep=(),
                   max_age_s: float = ORPHAN_MAX_AGE_S) -> list[Path]:
    """Delete entries of ``folder`` (files or folders) whose writer's process is gone.

    ``pid_of(name)`` gives the writer's pid from an entry's name, or None for entries that are
    not temporary ones (those are never touched). An entry whose pid is this process's own, or
    is in ``keep``, stays; one older than ``max_age_s`` goes even if its pid is alive again
    (pids are reused). Returns the paths removed.
    """
    removed = []
    keep = {Path(k) for k in keep}
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        pid = pid_of(p.name)
        if pid is None or p in keep or pid == os.getpid():
            continue
        try:
            old = time.time() - p.lstat().st_mtime > max_age_s
        except OSError:
            continue
        if old or not pid_alive(pid):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    p.unlink()
            removed.append(p)
    return removed


def pid_after(prefix: str, name: str, sep: str) -> int | None:
    """The pid in ``name`` = ``<prefix><pid><sep><anything>``, None for a name of another form
    (such names are never treated as temporary)."""
    if not name.startswith(prefix):
        return None
    pid = name[len(prefix):].split(sep, 1)[0]
    return int(pid) if pid.isdigit() else None


def temp_writer_pid(name: str) -> int | None:
    """The pid in a temporary name made by :func:`temp_path`, else None."""
    m = _TEMP_NAME.match(name)
    return int(m.group("pid")) if m else None


def remove_stale_temps(folder) -> list[Path]:
    """Remove the temporary files that killed writers left in ``folder``."""
    return remove_orphans(Path(folder), temp_writer_pid)
