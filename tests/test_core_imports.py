"""The layers: core (NumPy engine) imports no GUI stack, no cli, no report, no app; cli never
imports app or Qt; report (matplotlib figures) never imports Qt, pyqtgraph or app."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import core

ROOT = Path(__file__).resolve().parents[1]


def _core_modules():
    return sorted(f"core.{m.name}" for m in pkgutil.iter_modules(core.__path__))


def test_core_has_modules():
    assert "core.errors" in _core_modules()


def test_core_never_imports_gui_stack():
    modules = _core_modules()
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in "
        "('PySide6', 'pyqtgraph', 'matplotlib', 'shiboken6'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"core pulled in: {out.stdout.strip()}"


QT = {"PySide6", "pyqtgraph", "shiboken6", "superqt"}
BANNED = {
    "core": QT | {"app", "cli", "report", "matplotlib", "main"},
    "cli": QT | {"app", "main"},
    "report": QT | {"app", "cli", "main"},
}


def _imports_in(package: str) -> list[tuple[str, str]]:
    """(file:line, imported module) for every import in the package's source, including the
    ones inside functions, which a sys.modules check after importing would miss."""
    import ast

    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [(f"{path.relative_to(ROOT)}:{node.lineno}", n) for n in names]
    return found


@pytest.mark.parametrize("package", sorted(BANNED))
def test_layer_source_never_imports_a_higher_layer(package):
    bad = [f"{where} {name}" for where, name in _imports_in(package)
           if name.split(".")[0] in BANNED[package]]
    assert bad == []


def test_layer_check_sees_imports_inside_functions():
    """The check above would pass vacuously if it found no imports at all."""
    found = {name for _, name in _imports_in("cli")}
    assert "report.figures" in found and "cli" in {n.split(".")[0] for n in found}
