"""Vanishing gradients: the gradient profile over time, its history over training, and W_hh."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from app.eigen_plot import EigenPlot
from app.grad_norm_plot import GradNormPlot
from app.plot_frame import PlotFrame

MAX_COLUMNS = 1500  # grad-through-time columns drawn (older steps are averaged together)


def ratio_sentence(g: np.ndarray, cut: int | None) -> str:
    """g_1 / g_T of a gradient profile, in words (graded: mild fading is not 'vanishing')."""
    g = np.asarray(g, dtype=np.float64)
    T = len(g)
    first = int(cut or 0)  # first timestep (0-based) that gets gradient
    if T == 0 or not (g[-1] > 0):
        return "No gradient yet."
    g1 = g[first]
    r = g1 / g[-1]
    where = f"row {first + 1}" if not cut else f"row {first + 1} (the earliest inside the window)"
    if not (g1 > 0):
        return f"No gradient reaches {where}."
    steps = T - 1 - first
    head = f"g_{first + 1} / g_{T} = {r:.2g}"
    per_step = (f" On average each step back multiplies it by {r ** (1 / steps):.2f}."
                if steps > 0 else "")
    if r < 1e-3:
        verdict = (f"the gradient reaching {where} is {1 / r:,.0f}x weaker than at the last "
                   "row: it has vanished, so what the early rows show barely changes the "
                   "weights.")
    elif r < 0.1:
        verdict = (f"the gradient reaching {where} is {1 / r:,.0f}x weaker than at the last "
                   "row: early rows learn much more slowly than late ones.")
    elif r < 1:
        verdict = (f"the gradient reaching {where} is only {1 / r:,.1f}x weaker than at the last "
                   "row: it fades mildly; early rows still learn.")
    elif r < 10:
        verdict = (f"the gradient reaching {where} is about as strong as at the last row "
                   f"({r:,.1f}x): it flows back through time without vanishing.")
    else:
        verdict = (f"the gradient grows {r:,.0f}x on its way back to {where}: it is exploding "
                   "(clipping keeps the update bounded).")
    return f"{head}: {verdict}{per_step}"


class VanishingPanel(QtWidgets.QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("vanishingPanel")
        self.profile = GradNormPlot(object_name="vanishingGradPlot", cursor=False)
        self.ratio_label = QtWidgets.QLabel("Train or load a model to see its gradients.")
        self.ratio_label.setObjectName("ratioLabel")
        self.ratio_label.setWordWrap(True)
        self.ratio_label.setTextFormat(QtCore.Qt.RichText)
        self.gtt_plot = pg.PlotWidget()
        self.gtt_plot.setObjectName("gradThroughTimePlot")
        gp = self.gtt_plot.getPlotItem()
        gp.setLabel("bottom", "training step")
        gp.setLabel("left", "timestep t")
        for axis in ("bottom", "left"):
            gp.getAxis(axis).enableAutoSIPrefix(False)
        gp.getViewBox().invertY(True)
        self.gtt_empty = pg.TextItem(
            "Nothing yet: every training step adds a column here.\n"
            "Press Train and watch the early timesteps (top rows).",
            color="#546e7a", anchor=(0.5, 0.5))
        gp.addItem(self.gtt_empty, ignoreBounds=True)
        self._T = 32
        self.gtt_image = pg.ImageItem()
        self.gtt_image.export_name = "log10_dh_norm"
        self.gtt_image.hover_format = self._gtt_hover
        gp.addItem(self.gtt_image)
        self.gtt_bar = pg.ColorBarItem(values=(-4, 0), colorMap=pg.colormap.get("viridis"),
                                       interactive=False, width=12, label="log10 ||dl/dh_t||")
        self.gtt_bar.setImageItem(self.gtt_image, insert_in=gp)
        self.eigen = EigenPlot()

        self.profile_frame = PlotFrame(
            "Gradient through time ||dl/dh_t|| (log scale)", self.profile,
            "Solid: the image chosen in the explorer; dashed: mean over a batch of validation "
            "images. The slope to the left is the vanishing (or exploding) rate per step.",
            export_name="grad_profile")
        self.gtt_frame = PlotFrame(
            "Gradient through time over training", self.gtt_plot,
            "Each column is one training step, each row a timestep (row 1 at the top). Dark "
            "top rows mean early timesteps get almost no gradient; watch whether training "
            "changes that.", export_name="grad_through_time")
        self.eigen_frame = PlotFrame(
            "Eigenvalues of W_hh", self.eigen,
            "Backprop multiplies by W_hh once per step: eigenvalues inside the unit circle "
            "shrink the gradient (vanishing), outside it they can blow it up (exploding).",
            export_name="eigenvalues")
        top = QtWidgets.QVBoxLayout()
        top.addWidget(self.profile_frame, 1)
        top.addWidget(self.ratio_label)
        left = QtWidgets.QWidget()
        left.setLayout(top)
        row = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        row.addWidget(left)
        row.addWidget(self.eigen_frame)
        row.setSizes([600, 400])
        split = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        split.addWidget(row)
        split.addWidget(self.gtt_frame)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(split)
        self.clear_history()
        self._dirty = False
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._redraw_history)
        self._timer.start()

    # --- per-model views ------------------------------------------------------------------------
    def set_cue_rows(self, rows: tuple[int, int] | None):
        """The memory-probe task's cue band (0-based image rows) or None; shaded per trace."""
        self.cue_rows = rows

    def set_trace(self, tr: dict):
        g = tr["dh_norm_t"]
        batch = tr.get("batch_dh_norm")
        self.profile.set_norms(g, tr.get("bptt_cut"), batch_mean=batch)
        rows = getattr(self, "cue_rows", None)
        per = 32 // max(1, int(tr.get("T") or len(g)))
        self.profile.set_cue_steps(None if rows is None else
                                   (rows[0] // per + 1, rows[1] // per + 1))
        self.profile.reveal_from(1)
        cut = tr.get("bptt_cut")
        lines = []
        if batch is not None:
            lines.append(f"<b>Batch mean:</b> {ratio_sentence(batch, cut)}")
        lines.append(f"<b>This image (#{tr.get('index', '?')} of {tr.get('split', '?')}):</b> "
                     f"{ratio_sentence(g, cut)}")
        self.ratio_label.setText("<br>".join(lines))
        self._T = int(tr.get("T") or len(g))
        if not self.hist_rows:
            self._show_empty_history()
        if tr.get("eigvals") is not None:
            self.eigen.set_eigenvalues(tr["eigvals"])

    # --- training-wide history ----------------------------------------------------------------
    def clear_history(self):
        self.hist_steps: list[int] = []
        self.hist_rows: list[np.ndarray] = []
        self.gtt_image.clear()
        self._dirty = False
        self._show_empty_history()

    def _set_t_ticks(self, T: int):
        """Timestep ticks 1 .. T (row t of the image is drawn at y = t; there is no t = 0)."""
        every = max(1, T // 8)
        ticks = [(t, str(t)) for t in range(1, T + 1) if t == 1 or t % every == 0]
        self.gtt_plot.getPlotItem().getAxis("left").setTicks([ticks, []])

    def _show_empty_history(self):
        """No training steps yet: a sensible frame (T timesteps x 100 steps) and a hint."""
        gp = self.gtt_plot.getPlotItem()
        T = getattr(self, "_T", 32)
        gp.setRange(xRange=(0, 100), yRange=(0.5, T + 0.5), padding=0)
        self._set_t_ticks(T)
        self.gtt_empty.setPos(50, (T + 1) / 2)
        self.gtt_empty.setVisible(True)

    def add_rows(self, steps, rows):
        for s, r in zip(steps, rows):
            r = np.asarray(r, dtype=np.float64)
            if r.size:
                self.hist_steps.append(int(s))
                self.hist_rows.append(r)
        self._dirty = True

    def history_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """steps (S,), norms (S, T) as received."""
        if not self.hist_rows:
            return np.zeros(0, np.int64), np.zeros((0, 0))
        return np.array(self.hist_steps), np.vstack(self.hist_rows)

    def _redraw_history(self, force: bool = False):
        if not self._dirty or (not force and not self.isVisible()):
            return
        self._dirty = False
        steps, norms = self.history_matrix()
        if len(steps) == 0:
            return
        with np.errstate(divide="ignore"):
            logn = np.where(norms > 0, np.log10(np.maximum(norms, 1e-300)), np.nan)
        S, T = logn.shape
        if S > MAX_COLUMNS:  # average groups of steps (in log space) to keep drawing cheap
            k = -(-S // MAX_COLUMNS)
            pad = (-S) % k
            padded = np.concatenate([logn, np.full((pad, T), np.nan)]) if pad else logn
            with np.errstate(all="ignore"):
                logn = np.nanmean(padded.reshape(-1, k, T), axis=1)
        if self.gtt_empty.isVisible():  # the first columns: fit the view to the data
            self.gtt_empty.setVisible(False)
            self.gtt_plot.getPlotItem().enableAutoRange()
        img = np.ascontiguousarray(logn.T)       # (T, S'): row = timestep
        finite = img[np.isfinite(img)]
        if finite.size:
            lo, hi = float(np.percentile(finite, 1)), float(np.percentile(finite, 99))
            if hi <= lo:
                hi = lo + 1
            self.gtt_bar.setLevels((lo, hi))
        self.gtt_image.setImage(img, autoLevels=False, levels=self.gtt_bar.levels())
        x0, x1 = steps[0], max(steps[-1], steps[0] + 1)
        self.gtt_image.setRect(x0, 0.5, x1 - x0, T)
        self._set_t_ticks(T)
        self._gtt_steps = (x0, x1, img.shape[1])

    def showEvent(self, ev):
        super().showEvent(ev)
        self._redraw_history(force=True)

    def _gtt_hover(self, col, row, value):
        x0, x1, n = getattr(self, "_gtt_steps", (0, 1, 1))
        step = x0 + (col + 0.5) * (x1 - x0) / max(1, n)
        if not np.isfinite(value):
            return f"step ≈ {step:.0f}, t = {row + 1}: no gradient"
        return f"step ≈ {step:.0f}, t = {row + 1}: ||dl/dh_t|| = {10 ** float(value):.2e}"
