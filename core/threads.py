"""Run independent parts of one computation on Python threads, BLAS held to one thread each.

NumPy and BLAS release the GIL, so n threads that each do large array work use n cores. While
several parts run, BLAS is limited to one thread process-wide (threadpoolctl) so that
threads x BLAS threads <= cores; the caller's limit is restored afterwards.

Used by the conv stack's chunk workers (``core.conv.set_conv_workers``), by the
batch-parallel loss (``core.batch_parallel``) and by the parent of the worker processes
(``core.process_parallel``, through :func:`one_blas_thread`). A call made from inside a part
(nesting, e.g. a conv stack inside one batch part) runs its parts one after another in that
thread, so the two never multiply their threads.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import nullcontext

_executor: ThreadPoolExecutor | None = None
_executor_size = 0
_controller = None
_lock = threading.Lock()      # one multi-part run at a time: the BLAS limit is process-wide
_local = threading.local()    # .inside: this thread is running a part


def default_workers(cap: int = 4) -> int:
    """The cores this process may use, at most ``cap`` (the command line's default workers)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cap, cores))


def one_blas_thread():
    """A context manager that holds every loaded BLAS library at one thread (threadpoolctl)
    and restores the previous limits on exit; a no-op context when no BLAS is loaded."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()  # after numpy is loaded: finds its BLAS
    if not _controller.lib_controllers:
        return nullcontext()
    return _controller.limit(limits=1, user_api="blas")


def _mark_inside(fn, i):
    _local.inside = True
    try:
        return fn(i)
    finally:
        _local.inside = False


def run_parts(fn, parts: int) -> list:
    """[fn(0), ..., fn(parts-1)]: part 0 in this thread, the others on a worker pool, with BLAS
    at one thread while they run. parts == 1, or a call from inside a part, runs serially."""
    global _executor, _executor_size
    if parts <= 1 or getattr(_local, "inside", False):
        return [fn(i) for i in range(max(parts, 1))]
    with _lock:
        if _executor is None or _executor_size < parts - 1:
            if _executor is not None:
                _executor.shutdown(wait=True)
            _executor = ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="parts")
            _executor_size = parts - 1
        with one_blas_thread():
            futures = [_executor.submit(_mark_inside, fn, i) for i in range(1, parts)]
            try:
                first = _mark_inside(fn, 0)
            finally:
                wait(futures)  # never leave workers running past the BLAS limit
            return [first] + [f.result() for f in futures]
