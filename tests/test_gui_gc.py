"""Garbage is collected on the GUI thread only (app/gc_policy.py): a cyclic collection on a
worker thread that frees Qt objects can deadlock Qt and shiboken against the GUI thread."""

import gc
import threading
import weakref

import pytest

pytest.importorskip("PySide6")

from test_gui_training import _small  # noqa: E402

TRAIN_STEPS = 300


class _Owner:
    """A Python object in a reference cycle with the Qt objects it holds."""


def _make_qt_cycle(made: list):
    """A QMenu with QActions and a QObject, all in a cycle with one Python object, dropped at
    once: only the cyclic collector can free them (the hang was in QMenu/QAction destructors)."""
    from PySide6 import QtCore, QtWidgets

    owner = _Owner()
    owner.menu = QtWidgets.QMenu()
    owner.menu.owner = owner
    owner.actions = [owner.menu.addAction(f"action {i}") for i in range(3)]
    for action in owner.actions:
        action.owner = owner
    owner.obj = QtCore.QObject()
    owner.obj.owner = owner
    made.append(weakref.ref(owner))


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow

    w = MainWindow(load=False)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.dataLoaded, timeout=60000):
        w.load_data("probe", 256)
    yield w
    assert w.shutdown()


def test_collections_run_on_the_gui_thread_only(window, qtbot):
    from PySide6 import QtCore

    from app import gc_policy

    w = window
    assert gc_policy.active() and not gc.isenabled()
    gui = threading.get_ident()
    collected_on: list[int] = []

    def record(phase, info):
        if phase == "start":
            collected_on.append(threading.get_ident())

    made: list = []
    garbage_timer = QtCore.QTimer()
    garbage_timer.timeout.connect(lambda: _make_qt_cycle(made))
    gc.callbacks.append(record)
    try:
        garbage_timer.start(20)
        # train a few hundred steps with the Explorer following (traces on the trace worker)
        _small(w)
        w.tabs.setCurrentWidget(w.explorer)
        w.explorer.follow_check.setChecked(True)
        w.start_training()
        qtbot.waitUntil(lambda: w.train_worker.trainer is not None
                        and w.train_worker.trainer.step >= TRAIN_STEPS, timeout=240000)
        w.explorer.wrong_check.setChecked(True)     # misclassified images: the trace worker
        w.stop_training()
        qtbot.waitUntil(lambda: not w.is_training(), timeout=60000)
        qtbot.waitUntil(lambda: w.explorer.trace is not None
                        and w.explorer.trace["step"] == w.snapshot["step"], timeout=60000)
        # the report (t-SNE and matplotlib figures on the report worker)
        w.tabs.setCurrentWidget(w.reports)
        w.reports.split_combo.setCurrentText("val")
        w.reports.build_button.click()
        qtbot.waitUntil(lambda: "report" not in w._workers, timeout=300000)
        assert "confusion" in w.reports.frames
        qtbot.wait(int(2.5 * gc_policy.INTERVAL_S * 1000))   # the timer's next collections
    finally:
        garbage_timer.stop()
        gc.callbacks.remove(record)
    assert w.trainer.step >= TRAIN_STEPS
    assert len(made) > 50
    assert sum(ref() is None for ref in made) > 0      # Qt garbage in cycles was freed ...
    elsewhere = [ident for ident in collected_on if ident != gui]
    assert elsewhere == [], f"{len(elsewhere)} of {len(collected_on)} off the GUI thread"
    assert gui in collected_on                         # ... by the GUI thread's collector


def test_one_collector_per_application_and_gc_back_after(qapp):
    from app import gc_policy

    first = gc_policy.install(qapp)
    assert gc_policy.install() is first and gc_policy.collector() is first
    assert first.timer.isActive() and first.timer.thread() is qapp.thread()
    assert not gc.isenabled()
    gc_policy.uninstall()
    assert gc.isenabled() and not gc_policy.active()
    assert gc_policy.install() is first and gc_policy.active()   # the fixture's state again


def test_install_refuses_a_worker_thread(qapp):
    from app import gc_policy

    errors = []

    def install_here():
        try:
            gc_policy.install(qapp)
        except RuntimeError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=install_here)
    t.start()
    t.join()
    assert errors and "GUI thread" in errors[0]
    assert gc_policy.active()


def test_run_app_installs_the_policy(qapp, monkeypatch):
    """``python main.py`` starts the app with the policy on, and a second start adds none."""
    import app.main_window as mw
    from app import gc_policy

    gc_policy.uninstall()
    assert gc.isenabled()
    windows, seen = [], []

    class Window(mw.MainWindow):
        def __init__(self, settings=None):
            super().__init__(load=False)  # no settings: a test never touches the user's
            windows.append(self)

    def event_loop():     # instead of the real one, which a test's QApplication must not end
        seen.append((gc_policy.active(), gc_policy.collector()))
        windows[-1].close()
        return 0

    monkeypatch.setattr(mw, "MainWindow", Window)
    monkeypatch.setattr(qapp, "exec", event_loop)
    assert mw.run_app(["rnnscope"]) == 0
    assert mw.run_app(["rnnscope"]) == 0
    assert [on for on, _ in seen] == [True, True]
    assert seen[0][1] is seen[1][1] is gc_policy.collector()
