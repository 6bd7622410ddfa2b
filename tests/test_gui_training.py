"""Training through the window: Pause/Resume/Stop, checkpoints, the CNN+RNN explorer, and
closing while training (in a child process, so its stderr can be checked)."""

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow

    w = MainWindow(load=False)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.dataLoaded, timeout=60000):
        w.load_data("probe", 256)          # a small training split: quick epochs
    yield w
    assert w.shutdown()


def _small(w, model="row-rnn", epochs=1000):
    mp = w.model_panel
    mp.model_combo.setCurrentIndex(mp.model_combo.findData(model))
    mp.hidden_spin.setValue(8)
    mp.batch_spin.setValue(16)
    mp.epochs_spin.setValue(epochs)
    mp.eval_spin.setValue(0)


def test_pause_resume_stop(window, qtbot):
    w = window
    _small(w)
    tb = w.toolbar
    tb.train_button.click()
    assert w.is_training() and not tb.train_button.isEnabled() and tb.stop_button.isEnabled()
    assert not w.model_panel.hidden_spin.isEnabled()          # the running config is locked
    qtbot.waitUntil(lambda: w.training_panel.steps.n >= 3, timeout=60000)
    assert "images/s" in tb.speed_label.text() and "ETA" in tb.progress.format()
    tb.pause_button.click()
    assert tb.pause_button.text() == "Resume"
    worker = w.train_worker
    qtbot.waitUntil(lambda: worker.trainer is not None and worker._parked, timeout=30000)
    qtbot.wait(300)
    step = worker.trainer.step
    shown = w.training_panel.steps.n
    qtbot.wait(700)
    assert worker.trainer.step == step and w.training_panel.steps.n == shown  # really paused
    tb.pause_button.click()
    assert tb.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: worker.trainer.step >= step + 3, timeout=60000)
    at_stop = worker.trainer.step
    tb.stop_button.click()
    qtbot.waitUntil(lambda: not w.is_training(), timeout=30000)
    assert worker.trainer.step <= at_stop + 1                  # within one training step
    assert w.trainer.finished["reason"] == "cancelled"
    assert "cancelled" in w.training_panel.stats.text()
    assert tb.train_button.isEnabled() and not tb.stop_button.isEnabled()
    assert w.model_panel.hidden_spin.isEnabled() and w.toolbar.save_button.isEnabled()


def test_step_events_are_batched_to_about_20_per_second(window, qtbot):
    w = window
    _small(w)
    w.start_training()
    from app.train_worker import EMIT_INTERVAL_S

    emits, others = [], []
    w.train_worker.steps.connect(lambda events: emits.append(len(events)))
    w.train_worker.event.connect(lambda ev: others.append(ev.get("type")))
    qtbot.waitUntil(lambda: len(emits) >= 1, timeout=60000)
    t0, n0, m0 = time.perf_counter(), len(emits), len(others)
    qtbot.wait(2000)
    seconds = time.perf_counter() - t0
    batches, forced = len(emits) - n0, len(others) - m0
    w.stop_training()
    qtbot.waitUntil(lambda: not w.is_training(), timeout=30000)
    # at most one batch per EMIT_INTERVAL_S, plus one per other event (an evaluation sends
    # the pending steps first); a worker that emitted every step would send hundreds
    assert batches <= seconds / EMIT_INTERVAL_S + forced + 2, (batches, forced, seconds)
    # no step is dropped: the batches add up to every step the trainer made
    assert w.training_panel.steps.n == w.trainer.step
    np.testing.assert_array_equal(w.training_panel.steps.data, np.arange(1, w.trainer.step + 1))


def test_checkpoint_save_load_continue_on_one_thread(window, qtbot, tmp_path):
    from core.config import TrainConfig
    from core.trainer import Trainer

    w = window
    # a run made by the command line with two batch threads
    cfg = TrainConfig(hidden=8, batch_size=16, epochs=3, workers=2, init="orthogonal")
    t = Trainer(cfg, w.splits, checkpoint_dir=None)
    for ev in t.events():
        if ev["type"] == "step" and ev["step"] >= 4:
            t.cancel()
    cli = tmp_path / "cli.npz"
    t.save_checkpoint(cli)
    assert w.load_checkpoint(str(cli))
    assert w.can_continue()     # the trainer itself is built on the training thread
    assert w.model_panel.config().workers == 1 and w.model_panel.hidden_spin.value() == 8
    w.show()     # a toolbar shows its widgets (through their actions) once it is shown
    assert w.toolbar.continue_action.isVisible()
    qtbot.waitUntil(lambda: w.continue_button.isVisible(), timeout=5000)
    qtbot.waitUntil(lambda: w.explorer.trace is not None
                    and w.explorer.trace["step"] == t.step, timeout=60000)
    assert "checkpoint cli.npz" in w.explorer.model_label.text()
    w.continue_button.click()
    qtbot.waitUntil(lambda: w.train_worker.trainer is not None, timeout=60000)
    assert w.train_worker.trainer.config.workers == 1
    qtbot.waitUntil(lambda: not w.is_training(), timeout=120000)
    assert w.trainer.config.workers == 1 and w.toolbar.save_button.isEnabled()
    assert w.trainer.step > t.step
    saved = tmp_path / "app.npz"
    w.save_checkpoint(str(saved))
    assert saved.stat().st_size > 0 and "Saved checkpoint" in w.status.text()
    assert not w.load_checkpoint(str(tmp_path / "missing.npz"))   # explained, not raised
    assert "missing.npz" in w.status.text()


def test_cnn_rnn_explorer_shows_the_models_trace(window, qtbot):
    from app.trace_job import ModelCache

    w = window
    _small(w, "cnn-rnn", epochs=1)
    w.start_training()
    qtbot.waitUntil(lambda: not w.is_training(), timeout=300000)
    snap = w.snapshot
    assert snap["config"]["kind"] == "cnn-rnn"
    qtbot.waitUntil(lambda: w.explorer.trace is not None
                    and w.explorer.trace["step"] == snap["step"], timeout=60000)
    e = w.explorer
    split, idx = e.current_choice()
    imageset = getattr(w.splits, split)
    model, norm = ModelCache().model(snap)
    x = model.input_from_images(norm.apply(np.asarray(imageset.images[idx:idx + 1])))
    ref = model.trace(x, np.asarray(imageset.labels[idx:idx + 1]))
    T = ref.hidden.shape[1]
    assert T == 8 and e.slider.maximum() == 8 and not e.feature_frame.isHidden()
    for t in range(1, T + 1):
        e.set_frame(t)
        np.testing.assert_allclose(e.heatmap.image_item.image[:, :t], ref.hidden[0, :t].T,
                                   rtol=1e-5, atol=1e-6)
        for k, curve in enumerate(e.step_probs.curves):
            _, y = curve.getOriginalDataset()
            np.testing.assert_allclose(y, ref.step_probs[0, :t, k], rtol=1e-5, atol=1e-6)
        band = e.image_view.band.rect()
        assert (band.top(), band.height()) == (4 * (t - 1), 4)   # the 4-row band of step t
        assert e.feature_view.band.rect().top() == t - 1
    for frame in range(T + 1, 2 * T + 1):   # backward: the profile grows leftwards
        e.set_frame(frame)
        t = 2 * T + 1 - frame
        x_shown, g = e.grad_norm.curve.getOriginalDataset()
        np.testing.assert_array_equal(x_shown, np.arange(t, T + 1))
        np.testing.assert_allclose(g, np.linalg.norm(ref.dh[0, t - 1:], axis=1), rtol=1e-4)
    assert e.clip_view.record is not None and e.clip_view.table.rowCount() > 0


def test_explorer_keyboard_and_play(window, qtbot):
    from PySide6 import QtCore

    w = window
    qtbot.waitUntil(lambda: w.explorer.trace is not None, timeout=60000)   # the preview
    e = w.explorer
    w.show()
    w.activateWindow()
    qtbot.waitActive(w)        # shortcuts fire in the active window only
    w.tabs.setCurrentWidget(e)
    e.slider.setFocus()
    qtbot.waitUntil(lambda: e.slider.hasFocus(), timeout=5000)
    qtbot.keyClick(e.slider, QtCore.Qt.Key_Home)
    assert e.frame == 1 and e.forward_radio.isChecked()
    qtbot.keyClick(e.slider, QtCore.Qt.Key_Right)
    assert e.frame == 2 and e.t_label.text() == f"t = 2 / {e.T}"
    qtbot.keyClick(e.slider, QtCore.Qt.Key_Left)
    assert e.frame == 1
    qtbot.keyClick(e.slider, QtCore.Qt.Key_End)
    assert e.frame == 2 * e.T and e.backward_radio.isChecked()
    e.speed_combo.setCurrentIndex(e.speed_combo.count() - 1)   # fastest
    qtbot.keyClick(e.slider, QtCore.Qt.Key_Space)   # at the end: plays from the start
    assert e.play_button.isChecked() and e.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: e.frame > 5, timeout=10000)
    qtbot.keyClick(e.slider, QtCore.Qt.Key_Space)
    assert not e.play_button.isChecked()
    frame = e.frame
    qtbot.wait(300)
    assert e.frame == frame


CLOSE_WHILE_TRAINING = textwrap.dedent("""
    import os, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    sys.path.insert(0, sys.argv[1])
    from PySide6 import QtCore, QtWidgets
    app = QtWidgets.QApplication([])
    from app import gc_policy
    gc_policy.install(app)     # as run_app does: garbage is collected on the GUI thread only
    from app.main_window import MainWindow
    w = MainWindow(data_spec="probe")
    w.show()
    def tick():
        if w.splits is not None and not w.is_training() and w.training_panel.steps.n == 0:
            w.model_panel.hidden_spin.setValue(16)
            w.start_training()
        elif w.training_panel.steps.n >= 5:
            timer.stop()
            w.close()          # the user closes the window mid-run
            app.quit()
    timer = QtCore.QTimer()
    timer.timeout.connect(tick)
    timer.start(50)
    QtCore.QTimer.singleShot(240000, lambda: (print("timeout"), app.exit(3)))
    code = app.exec()
    print("steps", w.training_panel.steps.n, "exit", code, "gc_policy", gc_policy.active())
    sys.exit(code)
""")

# the offscreen platform plugin's own notice, not the app's output
QT_PLATFORM_NOISE = ("This plugin does not support propagateSizeHints()",)


def test_closing_during_training_exits_cleanly(tmp_path):
    script = tmp_path / "close.py"
    script.write_text(CLOSE_WHILE_TRAINING)
    env = {**__import__("os").environ, "RNNSCOPE_CACHE": str(tmp_path / "cache")}
    t0 = time.time()
    proc = subprocess.run([sys.executable, str(script), str(ROOT)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "steps" in proc.stdout and time.time() - t0 < 300
    assert "gc_policy True" in proc.stdout
    errors = [ln for ln in proc.stderr.splitlines()
              if ln.strip() and not ln.startswith(QT_PLATFORM_NOISE)]
    assert errors == []


def test_a_loaded_checkpoint_stays_after_the_form_changes(window, qtbot, tmp_path):
    """Loading a checkpoint sets the form to its settings; the untrained preview that a form
    change schedules must not replace the loaded model a moment later."""
    from core.config import TrainConfig
    from core.trainer import Trainer

    w = window
    cfg = TrainConfig(hidden=12, batch_size=32, epochs=1, optimizer="nesterov", lr=0.01)
    t = Trainer(cfg, w.splits, checkpoint_dir=None)
    t.run()
    path = tmp_path / "nesterov.npz"
    t.save_checkpoint(path)
    assert w.load_checkpoint(str(path))
    assert w.model_panel.optimizer_combo.currentData() == "nesterov"
    assert w.model_panel.config().optimizer == "nesterov"
    qtbot.wait(3 * w._preview_timer.interval())
    assert not w.snapshot.get("untrained")
    qtbot.waitUntil(lambda: w.explorer.trace is not None
                    and w.explorer.trace["step"] == t.step, timeout=60000)
    qtbot.wait(3 * w._preview_timer.interval())
    assert "checkpoint nesterov.npz" in w.explorer.model_label.text()
