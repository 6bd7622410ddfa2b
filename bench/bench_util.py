"""Helpers shared by the benchmarks: the machine's load, timed repetitions, and results
written atomically (through core.fileio, the one writer of the project)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:   # a benchmark runs as `python bench/NAME.py`
    sys.path.insert(0, str(ROOT))

from core.fileio import write_json_atomic  # noqa: E402


def blas_info() -> dict:
    """The loaded BLAS libraries (threadpoolctl: version, threads, the kernels' architecture)
    and the OpenBLAS variables the run started with: a machine can pin older kernels through
    them (``OPENBLAS_CORETYPE=Haswell`` halves float32 matmul speed on an AVX-512 processor),
    so a figure means little without them."""
    from threadpoolctl import threadpool_info

    libs = [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for d in threadpool_info()]
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    return {"libraries": libs, "environment": env}


def blas_summary(info: dict) -> str:
    """One line for a benchmark's output: each BLAS library's kernels and the variables."""
    libs = ", ".join(f"{d['internal_api']} {d['version']} {d['architecture']}"
                     for d in info["libraries"])
    env = " ".join(f"{k}={v}" for k, v in info["environment"].items() if v is not None)
    return f"BLAS: {libs or 'none loaded'}" + (f" ({env})" if env else "")


def load_average():
    """``uptime`` output (1/5/15-minute load averages), or the load averages alone."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return [float(v) for v in os.getloadavg()]


def timed_calls(fn, reps: int, warmup: int = 2, budget_s: float = 30.0):
    """(wall seconds, process CPU seconds): two lists of ``reps`` timed calls of ``fn`` after
    ``warmup`` untimed ones; stops early (after at least 3) once ``budget_s`` is spent, e.g.
    when a loaded machine makes multi-threaded BLAS crawl. On a loaded machine the CPU time is
    steadier than the wall time."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    start = time.perf_counter()
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if len(wall) >= 3 and time.perf_counter() - start > budget_s:
            break
    return wall, cpu


def finish(result: dict, path) -> Path:
    """Record the load average after the run in ``result['load_after']``, say it, and write
    ``result`` to ``path``."""
    result["load_after"] = load_average()
    print(f"load average after: {result['load_after']}")
    out = write_json(result, path)
    print(f"wrote {path}")
    return out


def write_json(data, path) -> Path:
    """Write ``data`` as indented strict JSON to ``path`` atomically (core.fileio)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, data, indent=2, what="benchmark result")
