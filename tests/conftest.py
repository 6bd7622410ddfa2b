"""Shared test setup.

GUI tests run offscreen: the platform is set here, before any Qt module is imported, so the
suite needs no display. Core tests never create a QApplication. Tests that do collect garbage on
the GUI thread only, as the app does (``_gc_on_gui_thread``).
"""

import os
from pathlib import Path

# one 1920x1080 screen (the plugin's default is 800x600, smaller than any laptop the app is
# made for, so restored window sizes would be clamped to it)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen:configfile="
                      + str(Path(__file__).with_name("offscreen_screen.json")))
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


@pytest.fixture(autouse=True)
def _gc_on_gui_thread(request):
    """A test that uses a QApplication (pytest-qt's ``qapp``, so every ``qtbot`` test) collects
    garbage on the GUI thread only, as the app does (app/gc_policy.py); afterwards a last
    collection runs here and Python's automatic collection is back for the core tests."""
    if "qapp" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("qapp")
    from app import gc_policy

    gc_policy.install()
    try:
        yield
    finally:
        gc_policy.uninstall()


@pytest.fixture
def explorer(qtbot):
    """An ExplorerPanel on its own (no window), 1300 x 800, with a 10-image val split."""
    from app.explorer_panel import ExplorerPanel

    e = ExplorerPanel()
    qtbot.addWidget(e)
    e.resize(1300, 800)
    e.split_sizes = {"val": 10}
    e.index_spin.setRange(0, 9)
    return e
