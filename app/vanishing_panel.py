"""Vanishing gradients: the gradient profile over time, the factor each backward step applies,
its history over training, and W_hh.

For a gated cell W_hh is (H, G*H): no spectrum rules the backward pass. The gates do: the
LSTM's gradient along c_t is multiplied by the forget gate f_t each step back, the GRU's along
its direct path by the update gate z_t. So for gated cells the tab shows, over a batch of
validation images, how often each gate saturates (app/gate_saturation_plot.py) and the keep
gate's memory length per unit (app/memory_length_plot.py), and says why there is no spectrum.

Every gradient-through-time picture in rnnscope has timesteps along x (1 = first row read, T =
the last, where the loss is) and, for the history, training steps along y growing upwards, the
same as the report figure (report/figures.py).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from app.backward_factor_plot import BackwardFactorPlot
from app.eigen_plot import EigenPlot
from app.fill_scroll_area import FillScrollArea
from app.fitted_label import FittedLabel
from app.gate_saturation_plot import GateSaturationPlot
from app.grad_norm_plot import GradNormPlot
from app.memory_length_plot import MemoryLengthPlot
from app.plot_frame import PlotFrame
from app.plot_style import (
    SUBTLE,
    colorbar_beside,
)

MAX_COLUMNS = 1500  # grad-through-time columns drawn (older steps are averaged together)


def ratio_sentence(g: np.ndarray, cut: int | None, step: str = "row") -> str:
    """g_1 / g_T of a gradient profile, in words (graded: mild fading is not 'vanishing').
    step: what one timestep reads ('row', or 'position' for a CNN+RNN over map positions)."""
    g = np.asarray(g, dtype=np.float64)
    T = len(g)
    first = int(cut or 0)  # first timestep (0-based) that gets gradient
    if T == 0 or not (g[-1] > 0):
        return "No gradient yet."
    g1 = g[first]
    r = g1 / g[-1]
    where = (f"{step} {first + 1}" if not cut
             else f"{step} {first + 1} (the earliest inside the window)")
    last, early = f"the last {step}", f"early {step}s"
    if not (g1 > 0):
        return f"No gradient reaches {where}."
    steps = T - 1 - first
    head = f"g_{first + 1} / g_{T} = {r:.2g}"
    per_step = (f" On average each step back multiplies it by {r ** (1 / steps):.2f}."
                if steps > 0 else "")
    if r < 1e-3:
        verdict = (f"the gradient reaching {where} is {1 / r:,.0f}x weaker than at {last}: it "
                   f"has vanished, so what the {early} show barely changes the weights.")
    elif r < 0.1:
        verdict = (f"the gradient reaching {where} is {1 / r:,.0f}x weaker than at {last}: "
                   f"{early} learn much more slowly than late ones.")
    elif r < 1:
        verdict = (f"the gradient reaching {where} is only {1 / r:,.1f}x weaker than at {last}: "
                   f"it fades mildly; {early} still learn.")
    elif r < 10:
        verdict = (f"the gradient reaching {where} is about as strong as at {last} "
                   f"({r:,.1f}x): it flows back through time without vanishing.")
    else:
        verdict = (f"the gradient grows {r:,.0f}x on its way back to {where}: it is exploding "
                   "(clipping keeps the update bounded).")
    return f"{head}: {verdict}{per_step}"


def _geo_mean(values) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.exp(np.log(v).mean())) if v.size else float("nan")


def _direction(factor: float) -> str:
    return "shrink" if factor < 0.98 else "grow" if factor > 1.02 else "keep"


def spectrum_sentence(rho: float, whh_sigma: float, measured, jacobian_sigma, mean_derivative,
                      activation: str = "tanh") -> str:
    """What the spectrum of W_hh predicts for the gradient against what this image's backward
    steps measured (core.timesteps.backward_factors), in words. Without saturation the spectrum
    decides; act' < 1 shrinks every step's Jacobian diag(act') W_hh^T, so saturation can turn
    'can grow' into vanishing."""
    act = "tanh'" if activation == "tanh" else "ReLU'"
    m = _geo_mean(measured)
    ok = np.isfinite(np.asarray(measured, dtype=float))
    s = _geo_mean(np.where(ok, jacobian_sigma, np.nan))
    d = float(np.nanmean(mean_derivative)) if np.size(mean_derivative) else float("nan")
    predicted = _direction(rho)
    if not np.isfinite(m):
        return f"ρ(W_hh) = {rho:.2f}. No backward step to measure yet."
    each = f"each step back multiplies ||dl/dh|| by {m:.2f} on average"
    sat = f"mean {act} {d:.2f}"
    measured_dir = _direction(m)
    if predicted == "shrink" and measured_dir == "shrink":
        return (f"ρ(W_hh) = {rho:.2f} < 1: W_hh alone predicts vanishing, and this image "
                f"agrees: {each} ({sat}).")
    if predicted == "grow" and measured_dir == "shrink" and s < 1:
        return (f"ρ(W_hh) = {rho:.2f} > 1 would let the gradient grow, but saturation overrides "
                f"it: with {sat} every step's Jacobian diag({act}) W_hh^T has σ_max {s:.2f} < 1, "
                f"so {each}: it vanishes.")
    if predicted == "grow" and measured_dir == "shrink":
        return (f"ρ(W_hh) = {rho:.2f} > 1 would let the gradient grow, yet along this image "
                f"{each}: saturation ({sat}) cuts the step Jacobian to σ_max {s:.2f} and the "
                "gradient does not line up with its growing direction.")
    if predicted == "grow" and measured_dir == "grow":
        return (f"ρ(W_hh) = {rho:.2f} > 1 and this image agrees: {each} ({sat} is too little "
                "saturation to stop it): exploding; clipping bounds the update.")
    if measured_dir == "grow":
        return (f"ρ(W_hh) = {rho:.2f} predicts no growth, yet {each}: W_hh is not normal "
                f"(σ_max(W_hh) = {whh_sigma:.2f}), so the gradient can grow for a while; the "
                "spectrum rules only the long run.")
    return (f"ρ(W_hh) = {rho:.2f}: {each} ({sat}); the gradient "
            f"{'keeps its size' if measured_dir == 'keep' else 'shrinks'}.")


SATURATION_CAPTION = ("Karpathy et al. 2015: one point per unit and gate over {n} how often "
                      "it is shut (x) against open (y); look for forget gates high on the left "
                      "edge, units that keep their memory almost always.")
MEMORY_CAPTION = ("1 / (1 − mean {gate}) steps per unit, sorted; units above the dashed line T "
                  "keep their state (and pass the gradient back) across the whole sequence.")

# What replaces the W_hh spectrum for a gated cell (the eigenvalue frame's text).
GATED_SPECTRUM = {
    "lstm": ("An LSTM's W_hh is (H, 4H): no spectrum rules its gradient. Instead each step "
             "back multiplies dl/dc by the forget gate f_t, unit by unit, with no matrix in "
             "the way: where f ≈ 1 it passes unchanged (memory lengths above)."),
    "gru": ("A GRU's W_hh is (H, 3H): no spectrum rules its gradient. Instead its direct "
            "path multiplies dl/dh by the update gate z_t each step back, unit by unit: "
            "where z ≈ 1 it passes unchanged (memory lengths above)."),
}


class VanishingPanel(QtWidgets.QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("vanishingPanel")
        self.cue_rows: tuple[int, int] | None = None
        self._T = 32
        self._gtt_steps = (0, 1, 1)
        self.profile = GradNormPlot(object_name="vanishingGradPlot", cursor=False)
        self.ratio_label = FittedLabel("Train or load a model to see its gradients.")
        self.ratio_label.setObjectName("ratioLabel")
        self.ratio_label.setWordWrap(True)
        self.ratio_label.setTextFormat(QtCore.Qt.RichText)
        self.gtt_plot = pg.PlotWidget()
        self.gtt_plot.setObjectName("gradThroughTimePlot")
        gp = self.gtt_plot.getPlotItem()
        gp.setLabel("bottom", "timestep t (1 = first row read)")
        gp.setLabel("left", "training step")
        for axis in ("bottom", "left"):
            gp.getAxis(axis).enableAutoSIPrefix(False)
        self.gtt_empty = pg.TextItem(
            "Nothing yet: every training step adds a row here.\n"
            "Press Train and watch the early timesteps (left columns).",
            color=SUBTLE, anchor=(0.5, 0.5))
        gp.addItem(self.gtt_empty, ignoreBounds=True)
        self.gtt_image = pg.ImageItem()
        self.gtt_image.export_name = "log10_dh_norm"
        self.gtt_image.hover_format = self._gtt_hover
        gp.addItem(self.gtt_image)
        self.gtt_bar = colorbar_beside(self.gtt_plot, self.gtt_image, values=(-4, 0),
                                       colorMap=pg.colormap.get("viridis"), interactive=False,
                                       width=12, label="log10 ||dl/dh_t||")
        self.eigen = EigenPlot()
        self.factor_plot = BackwardFactorPlot()

        self.profile_frame = PlotFrame(
            "Gradient through time ||dl/dh_t|| (log scale)", self.profile,
            "Solid: the image chosen in the explorer; dashed: mean over a batch of validation "
            "images. The slope to the left is the vanishing (or exploding) rate per step.",
            export_name="grad_profile")
        self.gtt_frame = PlotFrame(
            "Gradient through time over training", self.gtt_plot,
            "Each row is one training step (the newest at the top), each column a timestep "
            "(1 = first row read). A dark left side means early timesteps get almost no "
            "gradient; watch whether training changes that.", export_name="grad_through_time")
        self.factor_frame = PlotFrame(
            "What each backward step does (this image)", self.factor_plot,
            "Measured: ||dl/dh_t-1|| / ||dl/dh_t||; below 1 the step shrinks the gradient. "
            "It stays under σ_max(J_t) of the step's Jacobian diag(act') W_hh^T, which "
            "saturation pulls below σ_max(W_hh).", export_name="backward_factor")
        self.eigen_frame = PlotFrame(
            "Eigenvalues of W_hh", self.eigen,
            "Backprop multiplies by diag(act') W_hh^T once per step.",
            export_name="eigenvalues")
        self.eigen_frame.caption.setTextFormat(QtCore.Qt.RichText)
        self.saturation = GateSaturationPlot()
        self.memory = MemoryLengthPlot()
        self.saturation_frame = PlotFrame(
            "Gate saturation", self.saturation,
            SATURATION_CAPTION.format(n="a batch of"), export_name="gate_saturation")
        self.memory_frame = PlotFrame(
            "Memory length per unit", self.memory, MEMORY_CAPTION.format(gate="f"),
            export_name="memory_length")
        self.eigen_frame.caption.setAlignment(QtCore.Qt.AlignLeft | QtCore.Qt.AlignTop)
        for frame in (self.saturation_frame, self.memory_frame):
            frame.setVisible(False)
        self.cell = "rnn"
        top = QtWidgets.QVBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.profile_frame, 1)
        top.addWidget(self.ratio_label)
        left = QtWidgets.QWidget()
        left.setLayout(top)
        row = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        row.setObjectName("vanishingTopSplitter")
        row.addWidget(left)
        row.addWidget(self.factor_frame)
        row.setSizes([600, 400])
        bottom = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        bottom.setObjectName("vanishingBottomSplitter")
        bottom.addWidget(self.gtt_frame)
        bottom.addWidget(self.saturation_frame)
        # the spectrum (vanilla cell), or the memory lengths above the few lines that say why
        # a gated cell has no spectrum
        right = QtWidgets.QWidget()
        self.spectrum_column = QtWidgets.QVBoxLayout(right)
        self.spectrum_column.setContentsMargins(0, 0, 0, 0)
        self.spectrum_column.setSpacing(4)
        self.spectrum_column.addWidget(self.memory_frame, 1)
        self.spectrum_column.addWidget(self.eigen_frame, 1)
        bottom.addWidget(right)
        bottom.setSizes([600, 400, 400])
        self.bottom_splitter = bottom
        split = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        split.addWidget(row)
        split.addWidget(bottom)
        # below the plots' minimum size the tab scrolls, so it never makes the window taller
        # than a laptop screen
        self.views_area = FillScrollArea()
        self.views_area.setObjectName("vanishingViews")
        self.views_area.setFrameShape(QtWidgets.QFrame.NoFrame)
        self.views_area.setWidget(split)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.views_area)
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
        self.profile.set_norms(g, tr.get("bptt_cut"), batch_mean=batch,
                               cell_norms=tr.get("dc_norm_t"),
                               batch_cell_mean=tr.get("batch_dc_norm"))
        rows = self.cue_rows
        per = int(tr["rows_per_step"])
        self.profile.set_cue_steps(None if rows is None else
                                   (rows[0] // per + 1, rows[1] // per + 1))
        self.profile.reveal_from(1)
        cut = tr.get("bptt_cut")
        step = "position" if tr.get("sequence") == "positions" else "row"
        lines = []
        if batch is not None:
            lines.append(f"<b>Batch mean:</b> {ratio_sentence(batch, cut, step)}")
        lines.append(f"<b>This image (#{tr.get('index', '?')} of {tr.get('split', '?')}):</b> "
                     f"{ratio_sentence(g, cut, step)}")
        dc = tr.get("batch_dc_norm")
        if dc is None:
            dc = tr.get("dc_norm_t")
        if dc is not None:
            who = "batch mean" if tr.get("batch_dc_norm") is not None else "this image"
            lines.append(f"<b>Cell state ||dl/dc_t||, {who}:</b> {ratio_sentence(dc, cut, step)}")
        self.ratio_label.setText("<br>".join(lines))
        self._T = int(tr.get("T") or len(g))
        if not self.hist_rows:
            self._show_empty_history()
        self.factor_plot.set_factors(tr["factor_measured"], tr["factor_sigma"],
                                     tr["whh_sigma"])
        self.cell = cell = tr.get("cell_type", "rnn")
        gated = cell != "rnn"
        self._show_gated(gated)
        if not gated:
            if tr.get("eigvals") is not None:
                self.eigen.set_eigenvalues(tr["eigvals"])
            self.eigen_frame.set_title("Eigenvalues of W_hh")
            self.eigen_frame.set_caption(spectrum_sentence(
                tr["spectral_radius"], tr["whh_sigma"], tr["factor_measured"],
                tr["factor_sigma"], tr["mean_derivative"], tr.get("activation") or "tanh"))
            self.factor_frame.set_caption(
                "Measured: ||dl/dh_t-1|| / ||dl/dh_t||; below 1 the step shrinks the gradient. "
                "It stays under σ_max(J_t) of the step's Jacobian diag(act') W_hh^T, which "
                "saturation pulls below σ_max(W_hh).")
            return
        self.eigen_frame.set_title("Eigenvalues of W_hh: vanilla RNN only")
        self.eigen_frame.set_caption(GATED_SPECTRUM[cell])
        self.factor_frame.set_caption(
            "Measured: ||dl/dh_t-1|| / ||dl/dh_t||; below 1 the step shrinks the gradient. A "
            "gated cell has no single Jacobian bound: its gates set the factor per unit.")
        stats = tr.get("gate_stats")
        self.saturation.set_stats(stats)
        if stats is not None:
            gate = stats["keep_gate"]
            self.memory.set_memory(stats["memory_steps"], self._T, gate=gate)
            self.memory_frame.set_caption(MEMORY_CAPTION.format(gate=gate))
            self.saturation_frame.set_caption(SATURATION_CAPTION.format(
                n=f"{stats['samples'] // max(1, self._T)} validation images:"))

    def _show_gated(self, gated: bool):
        if self.eigen.isVisibleTo(self) == (not gated) and \
                self.saturation_frame.isVisibleTo(self) == gated:
            return
        self.eigen.setVisible(not gated)
        self.eigen_frame.export_button.setEnabled(not gated)
        self.saturation_frame.setVisible(gated)
        self.memory_frame.setVisible(gated)
        # the text that replaces the spectrum takes only the room it needs
        self.spectrum_column.setStretchFactor(self.eigen_frame, 0 if gated else 1)
        self.bottom_splitter.setSizes([600, 400, 400] if gated else [600, 0, 400])


    # --- training-wide history ----------------------------------------------------------------
    def clear_history(self):
        self.hist_steps: list[int] = []
        self.hist_rows: list[np.ndarray] = []
        self.gtt_image.clear()
        self._dirty = False
        self._show_empty_history()

    def _set_t_ticks(self, T: int):
        """Timestep ticks 1 .. T (timestep t is drawn at x = t; there is no t = 0)."""
        every = max(1, T // 8)
        ticks = [(t, str(t)) for t in range(1, T + 1) if t == 1 or t % every == 0]
        self.gtt_plot.getPlotItem().getAxis("bottom").setTicks([ticks, []])

    def _show_empty_history(self):
        """No training steps yet: a sensible frame (T timesteps x 100 steps) and a hint."""
        gp = self.gtt_plot.getPlotItem()
        T = self._T
        gp.setRange(xRange=(0.5, T + 0.5), yRange=(0, 100), padding=0)
        self._set_t_ticks(T)
        self.gtt_empty.setPos((T + 1) / 2, 50)
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
        img = np.ascontiguousarray(logn)         # (S', T): row = training step
        finite = img[np.isfinite(img)]
        if finite.size:
            lo, hi = float(np.percentile(finite, 1)), float(np.percentile(finite, 99))
            if hi <= lo:
                hi = lo + 1
            self.gtt_bar.setLevels((lo, hi))
        self.gtt_image.setImage(img, autoLevels=False, levels=self.gtt_bar.levels())
        x0, x1 = steps[0], max(steps[-1], steps[0] + 1)
        self.gtt_image.setRect(0.5, x0, T, x1 - x0)
        self._set_t_ticks(T)
        self._gtt_steps = (x0, x1, img.shape[0])

    def showEvent(self, ev):
        super().showEvent(ev)
        self._redraw_history(force=True)

    def _gtt_hover(self, col, row, value):
        x0, x1, n = self._gtt_steps
        step = x0 + (row + 0.5) * (x1 - x0) / max(1, n)
        if not np.isfinite(value):
            return f"step ≈ {step:.0f}, t = {col + 1}: no gradient"
        return f"step ≈ {step:.0f}, t = {col + 1}: ||dl/dh_t|| = {10 ** float(value):.2e}"
