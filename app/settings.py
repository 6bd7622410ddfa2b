"""What the app remembers between launches (QSettings): window and dock geometry, the last
data set, the last folders of the file dialogs, whether to train on all cores.

``MainWindow`` remembers only when given a QSettings (``run_app`` passes ``app_settings()``),
so tests and automation never read or write the user's settings by accident.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

ORGANISATION = "rnnscope"
APPLICATION = "rnnscope"
ALL_CORES_KEY = "training/all_cores"


def app_settings() -> QtCore.QSettings:
    """The user's settings store (the platform's usual place)."""
    return QtCore.QSettings(ORGANISATION, APPLICATION)


def window_settings(widget: QtWidgets.QWidget) -> QtCore.QSettings | None:
    """The QSettings of the window that shows ``widget`` (``MainWindow.settings``), or None
    (a window that remembers nothing, or a widget shown on its own)."""
    settings = getattr(widget.window(), "settings", None)
    return settings if isinstance(settings, QtCore.QSettings) else None


def remembered_all_cores(settings: QtCore.QSettings | None) -> bool:
    """Whether the user chose "Train on all cores" (off when nothing is remembered)."""
    if settings is None:
        return False
    return bool(settings.value(ALL_CORES_KEY, False, type=bool))


def remember_all_cores(settings: QtCore.QSettings | None, on: bool) -> None:
    if settings is not None:
        settings.setValue(ALL_CORES_KEY, bool(on))


def last_folder(settings: QtCore.QSettings | None, key: str) -> str:
    """The folder a file dialog of kind ``key`` last used, if it still exists; else home."""
    if settings is not None:
        value = settings.value(f"folders/{key}", "")
        if value and Path(str(value)).is_dir():
            return str(value)
    return str(Path.home())


def remember_folder(settings: QtCore.QSettings | None, key: str, path: str) -> None:
    """Remember the folder of ``path`` (a file) or ``path`` itself (a folder) for ``key``."""
    if settings is None or not path:
        return
    p = Path(path)
    settings.setValue(f"folders/{key}", str(p if p.is_dir() else p.parent))


def ask_open_path(parent: QtWidgets.QWidget, settings: QtCore.QSettings | None, key: str,
                  title: str, filters: str) -> str:
    """A file chosen in an open dialog that starts in the folder ``key`` last used ('' when
    cancelled); its folder is remembered for ``key``."""
    path, _ = QtWidgets.QFileDialog.getOpenFileName(parent, title, last_folder(settings, key),
                                                    filters)
    remember_folder(settings, key, path)
    return path


def ask_save_path(parent: QtWidgets.QWidget, settings: QtCore.QSettings | None, key: str,
                  title: str, name: str, filters: str) -> str:
    """A file named in a save dialog that offers ``name`` in the folder ``key`` last used (''
    when cancelled); its folder is remembered for ``key``."""
    start = str(Path(last_folder(settings, key)) / name)
    path, _ = QtWidgets.QFileDialog.getSaveFileName(parent, title, start, filters)
    remember_folder(settings, key, path)
    return path
