"""Limit the BLAS thread pool (OpenBLAS / MKL) through threadpoolctl.

The training worker in the app uses one BLAS thread so the GUI thread keeps a core; the
command line may use more. ``limit_blas_threads(n)`` applies the limit at once and returns a
context manager that restores the previous limits on exit::

    limit_blas_threads(1)            # from now on, in this process
    with limit_blas_threads(1):      # only inside the block
        trainer.run()

The recurrent loops can run on their own thread count (``set_loop_blas_threads``): their
per-step products ((N, H) @ (H, H)) are small, and on a machine whose cores are busy with
other work each BLAS thread of such a product can wait for a descheduled sibling, while the
big matmuls around the loops (input projection, dW) still gain from several threads.
"""

from __future__ import annotations

from contextlib import nullcontext

from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

_loop_threads: int | None = None  # BLAS threads inside the recurrent loops; None = no change
_controller: ThreadpoolController | None = None


def limit_blas_threads(n: int = 1) -> threadpool_limits:
    """Limit every loaded BLAS library to ``n`` threads (n >= 1); usable as a context manager."""
    n = int(n)
    if n < 1:
        raise ValueError(f"BLAS thread count must be >= 1, got {n}")
    return threadpool_limits(limits=n, user_api="blas")


def blas_threads() -> int | None:
    """The current BLAS thread count (max over loaded BLAS libraries), None if none is loaded."""
    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(counts) if counts else None


def set_loop_blas_threads(n: int | None) -> None:
    """Run the recurrent loops on ``n`` BLAS threads (None = the caller's setting)."""
    global _loop_threads
    if n is not None and int(n) < 1:
        raise ValueError(f"loop BLAS threads must be >= 1 or None, got {n!r}")
    _loop_threads = None if n is None else int(n)


def loop_blas_limit():
    """The context the recurrent loops run in: ``set_loop_blas_threads``'s limit, restored on
    exit, or nothing when it is None."""
    global _controller
    if _loop_threads is None:
        return nullcontext()
    if _controller is None:
        _controller = ThreadpoolController()  # created after NumPy has loaded its BLAS
    return _controller.limit(limits=_loop_threads, user_api="blas")
