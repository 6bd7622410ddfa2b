"""Export any plot to PNG (exactly what is on screen) and its data to CSV.

CSV layout (one row per value, so every plot type fits one valid table):
``series,x,y,value`` — a curve or scatter point is (name, x, y, ''), an image pixel is
(name, column, row, value), a bar is (name, x, height, '').
Both files go through core.fileio's atomic writer, the one every rnnscope file goes through: a
failed export leaves the previous file as it was, never a half-written one, and raises a one-line
core.errors.WriteError.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from core.errors import WriteError
from core.fileio import atomic_write, write_bytes_atomic
from report.figures import save_png

CSV_HEADER = ["series", "x", "y", "value"]


def _name(item, fallback: str) -> str:
    name = None
    if hasattr(item, "name"):
        try:
            name = item.name()
        except TypeError:
            name = None
    return str(name) if name else fallback


def rows_from_plot_item(plot_item: pg.PlotItem) -> Iterator[list]:
    """Yield CSV rows for the data items of a pyqtgraph PlotItem (original, un-logged data)."""
    for i, item in enumerate(plot_item.items):
        if not item.isVisible():
            continue
        if isinstance(item, pg.PlotDataItem):
            x, y = item.getOriginalDataset()
            if x is None:
                continue
            name = _name(item, f"curve{i}")
            for xv, yv in zip(np.asarray(x).ravel(), np.asarray(y).ravel()):
                yield [name, f"{xv:.9g}", f"{yv:.9g}", ""]
        elif isinstance(item, pg.ScatterPlotItem):
            x, y = item.getData()
            name = _name(item, f"points{i}")
            for xv, yv in zip(np.asarray(x).ravel(), np.asarray(y).ravel()):
                yield [name, f"{xv:.9g}", f"{yv:.9g}", ""]
        elif isinstance(item, pg.BarGraphItem):
            x = item.opts.get("x")
            if x is None:
                x = item.opts.get("x0")
            h = item.opts.get("height")
            if x is None or h is None:
                continue
            name = getattr(item, "export_name", f"bars{i}")
            for xv, hv in zip(np.asarray(x).ravel(), np.asarray(h).ravel()):
                yield [name, f"{xv:.9g}", f"{hv:.9g}", ""]
        elif isinstance(item, pg.ImageItem):
            img = item.image
            if img is None:
                continue
            name = getattr(item, "export_name", f"image{i}")
            yield from _image_rows(name, np.asarray(img))


def _image_rows(name: str, img: np.ndarray) -> Iterator[list]:
    if img.ndim == 2:
        for r in range(img.shape[0]):
            for c in range(img.shape[1]):
                v = img[r, c]
                yield [name, str(c), str(r), "" if np.isnan(v) else f"{v:.9g}"]
    elif img.ndim == 3:  # colour image: one value per channel, as 'r;g;b'
        for r in range(img.shape[0]):
            for c in range(img.shape[1]):
                yield [name, str(c), str(r), ";".join(f"{v:g}" for v in img[r, c])]


def rows_from_figure(fig) -> Iterator[list]:
    """Yield CSV rows for the lines, scatters, bars and images of a matplotlib Figure."""
    from matplotlib.collections import PathCollection
    from matplotlib.image import AxesImage
    from matplotlib.patches import Rectangle

    for ai, ax in enumerate(fig.axes):
        title = ax.get_title() or f"axes{ai}"
        for li, line in enumerate(ax.get_lines()):
            label = line.get_label()
            name = f"{title}/{label if not label.startswith('_') else f'line{li}'}"
            for xv, yv in np.asarray(line.get_xydata(), dtype=float):
                yield [name, f"{xv:.9g}", f"{yv:.9g}", ""]
        for ci, coll in enumerate(ax.collections):
            if isinstance(coll, PathCollection):
                label = coll.get_label()
                name = f"{title}/{label if not label.startswith('_') else f'points{ci}'}"
                for xv, yv in np.asarray(coll.get_offsets(), dtype=float):
                    yield [name, f"{xv:.9g}", f"{yv:.9g}", ""]
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        for p in bars:
            yield [f"{title}/bars", f"{p.get_x() + p.get_width() / 2:.9g}",
                   f"{p.get_height():.9g}", ""]
        for ii, im in enumerate(ax.get_images()):
            if isinstance(im, AxesImage):
                arr = np.ma.filled(np.ma.asarray(im.get_array(), dtype=float), np.nan)
                yield from _image_rows(f"{title}/image{ii}", arr)


def write_csv(rows, path: Path) -> Path:
    """Write ``rows`` under CSV_HEADER to ``path`` atomically."""
    def write(f):
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        out = csv.writer(text)
        out.writerow(CSV_HEADER)
        out.writerows(rows)
        text.flush()
        text.detach()     # ``f`` stays open for the writer's fsync

    return atomic_write(Path(path), write, what="plot data")


def save_widget_png(widget, path: Path) -> Path:
    """Render ``widget`` as it looks on screen and save it as PNG atomically."""
    path = Path(path)
    buffer = QtCore.QBuffer()
    buffer.open(QtCore.QIODevice.WriteOnly)
    if not widget.grab().save(buffer, "PNG"):
        raise WriteError(f"cannot write {path}: the plot could not be encoded as PNG; "
                         "nothing was written")
    return write_bytes_atomic(path, bytes(buffer.data()), what="plot image")


def save_figure_png(fig, path: Path, dpi: int = 120) -> Path:
    return save_png(fig, Path(path), dpi=dpi)


def export_plot(widget, png_path: str | Path) -> tuple[Path, Path]:
    """Save ``widget`` (a pyqtgraph PlotWidget or a FigureCanvasQTAgg) as PNG and CSV.

    The CSV goes next to the PNG with the same stem. Returns (png, csv) paths.
    """
    png = Path(png_path)
    if png.suffix.lower() != ".png":
        png = png.with_suffix(".png")
    csv_path = png.with_suffix(".csv")
    fig = getattr(widget, "figure", None)
    if fig is not None and hasattr(fig, "savefig"):
        save_figure_png(fig, png)
        write_csv(rows_from_figure(fig), csv_path)
        return png, csv_path
    if hasattr(widget, "export_rows"):
        rows = widget.export_rows()
    elif hasattr(widget, "getPlotItem"):
        rows = rows_from_plot_item(widget.getPlotItem())
    else:
        raise TypeError(f"cannot export {type(widget).__name__}")
    save_widget_png(widget, png)
    write_csv(rows, csv_path)
    return png, csv_path
