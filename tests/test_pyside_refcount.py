"""Regression test for PySide6 6.12.0: every Signal.emit() from Python dropped a reference to
``True`` and the interpreter aborted (``Fatal Python error: bool_dealloc``) after ~1000 emits.
pyproject.toml pins PySide6 below 6.12; this test fails (or crashes) on a broken build.
"""

import sys

import pytest

QtCore = pytest.importorskip("PySide6.QtCore")


class _Emitter(QtCore.QObject):
    fired = QtCore.Signal(int)


def test_signal_emit_keeps_refcount_of_true(qtbot):
    emitter = _Emitter()
    received = []
    emitter.fired.connect(received.append)
    before = sys.getrefcount(True)
    for i in range(5000):
        emitter.fired.emit(i)
    after = sys.getrefcount(True)
    assert len(received) == 5000
    # Immortal objects (3.12+) report a huge constant; on 3.11 a leak shows as a drop of ~5000.
    assert after >= before - 50, f"refcount(True) dropped from {before} to {after}"


def test_installed_pyside_is_below_the_broken_release():
    import PySide6

    major, minor = (int(p) for p in PySide6.__version__.split(".")[:2])
    assert (major, minor) < (6, 12), PySide6.__version__
