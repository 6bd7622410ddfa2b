"""The Training menu's "Train on all cores": off by default, remembered, the workers each run
gets, and the worker processes and their shared memory ending with the run however it ends
(Stop, Continue, closing the window mid-run, a worker that dies)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
from PySide6 import QtCore, QtGui  # noqa: E402

from core.process_parallel import SEGMENT_PREFIX  # noqa: E402
from tests.test_process_parallel import _alive, _worker_children  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHM = Path("/dev/shm")
ALL = 2   # worker processes "all cores" means in these tests (whatever the machine has)
pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="needs /dev/shm (Linux)")


@pytest.fixture
def settings(tmp_path):
    """An isolated settings file: no test reads or writes the user's settings."""
    return QtCore.QSettings(str(tmp_path / "rnnscope.ini"), QtCore.QSettings.IniFormat)


@pytest.fixture
def two_cores(monkeypatch):
    """"All cores" = 2 worker processes here, so the multi-process path runs on any machine."""
    import app.train_worker as tw

    monkeypatch.setattr(tw, "default_workers", lambda cap=4: min(cap, ALL))


def _my_segments() -> set[str]:
    """This process's shared-memory segments (other engineers' runs make their own)."""
    mine = f"{SEGMENT_PREFIX}{os.getpid()}_"
    return {p.name for p in SHM.iterdir() if p.name.startswith(mine)}


def _qt_mapped(pid: int) -> list[str]:
    """Qt / PySide6 libraries mapped into process ``pid``."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return sorted({ln.split()[-1] for ln in maps.splitlines()
                   if "libQt6" in ln or "PySide6" in ln or "shiboken6" in ln})


def _window(qtbot, settings, all_cores=True):
    from app.main_window import MainWindow

    w = MainWindow(load=False, settings=settings)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.dataLoaded, timeout=60000):
        w.load_data("probe", 256)
    mp = w.model_panel
    mp.model_combo.setCurrentIndex(mp.model_combo.findData("row-rnn"))
    mp.hidden_spin.setValue(8)
    mp.batch_spin.setValue(16)
    mp.epochs_spin.setValue(1000)
    mp.eval_spin.setValue(0)
    w.all_cores_action.setChecked(all_cores)
    return w


def _wait_workers(qtbot, n: int) -> list[int]:
    qtbot.waitUntil(lambda: len(_worker_children(os.getpid())) == n, timeout=60000)
    return _worker_children(os.getpid())


def _stop(qtbot, w):
    w.toolbar.stop_button.click()
    qtbot.waitUntil(lambda: not w.is_training(), timeout=60000)


def test_the_action_is_off_by_default_and_remembered(qtbot, settings, two_cores):
    from app.main_window import MainWindow

    w = MainWindow(load=False, settings=settings)
    qtbot.addWidget(w)
    action = w.findChild(QtGui.QAction, "allCoresAction")
    assert action is w.all_cores_action and action.isCheckable() and not action.isChecked()
    menus = {a.text().replace("&", ""): a.menu() for a in w.menuBar().actions()}
    assert action in menus["Training"].actions()
    assert f"({ALL} processes)" in action.text()
    assert w.train_workers() == 1 and "1 process" in w.processes_label.text()
    action.trigger()                                  # the user ticks it
    assert action.isChecked() and w.train_workers() == ALL
    assert f"{ALL} processes" in w.processes_label.text()
    assert settings.value("training/all_cores", type=bool) is True
    again = MainWindow(load=False, settings=settings)
    qtbot.addWidget(again)
    assert again.all_cores_action.isChecked() and again.train_workers() == ALL
    again.all_cores_action.trigger()                  # and unticks it
    third = MainWindow(load=False, settings=settings)
    qtbot.addWidget(third)
    assert not third.all_cores_action.isChecked() and third.train_workers() == 1
    forgetful = MainWindow(load=False)                # no QSettings: nothing remembered
    qtbot.addWidget(forgetful)
    assert not forgetful.all_cores_action.isChecked()


def test_the_train_config_gets_the_setting_s_workers(two_cores):
    from app.train_worker import TrainWorker, app_resume_overrides, app_workers
    from core.config import TrainConfig
    from core.threads import default_workers

    assert app_workers(False) == 1 and app_workers(True) == ALL
    cfg = TrainConfig(model="row-rnn", hidden=8, workers=3)    # a preset's or checkpoint's
    assert TrainWorker(cfg, workers=app_workers(False)).config.workers == 1
    assert TrainWorker(cfg, workers=app_workers(True)).config.workers == ALL
    assert app_resume_overrides(app_workers(True)) == {"workers": ALL}
    import app.train_worker as tw

    assert tw.ALL_CORES_CAP == 4 and default_workers(4) <= 4   # the real one: cores, at most 4


def _training_on_all_cores(qtbot, settings, steps: int):
    """A window training on all cores, past ``steps`` steps -> (window, worker pids)."""
    w = _window(qtbot, settings)
    w.toolbar.train_button.click()
    qtbot.waitUntil(lambda: w.training_panel.steps.n >= steps, timeout=90000)
    return w, _wait_workers(qtbot, ALL)


def test_closing_the_window_mid_run_ends_the_worker_processes(qtbot, settings, two_cores):
    before = _my_segments()
    w, pids = _training_on_all_cores(qtbot, settings, steps=3)
    assert w.train_worker.trainer.config.workers == ALL
    qtbot.waitUntil(lambda: w.processes_label.text().strip() == f"training on {ALL} processes",
                    timeout=30000)
    assert _my_segments() - before                     # parameters, gradients, batch
    for pid in pids:                                   # spawned interpreters: core only
        assert _qt_mapped(pid) == [], pid
    assert _qt_mapped(os.getpid())                     # (the check sees Qt where it is)
    w.close()                                          # the user closes the window mid-run
    assert not w.is_training()
    assert not any(_alive(p) for p in pids)
    assert _worker_children(os.getpid()) == [] and _my_segments() == before


def test_pause_save_stop_and_continue_on_another_number_of_processes(qtbot, settings,
                                                                      two_cores, tmp_path):
    before = _my_segments()
    w, pids = _training_on_all_cores(qtbot, settings, steps=3)
    tb = w.toolbar
    tb.pause_button.click()
    worker = w.train_worker
    qtbot.waitUntil(lambda: worker._parked, timeout=30000)
    path = tmp_path / "paused.npz"
    w.save_checkpoint(str(path))                       # written while parked, from here
    qtbot.waitUntil(lambda: "Saved checkpoint" in w.status.text(), timeout=30000)
    assert path.exists() and all(_alive(p) for p in pids)   # paused: the pool stays
    tb.pause_button.click()
    qtbot.waitUntil(lambda: worker.trainer.step >= 6, timeout=60000)
    _stop(qtbot, w)
    assert not any(_alive(p) for p in pids) and _my_segments() == before
    assert w.can_continue()

    w.all_cores_action.setChecked(False)               # the stopped run goes on in 1 process
    at = w.trainer.step
    tb.continue_button.click()
    qtbot.waitUntil(lambda: w.train_worker.trainer.step >= at + 3, timeout=60000)
    assert w.train_worker.trainer.config.workers == 1
    # the label follows the run's 'started' event (queued; the step was read off the trainer)
    qtbot.waitUntil(lambda: w.processes_label.text().strip() == "training on 1 process",
                    timeout=30000)
    assert _worker_children(os.getpid()) == []
    _stop(qtbot, w)
    assert w.trainer.history["config"]["workers"] == 1

    assert w.load_checkpoint(str(path))                # the saved checkpoint on all cores
    w.all_cores_action.setChecked(True)
    tb.continue_button.click()
    pids = _wait_workers(qtbot, ALL)
    assert w.train_worker.trainer.config.workers == ALL
    _stop(qtbot, w)
    assert not any(_alive(p) for p in pids) and _my_segments() == before


def test_a_worker_process_that_dies_stops_the_run_with_one_line(qtbot, settings, two_cores):
    before = _my_segments()
    w, pids = _training_on_all_cores(qtbot, settings, steps=2)
    os.kill(pids[0], signal.SIGKILL)
    qtbot.waitUntil(lambda: not w.is_training(), timeout=60000)
    text = w.status.text()
    assert "stopped unexpectedly (killed by SIGKILL)" in text and "\n" not in text
    assert not any(_alive(p) for p in pids) and _my_segments() == before
    assert w.toolbar.train_button.isEnabled()          # a new run can start
    w.toolbar.train_button.click()
    pids = _wait_workers(qtbot, ALL)
    w.close()
    assert not any(_alive(p) for p in pids) and _my_segments() == before


def test_a_spawned_worker_does_not_start_the_app():
    """Spawn re-imports the parent's main module under the name '__mp_main__' before it runs
    the worker (multiprocessing.spawn runs it with runpy.run_path): for ``python main.py``
    that import must neither open a window nor import Qt."""
    code = ("import runpy, sys\n"
            "sys.argv = ['main.py']\n"
            f"runpy.run_path({str(ROOT / 'main.py')!r}, run_name='__mp_main__')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'shiboken6', 'pyqtgraph', 'app')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
