"""core/ must stay importable without the GUI stack."""

import pkgutil
import subprocess
import sys
from pathlib import Path

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


def test_core_source_never_imports_app_or_gui_even_lazily():
    """Imports inside functions escape the sys.modules check above: read every core file."""
    import ast

    banned = {"app", "PySide6", "pyqtgraph", "matplotlib", "shiboken6"}
    found = []
    for path in sorted((ROOT / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [f"{path.name}:{node.lineno} {n}" for n in names
                      if n.split(".")[0] in banned]
    assert found == []
