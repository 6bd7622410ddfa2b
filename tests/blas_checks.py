"""Checks of BLAS thread limits, each run by tests/test_blas_threads.py in a fresh interpreter.

They need a BLAS pool that starts with two threads. In the pytest process that is not
guaranteed: conftest.py starts BLAS at one thread, and once a worker thread of an earlier GUI
test has limited OpenBLAS, the main thread can no longer raise it back. A fresh interpreter
started with OPENBLAS_NUM_THREADS=2 sees none of that history.
"""

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


def blas_thread_counts() -> set[int]:
    return {d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}


def loop_knob_limits_only_the_loop():
    """set_loop_blas_threads(1) limits the recurrent loops and restores the caller's setting."""
    from core import blas
    from core.rnn_layers import rnn_backward, rnn_forward

    rng = np.random.default_rng(6)
    x, h0 = rng.standard_normal((3, 6, 4)), rng.standard_normal((3, 5))
    Wx, Wh, b = (0.5 * rng.standard_normal((4, 5)), 0.5 * rng.standard_normal((5, 5)),
                 0.3 * rng.standard_normal(5))
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    ref = rnn_backward(np.ones_like(h), cache)
    assert blas_thread_counts() == {2}, blas_thread_counts()
    try:
        blas.set_loop_blas_threads(1)
        with blas.loop_blas_limit():
            assert blas_thread_counts() == {1}
        assert blas_thread_counts() == {2}
        h1, cache1 = rnn_forward(x, h0, Wx, Wh, b)
        got = rnn_backward(np.ones_like(h1), cache1)
        assert blas_thread_counts() == {2}
    finally:
        blas.set_loop_blas_threads(None)
    np.testing.assert_allclose(h1, h, rtol=1e-14)
    for a, r in zip(got, ref):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-15)


def limit_blas_threads_restores_on_exit():
    """core.blas.limit_blas_threads: a context manager restores, a plain call stays in force."""
    from core.blas import blas_threads, limit_blas_threads

    assert blas_threads() == 2
    with limit_blas_threads(1):
        assert blas_threads() == 1
    assert blas_threads() == 2
    limit_blas_threads(1)
    assert blas_threads() == 1
    limit_blas_threads(2)
    assert blas_threads() == 2


def conv_workers_restore_the_callers_limit():
    """The conv stack's chunk workers run BLAS at one thread and leave the caller's two."""
    from core.conv import conv_stack_backward, conv_stack_forward

    rng = np.random.default_rng(7)
    x = rng.standard_normal((11, 8, 8, 3))
    params = [rng.standard_normal((3, 3, 3, 4)), 0.3 * rng.standard_normal(4),
              0.5 * rng.standard_normal((3, 3, 4, 5)), 0.3 * rng.standard_normal(5)]
    with threadpool_limits(limits=2, user_api="blas"):
        out, cache = conv_stack_forward(x, *params, chunk=2, workers=2)
        assert blas_thread_counts() == {2}
        conv_stack_backward(np.ones_like(out), cache)
        assert blas_thread_counts() == {2}


def cli_trains_on_one_blas_thread():
    """`train --workers 1` must not leave OpenBLAS at two spinning threads next to its own
    (a second run on a 2-core machine then crawled ~35x slower); the limit ends with the run."""
    import tempfile

    import core.trainer as trainer_module
    from cli import commands
    from core.blas import blas_threads

    seen = []
    real_step = trainer_module.Trainer._train_step

    def spy(self):
        seen.append(blas_threads())
        return real_step(self)

    trainer_module.Trainer._train_step = spy
    assert blas_threads() == 2
    code = commands.train_command(
        "probe", tempfile.mkdtemp(), subset=100,
        overrides={"model": "row-rnn", "hidden": 8, "epochs": 1, "workers": 1})
    assert code == 0 and seen and set(seen) == {1}, seen
    assert blas_threads() == 2
