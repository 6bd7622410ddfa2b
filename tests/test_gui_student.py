"""The app in a student's hands: the settings dock fits a laptop screen, Continue (a loaded
checkpoint, a stopped run), a checkpoint on other data, keys and wheel, only-misclassified,
what the app remembers (QSettings in a temporary file), pause, the download error, and the one
training history."""

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402

from tests.cifar_fixtures import write_cifar_tarball  # noqa: E402


@pytest.fixture
def settings(tmp_path):
    """An isolated settings file: no test reads or writes the user's settings."""
    return QtCore.QSettings(str(tmp_path / "rnnscope.ini"), QtCore.QSettings.IniFormat)


def _wait_loaded(qtbot, w, spec="probe", **kw):
    with qtbot.waitSignal(w.dataLoaded, timeout=60000):
        w.load_data(spec, **kw)


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow

    w = MainWindow(load=False)
    qtbot.addWidget(w)
    _wait_loaded(qtbot, w, subset=256)
    qtbot.waitUntil(lambda: w.explorer.trace is not None, timeout=60000)   # the preview
    yield w
    assert w.shutdown()


def _small(w, epochs=1000, eval_every=0):
    mp = w.model_panel
    mp.hidden_spin.setValue(8)
    mp.batch_spin.setValue(16)
    mp.epochs_spin.setValue(epochs)
    mp.eval_spin.setValue(eval_every)


def _settle(qtbot, ms=150):
    qtbot.wait(ms)
    QtWidgets.QApplication.processEvents()


# --- 4: the settings dock at laptop sizes -----------------------------------------------------
INPUTS = (QtWidgets.QAbstractSpinBox, QtWidgets.QComboBox, QtWidgets.QLineEdit,
          QtWidgets.QAbstractButton)


@pytest.mark.parametrize("size", [(1280, 720), (1366, 768)])
def test_every_settings_input_is_entirely_visible(window, qtbot, size):
    w = window
    w.resize(*size)
    w.show()
    _settle(qtbot, 300)
    assert w.width() <= size[0] and w.height() <= size[1]     # the window fits the screen
    scroll = w.settings_scroll
    viewport = scroll.viewport()
    inputs = [c for cls in INPUTS for c in w.dock.findChildren(cls)
              if c.isEnabled() and c.isVisibleTo(w.dock)
              and not isinstance(c.parentWidget(), QtWidgets.QAbstractSpinBox)
              and c.window() is w and c.parentWidget() is not scroll
              and not isinstance(c.parentWidget(), QtWidgets.QScrollBar)]
    names = {c.objectName() for c in inputs}
    assert {"hiddenSpin", "epochsSpin", "lrEdit", "openButton"} <= names
    assert scroll.horizontalScrollBar().maximum() == 0          # nothing is cut on the right
    for c in inputs:
        scroll.ensureWidgetVisible(c, 8, 8)
        _settle(qtbot, 20)
        top_left = c.mapTo(viewport, QtCore.QPoint(0, 0))
        rect = QtCore.QRect(top_left, c.size())
        assert viewport.rect().contains(rect), (c.objectName() or type(c).__name__, rect,
                                                viewport.rect())


def test_dock_widens_on_drag_and_recovers_after_a_small_window(window, qtbot):
    w = window
    w.resize(1920, 1080)
    w.show()
    _settle(qtbot, 300)
    wide = w.dock.width()
    w.resize(1280, 720)
    _settle(qtbot, 300)
    narrow = w.dock.width()
    assert narrow <= wide
    w.resize(1920, 1080)
    _settle(qtbot, 300)
    assert w.dock.width() >= wide - 2                    # back to what a wide window gives
    w.resize(1366, 768)
    _settle(qtbot, 300)
    before = w.dock.width()
    w.resizeDocks([w.dock], [before + 150], QtCore.Qt.Horizontal)   # what a drag does
    _settle(qtbot, 100)
    assert w.dock.width() >= before + 140


# --- 6: the wheel ---------------------------------------------------------------------------
def _wheel(widget, dy=-120):
    pos = QtCore.QPointF(widget.width() / 2, widget.height() / 2)
    ev = QtGui.QWheelEvent(pos, widget.mapToGlobal(pos), QtCore.QPoint(0, 0),
                           QtCore.QPoint(0, dy), QtCore.Qt.NoButton, QtCore.Qt.NoModifier,
                           QtCore.Qt.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(widget, ev)


def test_wheel_changes_a_value_only_with_focus(window, qtbot):
    w = window
    w.resize(1280, 720)
    w.show()
    _settle(qtbot, 300)
    spin, combo = w.model_panel.hidden_spin, w.model_panel.activation_combo
    bar = w.settings_scroll.verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(0)
    w.explorer.play_button.setFocus()
    value, index = spin.value(), combo.currentIndex()
    _wheel(spin)
    _wheel(combo)
    assert spin.value() == value and combo.currentIndex() == index
    assert bar.value() > 0                          # the wheel scrolled the panel instead
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=5000)
    _wheel(spin, dy=120)
    assert spin.value() != value                    # focused: the wheel is the spin box's


# --- 5: keys on the explorer ------------------------------------------------------------------
def test_arrow_keys_step_t_from_the_tab_bar_but_not_in_text_fields(window, qtbot):
    w = window
    e = w.explorer
    w.show()
    w.activateWindow()
    qtbot.waitActive(w)
    w.tabs.setCurrentWidget(e)
    bar = w.tabs.tabBar()
    bar.setFocus()
    qtbot.waitUntil(bar.hasFocus, timeout=5000)
    qtbot.keyClick(bar, QtCore.Qt.Key_Home)
    assert e.frame == 1 and w.tabs.currentWidget() is e
    qtbot.keyClick(bar, QtCore.Qt.Key_Right)
    assert e.frame == 2 and w.tabs.currentWidget() is e      # t moved, the tab did not
    qtbot.keyClick(bar, QtCore.Qt.Key_Left)
    assert e.frame == 1 and w.tabs.currentWidget() is e
    qtbot.keyClick(bar, QtCore.Qt.Key_End)
    assert e.frame == 2 * e.T
    e.random_button.setFocus()
    qtbot.keyClick(e.random_button, QtCore.Qt.Key_Home)
    assert e.frame == 1
    e.index_spin.setFocus()                    # a text field keeps its keys
    qtbot.waitUntil(e.index_spin.hasFocus, timeout=5000)
    qtbot.keyClick(e.index_spin, QtCore.Qt.Key_End)
    assert e.frame == 1
    w.tabs.setCurrentWidget(w.training_panel)  # another tab: the keys are the tab bar's
    bar.setFocus()
    qtbot.keyClick(bar, QtCore.Qt.Key_Right)
    assert w.tabs.currentWidget() is e and e.frame == 1


# --- 7: only misclassified --------------------------------------------------------------------
def test_only_misclassified_shows_a_mistake_and_says_how_many(window, qtbot):
    w = window
    e = w.explorer
    wrong_before = None
    for i in range(len(w.splits.val)):    # start on an image the preview model gets right
        e.index_spin.setValue(i)
        qtbot.waitUntil(lambda i=i: e.trace is not None and e.trace["index"] == i,
                        timeout=60000)
        if int(np.argmax(e.trace["probs"])) == e.trace["label"]:
            wrong_before = i
            break
    assert wrong_before is not None
    e.wrong_check.setChecked(True)
    qtbot.waitUntil(lambda: "val" in e.mistakes, timeout=60000)
    wrong = set(e.mistakes["val"].tolist())
    assert e.index_spin.value() in wrong and e.index_spin.value() != wrong_before
    assert "Finding" not in w.status.text()
    assert f"gets {len(wrong):,} of the first" in w.status.text()
    qtbot.waitUntil(lambda: e.trace["index"] == e.index_spin.value(), timeout=60000)
    assert int(np.argmax(e.trace["probs"])) != e.trace["label"]


# --- 1, 2, 15: Continue, the Train label, pause ------------------------------------------------
def _checkpoint(w, tmp_path, steps=4, splits=None, name="cli.npz"):
    from core.config import TrainConfig
    from core.trainer import Trainer

    cfg = TrainConfig(hidden=8, batch_size=16, epochs=3, eval_every=2)
    t = Trainer(cfg, splits or w.splits, checkpoint_dir=None)
    for ev in t.events():
        if ev["type"] == "step" and ev["step"] >= steps:
            t.cancel()
    path = tmp_path / name
    t.save_checkpoint(path)
    return t, path


def test_continue_a_loaded_checkpoint_then_a_stopped_run(window, qtbot, tmp_path):
    w = window
    t, path = _checkpoint(w, tmp_path)
    w.show()
    assert w.load_checkpoint(str(path))
    assert w.toolbar.continue_action.isVisible()
    qtbot.waitUntil(w.continue_button.isVisible, timeout=5000)
    assert w.continue_button.text() == f"Continue from step {t.step}"
    assert w.toolbar.train_button.text() == "New run"            # 2: says what Train does
    assert w.training_panel.step_count() == t.step                # its history is shown
    w.continue_button.click()
    qtbot.waitUntil(lambda: w.training_panel.step_count() >= t.step + 6, timeout=60000)
    worker = w.train_worker
    w.stop_training()
    qtbot.waitUntil(lambda: not w.is_training(), timeout=60000)
    # it continued: the optimizer's step count and the curves go on from the checkpoint's
    # (read once the run has stopped: while it runs, the two counts move on between reads)
    assert worker.trainer.optimizer.t == worker.trainer.step > t.step   # Adam's own count
    xs = w.training_panel.steps.data
    np.testing.assert_array_equal(xs, np.arange(1, len(xs) + 1))
    stopped = w.trainer.step
    stopped_params = {k: v.copy() for k, v in worker.stopped_params.items()}
    qtbot.waitUntil(w.continue_button.isVisible, timeout=5000)
    assert w.continue_button.text() == f"Continue from step {stopped}"
    assert w.toolbar.train_button.text() == "New run"
    w.continue_button.click()            # the stopped run, in place
    assert w.train_worker.trainer is w.trainer
    qtbot.waitUntil(lambda: w.training_panel.step_count() >= stopped + 3, timeout=60000)
    w.stop_training()
    qtbot.waitUntil(lambda: not w.is_training(), timeout=60000)
    xs = w.training_panel.steps.data
    np.testing.assert_array_equal(xs, np.arange(1, len(xs) + 1))
    assert w.trainer.step > stopped
    # it trained on from there: the parameters it stopped at the second time are new ones
    assert not np.array_equal(w._stopped_params["W_hh"], stopped_params["W_hh"])
    # the app's history is the trainer's own
    assert w.run_history["steps"] == w.trainer.history["steps"]
    assert w.run_history["dh_norm"] == w.trainer.history["dh_norm"]
    assert w.run_history["evals"] == w.trainer.history["evals"]


def test_a_stopped_run_continues_from_where_it_stopped_not_from_the_best(window, qtbot):
    w = window
    _small(w, eval_every=3)
    w.model_panel.lr_edit.setText("0.05")
    w.start_training()
    qtbot.waitUntil(lambda: w.training_panel.step_count() >= 10, timeout=60000)
    w.stop_training()
    qtbot.waitUntil(lambda: not w.is_training(), timeout=60000)
    stopped = w.trainer.step
    at_stop = {k: v.copy() for k, v in w._stopped_params.items()}
    assert w.trainer.history["steps"][-1]["step"] == stopped
    w.continue_training()
    # the first snapshot of the continued run is the state it goes on from
    qtbot.waitUntil(lambda: w.snapshot.get("label") == f"step {stopped}", timeout=60000)
    for k, v in at_stop.items():
        np.testing.assert_array_equal(w.snapshot["params"][k], v)
    w.stop_training()
    qtbot.waitUntil(lambda: not w.is_training(), timeout=60000)
    assert w.trainer.step >= stopped


def test_paused_progress_shows_no_eta_and_a_parked_save_is_consistent(window, qtbot, tmp_path):
    from core.checkpoint import load_checkpoint

    w = window
    _small(w, eval_every=2)
    w.start_training()
    qtbot.waitUntil(lambda: w.training_panel.step_count() >= 3, timeout=60000)
    tb = w.toolbar
    tb.pause_button.click()
    worker = w.train_worker
    qtbot.waitUntil(lambda: worker._parked, timeout=30000)
    qtbot.wait(200)
    assert tb.progress.format().startswith("paused") and "ETA" not in tb.progress.format()
    assert tb.speed_label.text() == ""
    path = tmp_path / "paused.npz"
    w.save_checkpoint(str(path))
    qtbot.waitUntil(lambda: path.exists(), timeout=30000)
    meta = load_checkpoint(path).meta
    assert meta["step"] == worker.trainer.step
    assert not meta["eval_pending"]
    if meta["step"] % 2 == 0:               # an evaluation was due: it had run first
        assert meta["last_eval_step"] == meta["step"]
    tb.pause_button.click()
    qtbot.waitUntil(lambda: "ETA" in tb.progress.format(), timeout=30000)
    w.stop_training()
    qtbot.waitUntil(lambda: not w.is_training(), timeout=60000)


# --- 3: a checkpoint on other data ------------------------------------------------------------
def test_wrong_data_checkpoint_is_refused_with_a_one_click_load(window, qtbot, tmp_path):
    from core.datasets import load_data

    w = window
    other = load_data("probe", probe_params={"cue_row": 2}, subset=256)
    t, path = _checkpoint(w, tmp_path, splits=other, name="cue3.npz")
    shown = w.snapshot
    assert not w.load_checkpoint(str(path))
    assert w.snapshot is shown and w.snapshot.get("untrained")   # nothing of it is shown
    assert "cue rows 3-6" in w.status.text() and "--data" not in w.status.text()
    button = w.checkpoint_data_button
    assert not button.isHidden() and "cue3.npz" in button.text()
    with qtbot.waitSignal(w.dataLoaded, timeout=60000):
        button.click()
    qtbot.waitUntil(lambda: w.snapshot is not None and not w.snapshot.get("untrained"),
                    timeout=60000)
    assert w.splits.info["probe"]["cue_row"] == 2 and w.data_panel.cue_spin.value() == 3
    assert w.snapshot["step"] == t.step and w.can_continue() and button.isHidden()


def test_checkpoint_of_missing_cifar_names_the_file_to_open(window, qtbot, tmp_path):
    from core.imageset import DataSplits

    w = window
    s = w.splits
    fake = DataSplits(s.train, s.val, s.test, "cifar10", "CIFAR-10 from elsewhere",
                      {"source": str(tmp_path / "gone" / "cifar-10-python.tar.gz"),
                       "subset": 256, "seed": 0, "scheme": "default"})
    _, path = _checkpoint(w, tmp_path, splits=fake, name="cifar.npz")
    shown = w.snapshot
    assert not w.load_checkpoint(str(path))
    assert w.snapshot is shown
    text = w.status.text()
    assert "gone/cifar-10-python.tar.gz" in text and "Open…" in text
    assert w.checkpoint_data_button.isHidden()


def test_new_data_drops_the_old_models_views(window, qtbot, tmp_path):
    w = window
    t, path = _checkpoint(w, tmp_path)
    assert w.load_checkpoint(str(path))
    qtbot.waitUntil(lambda: w.explorer.trace is not None
                    and w.explorer.trace["step"] == t.step, timeout=60000)
    _wait_loaded(qtbot, w, subset=128, probe_params={"cue_row": 10})
    assert w.training_panel.step_count() == 0 and not w.can_continue()
    assert w.vanishing.history_matrix()[0].size == 0
    assert w.explorer.trace is None or w.explorer.trace["step"] == 0
    qtbot.waitUntil(lambda: w.explorer.trace is not None, timeout=60000)
    assert w.snapshot.get("untrained")
    assert w.explorer.trace["image"].tobytes() == np.asarray(w.splits.val.images[
        w.explorer.trace["index"]]).tobytes()


# --- 8: what the app remembers ----------------------------------------------------------------
def test_window_data_and_folders_are_remembered(qtbot, settings, tmp_path):
    from app.main_window import MainWindow
    from app.settings import last_folder, remember_folder

    w = MainWindow(load=False, settings=settings)
    qtbot.addWidget(w)
    w.show()
    w.resize(1100, 730)
    _settle(qtbot, 200)
    w.resizeDocks([w.dock], [w.dock.width() + 37], QtCore.Qt.Horizontal)
    _settle(qtbot, 200)
    size, dock_width = w.size(), w.dock.width()
    assert size != QtCore.QSize(1500, 920)           # not the default size
    _wait_loaded(qtbot, w, probe_params={"cue_row": 5}, subset=200)
    remember_folder(settings, "checkpoints", str(tmp_path / "x.npz"))
    w.close()
    assert w.shutdown()
    w2 = MainWindow(settings=settings)           # data_spec None: the last data set
    qtbot.addWidget(w2)
    with qtbot.waitSignal(w2.dataLoaded, timeout=60000):
        pass
    # the size is restored (the test screen is 1920x1080, see conftest.py)
    assert w2.height() == size.height()
    assert w2.width() == size.width()
    w2.show()
    _settle(qtbot, 200)
    assert abs(w2.dock.width() - dock_width) <= 2     # the dock's width came back
    assert w2.splits.name == "probe" and w2.splits.info["probe"]["cue_row"] == 5
    assert last_folder(settings, "checkpoints") == str(tmp_path)
    assert w2.shutdown()


def test_a_remembered_cifar_file_reopens_and_a_missing_one_falls_back(qtbot, settings,
                                                                      tmp_path):
    from app.main_window import MainWindow

    tar = write_cifar_tarball(tmp_path, n_per_batch=20, seed=1)
    w = MainWindow(load=False, settings=settings)
    qtbot.addWidget(w)
    _wait_loaded(qtbot, w, str(tar), subset=None)
    assert w.splits.name == "cifar10"
    assert w.shutdown()
    w2 = MainWindow(settings=settings)
    qtbot.addWidget(w2)
    with qtbot.waitSignal(w2.dataLoaded, timeout=60000):
        pass
    assert w2.splits.name == "cifar10" and str(tar) in w2.splits.info["source"]
    assert w2.shutdown()
    tar.unlink()
    w3 = MainWindow(settings=settings)
    qtbot.addWidget(w3)
    with qtbot.waitSignal(w3.dataLoaded, timeout=60000):
        pass
    assert w3.splits.name == "probe"
    assert w3.shutdown()


# --- 15: the download error -------------------------------------------------------------------
def test_download_error_points_to_open_and_notices_cifar_is_loaded(qtbot, tmp_path):
    from app.main_window import MainWindow

    w = MainWindow(load=False)
    qtbot.addWidget(w)
    w.download_url = "http://127.0.0.1:9/cifar-10-python.tar.gz"   # nothing listens there
    _wait_loaded(qtbot, w)
    w.start_download()
    qtbot.waitUntil(lambda: "download" not in w._workers, timeout=60000)
    assert "Open…" in w.status.text()
    tar = write_cifar_tarball(tmp_path, n_per_batch=20, seed=1)
    _wait_loaded(qtbot, w, str(tar))
    w.start_download()
    qtbot.waitUntil(lambda: "download" not in w._workers, timeout=60000)
    assert "CIFAR-10 is already loaded" in w.status.text() and str(tar) in w.status.text()
    assert w.shutdown()
