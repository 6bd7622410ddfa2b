"""Files the app writes: a checkpoint save removes what killed writers left in its folder, a
plot export goes through core.fileio's atomic writer (a failure is one line in the status bar,
no file left behind) and the export dialog opens in the folder of the last export."""

import subprocess
import sys

import pytest

pytest.importorskip("PySide6")

from PySide6 import QtCore, QtWidgets  # noqa: E402


@pytest.fixture
def settings(tmp_path):
    """An isolated settings file: no test reads or writes the user's settings."""
    return QtCore.QSettings(str(tmp_path / "rnnscope.ini"), QtCore.QSettings.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    from app.main_window import MainWindow

    w = MainWindow(load=False, settings=settings)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.dataLoaded, timeout=60000):
        w.load_data("probe", subset=256)
    qtbot.waitUntil(lambda: w.explorer.trace is not None, timeout=60000)   # the preview
    yield w
    assert w.shutdown()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_saving_a_checkpoint_removes_dead_writers_temp_files(window, qtbot, tmp_path):
    from core.fileio import temp_path

    w = window
    mp = w.model_panel
    mp.hidden_spin.setValue(8)
    mp.batch_spin.setValue(64)
    mp.epochs_spin.setValue(1)
    w.start_training()
    qtbot.waitUntil(lambda: w.trainer is not None and not w.is_training(), timeout=60000)
    folder = tmp_path / "runs"
    folder.mkdir()
    dead = folder / f".last.npz.{_dead_pid()}-0123abcd.tmp"      # a killed run's half write
    dead.write_bytes(b"PK half")
    alive = temp_path(folder / "other.npz")                     # this process is writing it
    alive.write_bytes(b"PK")
    w.save_checkpoint(str(folder / "app.npz"))
    assert (folder / "app.npz").is_file(), w.status.text()
    assert not dead.exists()
    assert alive.exists()


def test_a_failed_plot_export_is_one_line_and_leaves_nothing(window, qtbot, tmp_path,
                                                             monkeypatch):
    w = window
    frame = w.explorer.grad_frame
    target = tmp_path / "missing" / "grad.png"          # its folder does not exist
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(target), ""))
    frame._ask_export()
    text = w.status.text()
    assert text.startswith(f"Could not export the plot: cannot write {target}: "), text
    assert "\n" not in text and "Traceback" not in text
    assert not target.parent.exists()


def test_the_export_dialog_opens_in_the_last_export_folder(window, qtbot, tmp_path, settings,
                                                           monkeypatch):
    from app.main_window import MainWindow

    w = window
    folder = tmp_path / "figures"
    folder.mkdir()
    asked = []

    def dialog(parent, title, start, filters):
        asked.append(start)
        return str(folder / "grad.png"), ""

    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", dialog)
    w.explorer.grad_frame._ask_export()
    assert (folder / "grad.png").is_file() and (folder / "grad.csv").is_file()
    assert w.status.text() == f"Saved grad.png and grad.csv in {folder}"
    w.training_panel.loss_frame._ask_export()      # another plot: the same folder
    assert asked[1].startswith(str(folder))
    assert w.shutdown()
    w2 = MainWindow(load=False, settings=settings)  # the next launch remembers it
    qtbot.addWidget(w2)
    w2.explorer.grad_frame._ask_export()
    assert asked[2] == str(folder / f"{w2.explorer.grad_frame.export_name}.png")
    assert w2.shutdown()
