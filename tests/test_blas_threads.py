"""BLAS thread limits, each checked in a fresh interpreter whose BLAS starts with two threads
(see tests/blas_checks.py for why not in the pytest process)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


@pytest.mark.parametrize("check", ["loop_knob_limits_only_the_loop",
                                   "limit_blas_threads_restores_on_exit",
                                   "conv_workers_restore_the_callers_limit",
                                   "cli_trains_on_one_blas_thread"])
def test_blas_thread_limit(check):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2",
           "MKL_NUM_THREADS": "2",
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    code = f"import blas_checks; blas_checks.{check}()"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]


def test_limits_below_one_are_refused():
    from core.blas import limit_blas_threads, set_loop_blas_threads

    with pytest.raises(ValueError):
        limit_blas_threads(0)
    with pytest.raises(ValueError):
        set_loop_blas_threads(0)
