"""Run a worker QObject on its own QThread (the Orange3 owsom.py pattern) and stop it cleanly.

``start_worker(worker, slot_name='run')`` moves ``worker`` to a new QThread, calls its slot
when the thread starts, and quits the thread when the worker emits ``done``. ``stop_worker``
asks the worker to cancel, then quit() + wait() — so closing the window never leaves a thread
running (Qt would print "QThread: Destroyed while thread is still running").

``Worker`` is the base of the app's workers: it owns the error handling and the ``done`` signal.
"""

from __future__ import annotations

import contextlib
import traceback

from PySide6 import QtCore

from core.errors import RnnscopeError


class Worker(QtCore.QObject):
    """A job for a QThread: ``run()`` (the slot ``start_worker`` calls) runs ``work()``, then
    always emits ``done()``; an exception in it becomes ``failed(message)``.

    A user mistake (an ``RnnscopeError``) fails with its own one-line message; anything else is
    a bug in rnnscope: its traceback goes to stderr and the message is "internal error while
    <doing>: ...". A worker that serves many requests instead of one job wraps each in
    ``errors_reported()``.
    """

    failed = QtCore.Signal(str)
    done = QtCore.Signal()
    doing = "working"    # completes "internal error while ..."

    def work(self):
        raise NotImplementedError

    @QtCore.Slot()
    def run(self):
        try:
            with self.errors_reported():
                self.work()
        finally:
            self.done.emit()

    @contextlib.contextmanager
    def errors_reported(self):
        try:
            yield
        except RnnscopeError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:
            traceback.print_exc()
            self.failed.emit(f"internal error while {self.doing}: {exc!r}")


def start_worker(worker: QtCore.QObject, slot_name: str = "run") -> QtCore.QThread:
    thread = QtCore.QThread()
    thread.setObjectName(type(worker).__name__ + "Thread")
    worker.moveToThread(thread)
    thread.started.connect(getattr(worker, slot_name))
    if hasattr(worker, "done"):
        worker.done.connect(thread.quit)
    thread.start()
    return thread


def stop_worker(worker, thread: QtCore.QThread | None, timeout_ms: int = 30000) -> bool:
    """Cancel ``worker`` (if it can), quit its thread and wait; True if the thread ended."""
    if worker is not None and hasattr(worker, "cancel"):
        worker.cancel()
    if thread is None:
        return True
    thread.quit()
    return thread.wait(timeout_ms)
