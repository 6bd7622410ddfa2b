"""Every graphics item that has children belongs to its scene (C++), never to Python.

A PlotItem owned by Python is deleted in C++ when its last Python reference goes. When that
happens inside a cyclic collection (the GUI thread's collector freeing a dropped panel) and an
item under it holds the panel (an image's hover_format), the panel deletes the scene while the
scene still lists the half-deleted PlotItem: a segfault in QGraphicsScene::clear(). Putting a
ColorBarItem into a plot's layout made the plot's PlotItem Python's (app/plot_style.py
``colorbar_beside``)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

ROOT = Path(__file__).resolve().parents[1]


def _python_owned_parents(widget):
    """(view name, item type) of every item with children that Python owns, in every
    QGraphicsView under ``widget``."""
    from PySide6 import QtWidgets
    from shiboken6 import Shiboken

    found = []
    views = widget.findChildren(QtWidgets.QGraphicsView)
    assert views, "no plots found"
    for view in views:
        for item in view.scene().items():
            if item.childItems() and Shiboken.ownedByPython(item):
                found.append((view.objectName(), type(item).__name__))
    return found


def test_plot_items_with_a_colour_bar_belong_to_their_scene(qtbot):
    import pyqtgraph as pg
    from shiboken6 import Shiboken

    from app.plot_style import colorbar_beside

    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    image = pg.ImageItem()
    plot.getPlotItem().addItem(image)
    bar = colorbar_beside(plot, image, values=(0, 1), interactive=False, width=10)
    pi = plot.getPlotItem()
    assert not Shiboken.ownedByPython(pi) and pi.scene() is plot.scene()
    assert bar.parentItem() is pi and image.scene() is plot.scene()
    assert pi.layout.itemAt(2, 5) is bar      # right of the right-hand axis


def test_no_item_with_children_in_any_view_is_owned_by_python(qtbot):
    from app.main_window import MainWindow

    w = MainWindow(load=False)
    qtbot.addWidget(w)
    assert _python_owned_parents(w) == []
    assert w.shutdown()


# a segfault would end the test run, so the panels are dropped in a child process
_DROP_AND_COLLECT = """
import gc
from PySide6 import QtWidgets
app = QtWidgets.QApplication([])
gc.disable()
from app.feature_row_view import FeatureRowView
from app.hidden_heatmap import HiddenHeatmap
from app.vanishing_panel import VanishingPanel
for make in (VanishingPanel, HiddenHeatmap, FeatureRowView):
    for generation in (0, 2):
        widget = make()
        del widget
        gc.collect(generation)
print("collected")
"""


def test_dropped_panels_are_collected_without_a_crash():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", _DROP_AND_COLLECT],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "collected" in done.stdout
