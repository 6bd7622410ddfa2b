"""Run a worker QObject on its own QThread (the Orange3 owsom.py pattern) and stop it cleanly.

``start_worker(worker, slot_name='run')`` moves ``worker`` to a new QThread, calls its slot
when the thread starts, and quits the thread when the worker emits ``done``. ``stop_worker``
asks the worker to cancel, then quit() + wait() — so closing the window never leaves a thread
running (Qt would print "QThread: Destroyed while thread is still running").
"""

from __future__ import annotations

from PySide6 import QtCore


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
