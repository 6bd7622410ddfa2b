"""Limit the BLAS thread pool (OpenBLAS / MKL) through threadpoolctl.

The training worker in the app uses one BLAS thread so the GUI thread keeps a core; the
command line may use more. ``limit_blas_threads(n)`` applies the limit at once and returns a
context manager that restores the previous limits on exit::

    limit_blas_threads(1)            # from now on, in this process
    with limit_blas_threads(1):      # only inside the block
        trainer.run()
"""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits


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
