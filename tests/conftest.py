"""Shared test setup.

GUI tests run offscreen: the platform is set here, before any Qt module is imported, so the
suite needs no display. Core tests never create a QApplication.
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Keep BLAS to one thread in tests: 2-core machines, and results must not depend on threading.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache folder: no test reads or writes the user's real cache."""
    monkeypatch.setenv("RNNSCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("RNNSCOPE_DATA", raising=False)
