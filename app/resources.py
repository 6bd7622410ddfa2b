"""Icons and the style sheet, found next to the package (resources/ beside app/)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6 import QtGui

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
ICONS = RESOURCES / "icons"


@cache
def icon(name: str) -> QtGui.QIcon:
    """The SVG icon ``resources/icons/<name>.svg`` (an empty icon if it is missing)."""
    path = ICONS / f"{name}.svg"
    return QtGui.QIcon(str(path)) if path.exists() else QtGui.QIcon()


def style_sheet() -> str:
    path = RESOURCES / "style.qss"
    return path.read_text() if path.exists() else ""
