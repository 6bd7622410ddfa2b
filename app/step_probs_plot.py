"""Class probabilities if the sequence stopped at t (``step_probs``), one line per class.

Each line is p(class | steps 1..t). A dot on top marks the class the network would predict
after step t (an image row for the row-RNN, a feature-map step for the CNN+RNN); the true
class is drawn thick.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from app.plot_style import ACCENT, class_color


class StepProbsPlot(pg.PlotWidget):
    """``set_probs(step_probs (T, K), class_names, truth)`` once, ``show_until(t)`` per frame."""

    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.setObjectName("stepProbsPlot")
        pi = self.getPlotItem()
        pi.setLabel("bottom", "timestep t (steps read so far)")
        pi.setLabel("left", "p(class | steps 1..t)")
        pi.showGrid(x=True, y=True, alpha=0.15)
        pi.setYRange(0, 1.02, padding=0)
        pi.getViewBox().setMouseEnabled(x=False, y=False)
        self.curves: list[pg.PlotDataItem] = []
        self.winner = pg.ScatterPlotItem(name="predicted", size=7, pen=pg.mkPen("#263238"))
        self.winner.hover_format = self._hover_winner
        pi.addItem(self.winner)
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen(ACCENT, width=2))
        pi.addItem(self.cursor, ignoreBounds=True)
        self.step_probs = None
        self.class_names: list[str] = []
        self.truth = None
        self.t = 0
        self.setMinimumSize(220, 160)

    def _ensure_curves(self, K: int, names: list[str]):
        if len(self.curves) == K and [c.name() for c in self.curves] == names:
            return
        pi = self.getPlotItem()
        for c in self.curves:
            pi.removeItem(c)
        self.curves = []
        for k in range(K):
            c = pi.plot([], [], name=names[k], pen=pg.mkPen(class_color(k), width=1.5))
            c.hover_format = (lambda x, y, n=names[k]: f"p({n} | steps 1..{int(x)}) = {y:.3f}")
            self.curves.append(c)

    def set_probs(self, step_probs: np.ndarray, class_names: list[str], truth: int | None):
        """``step_probs``: float (T, K) for one image; ``truth``: its label (or None)."""
        self.step_probs = np.asarray(step_probs, dtype=np.float64)
        T, K = self.step_probs.shape
        names = list(class_names)[:K] + [str(k) for k in range(len(class_names), K)]
        self.class_names = names
        self.truth = truth
        self._ensure_curves(K, names)
        for k, c in enumerate(self.curves):
            c.setPen(pg.mkPen(class_color(k), width=4 if k == truth else 1.5))
            c.setZValue(2 if k == truth else 1)
        self.getPlotItem().setXRange(0.5, T + 0.5, padding=0)
        self.show_until(self.t if 0 < self.t <= T else T)

    def show_until(self, t: int):
        """Draw the lines for timesteps 1..t (1-based)."""
        if self.step_probs is None:
            return
        T, K = self.step_probs.shape
        self.t = int(np.clip(t, 0, T))
        x = np.arange(1, self.t + 1, dtype=np.float64)
        for k, c in enumerate(self.curves):
            c.setData(x, self.step_probs[: self.t, k])
        pred = self.step_probs[: self.t].argmax(axis=1)
        self.winner.setData(x=x, y=self.step_probs[np.arange(self.t), pred],
                            brush=[pg.mkBrush(class_color(int(k))) for k in pred])
        self.cursor.setValue(self.t)
        self.cursor.setVisible(self.t > 0)

    def legend_html(self) -> str:
        """Class names in their line colours, one a line (the true class bold), for a label
        beside the plot."""
        parts = []
        for k, n in enumerate(self.class_names):
            n = n.replace(" ", "&nbsp;")
            name = f"<b>{n}&nbsp;(true)</b>" if k == self.truth else n
            parts.append(f"<span style='color:{class_color(k)}'>■</span>&nbsp;{name}")
        return "<br>".join(parts)

    def predicted_at(self, t: int) -> tuple[int, float]:
        """The class the network predicts after steps 1..t, and its probability."""
        p = self.step_probs[t - 1]
        k = int(np.argmax(p))
        return k, float(p[k])

    def _hover_winner(self, x, y):
        k, p = self.predicted_at(int(round(x)))
        return f"after step {int(round(x))}: predicts {self.class_names[k]} ({p:.0%})"
