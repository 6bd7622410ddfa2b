"""While the app runs, Python's cyclic garbage collector runs on the GUI thread only.

Why: CPython runs a cyclic collection on whichever thread happens to allocate past the
collector's threshold, and every worker here (training, traces, reports, loading, download)
allocates heavily, so most collections would run on a worker thread. When such a collection
frees a Qt object that lives in the GUI thread (a QMenu and its QActions kept in a reference
cycle with Python objects, say), Qt and shiboken deadlock against the GUI thread: the worker,
inside ``QObject::~QObject``, holds a Qt mutex and waits for the GIL, while the GUI thread holds
the GIL and waits for that mutex (or Qt crashes). This hung the test suite in the Reports tab.

The policy is pyqtgraph's ``GarbageCollector``: ``gc.disable()`` plus a QTimer on the GUI thread
that collects every generation past its threshold, once per ``INTERVAL_S``. Nothing in rnnscope
calls ``gc.collect()`` on a worker thread (an explicit collection would bypass the policy).

``install()`` is called by ``app.main_window.run_app`` and, for every test that uses a
QApplication, by an autouse fixture in tests/conftest.py (which calls ``uninstall()`` after the
test, so the core tests keep Python's default). There is one collector per QApplication:
calling ``install()`` again returns the same one.
"""

from __future__ import annotations

import gc
import weakref

from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6 import QtCore, QtWidgets

INTERVAL_S = 1.0   # how often the GUI thread looks at the collector's counts

_collector: GarbageCollector | None = None
_owner: weakref.ref | None = None      # the QApplication the collector belongs to


def install(app: QtCore.QCoreApplication | None = None) -> GarbageCollector:
    """Disable automatic collection and collect from a timer on ``app``'s (the GUI) thread.

    Call it on the GUI thread, after the QApplication exists. Idempotent: one collector per
    QApplication; after ``uninstall()`` the same collector is started again.
    """
    global _collector, _owner
    app = app or QtWidgets.QApplication.instance()
    if app is None:
        raise RuntimeError("gc_policy.install() needs a QApplication")
    if QtCore.QThread.currentThread() is not app.thread():
        raise RuntimeError("gc_policy.install() must be called on the GUI thread")
    if _collector is None or _owner is None or _owner() is not app:
        if _collector is not None:
            _collector.timer.stop()        # it belonged to an earlier QApplication
        _collector = GarbageCollector(interval=INTERVAL_S)   # gc.disable() + timer.start()
        _owner = weakref.ref(app)
    elif not _collector.timer.isActive():
        gc.disable()
        _collector.timer.start()
    return _collector


def uninstall() -> None:
    """Stop the timer, collect once here (the GUI thread) and give collection back to Python."""
    if _collector is not None:
        _collector.timer.stop()
    gc.collect()
    gc.enable()


def collector() -> GarbageCollector | None:
    """The collector ``install()`` made (None before the first install)."""
    return _collector


def active() -> bool:
    """True while automatic collection is off and the GUI thread's timer collects instead."""
    return _collector is not None and _collector.timer.isActive() and not gc.isenabled()
