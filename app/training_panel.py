"""Live training curves: loss and accuracy per step (train) and per evaluation (validation),
with the steps where gradient clipping fired marked on the loss curve."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from app.plot_frame import PlotFrame
from app.plot_style import BAD, legend_below, make_plot

EMA = 0.95  # smoothing of the per-batch curves when the epoch length is unknown
# Step batches arrive up to 20 times a second; the curves are redrawn at most every REFRESH_MS:
# a redraw of both plots is Python on the GUI thread, and meanwhile the training thread waits
# for the GIL.
REFRESH_MS = 250


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= value (axis limits that rarely move)."""
    value = max(float(value), 1e-12)
    k = np.floor(np.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * 10 ** k >= value * (1 - 1e-9):
            return float(m * 10 ** k)
    return float(10 ** (k + 1))


def ema_weight(steps_per_epoch: int | None) -> float:
    """Smoothing that averages about a tenth of an epoch (5..50 steps): a 20-step average on a
    short run lags so far behind the falling loss that it sits above the validation curve."""
    if not steps_per_epoch:
        return EMA
    window = float(np.clip(steps_per_epoch / 10, 5, 50))
    return 1.0 - 1.0 / window


class _Growing:
    """An append-only float column that doubles its buffer (no per-step reallocation)."""

    def __init__(self):
        self.buf = np.zeros(256)
        self.n = 0

    def extend(self, values):
        values = np.asarray(values, dtype=np.float64)
        need = self.n + len(values)
        if need > len(self.buf):
            self.buf = np.concatenate([self.buf, np.zeros(max(need, 2 * len(self.buf)))])
        self.buf[self.n:need] = values
        self.n = need

    @property
    def data(self) -> np.ndarray:
        return self.buf[: self.n]

    def clear(self):
        self.n = 0


class TrainingPanel(QtWidgets.QWidget):
    message = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        # no grid on these two: they redraw all through training, and pyqtgraph's grid lines
        # are most of a redraw's cost
        self.loss_plot = make_plot("lossPlot", x_label="training step", y_label="loss",
                                   grid=False)
        self.acc_plot = make_plot("accPlot", x_label="training step", y_label="accuracy",
                                  grid=False)
        lp, ap = self.loss_plot.getPlotItem(), self.acc_plot.getPlotItem()
        legend_below(lp, columns=4)
        legend_below(ap, columns=2)
        ap.setYRange(0, 1, padding=0.02)
        ap.setXLink(lp)
        # The view follows the data with headroom instead of pyqtgraph's auto-range: a range
        # that moves on every redraw regenerates both axes and paints twice. A manual zoom or
        # pan stops the following until the plot's "A" (auto-range) button is pressed.
        self._follow = True
        self._x_limit = self._y_limit = 0.0
        lp.getViewBox().disableAutoRange()
        lp.getViewBox().sigRangeChangedManually.connect(self._stop_following)
        self.loss_raw = lp.plot([], [], name="batch loss", pen=pg.mkPen("#90caf9", width=1))
        self.loss_smooth = lp.plot([], [], name="batch loss (smoothed)",
                                   pen=pg.mkPen("#1565c0", width=2))
        self.val_loss = lp.plot([], [], name="validation loss", pen=pg.mkPen("#ef6c00", width=2),
                                symbol="o", symbolSize=7, symbolBrush="#ef6c00")
        self.clip_marks = pg.ScatterPlotItem(name="clipping fired", symbol="t", size=6,
                                             pen=None, brush=pg.mkBrush(BAD))
        lp.addItem(self.clip_marks)  # named, so the legend lists it
        self.acc_smooth = ap.plot([], [], name="batch accuracy (smoothed)",
                                  pen=pg.mkPen("#1565c0", width=2))
        self.val_acc = ap.plot([], [], name="validation accuracy",
                               pen=pg.mkPen("#ef6c00", width=2), symbol="o", symbolSize=7,
                               symbolBrush="#ef6c00")
        for c in (self.loss_raw, self.loss_smooth, self.acc_smooth):
            c.setDownsampling(auto=True, method="peak")
            c.setClipToView(True)
        self.loss_raw.hover_format = lambda x, y: f"step {int(x)}: batch loss {y:.4f}"
        self.loss_smooth.hover_format = lambda x, y: f"step {int(x)}: smoothed loss {y:.4f}"
        self.val_loss.hover_format = lambda x, y: f"step {int(x)}: validation loss {y:.4f}"
        self.val_acc.hover_format = lambda x, y: f"step {int(x)}: validation accuracy {y:.1%}"
        self.acc_smooth.hover_format = lambda x, y: f"step {int(x)}: batch accuracy {y:.1%}"
        self.clip_marks.hover_format = lambda x, y: f"step {int(x)}: clipping fired (loss {y:.4f})"

        self.loss_frame = PlotFrame(
            "Loss", self.loss_plot,
            "Batch loss should fall; the orange validation loss tells whether it generalises. "
            "Red marks: steps where the gradient was clipped.", export_name="loss")
        self.acc_frame = PlotFrame(
            "Accuracy", self.acc_plot,
            "Chance is 1 / number of classes (10%). A gap between batch and validation "
            "accuracy that keeps growing means overfitting.", export_name="accuracy")
        self.stats = QtWidgets.QLabel("Press Train to start. Curves appear as steps arrive.")
        self.stats.setObjectName("trainingStats")
        self.stats.setWordWrap(True)
        self.stats.setTextFormat(QtCore.Qt.RichText)
        # a fixed height: new text must not re-lay out (and so repaint) the whole panel
        self.stats.setFixedHeight(3 * self.stats.fontMetrics().lineSpacing() + 4)
        self._refresh_timer = QtCore.QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.stats)
        split = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        split.addWidget(self.loss_frame)
        split.addWidget(self.acc_frame)
        lay.addWidget(split, 1)
        self.ema = EMA     # kept across clear(): set_steps_per_epoch sets it for a run
        self.clear()

    def clear(self):
        self.steps, self.losses, self.smooth_loss = _Growing(), _Growing(), _Growing()
        self.smooth_acc = _Growing()
        self.clip_x, self.clip_y = _Growing(), _Growing()
        self.eval_x, self.eval_loss, self.eval_acc = [], [], []
        self._ema_loss = self._ema_acc = None
        self.n_clipped = 0
        self.best = None
        self._follow, self._x_limit, self._y_limit = True, 0.0, 0.0
        self.finished_text = ""
        for c in (self.loss_raw, self.loss_smooth, self.val_loss, self.acc_smooth, self.val_acc):
            c.setData([], [])
        self.clip_marks.setData([], [])

    def set_steps_per_epoch(self, n: int | None):
        """Match the smoothing to the run's epoch length (applies to the steps that follow)."""
        self.ema = ema_weight(n)

    def load_history(self, history: dict):
        """Show the steps/evals of an earlier run (a loaded checkpoint) at once."""
        self.clear()
        steps = history.get("steps") or []
        last = steps[-1] if steps else {}
        if last.get("epoch"):
            self.set_steps_per_epoch(int(round(last["step"] / last["epoch"])))
        self.add_history({"steps": steps, "evals": history.get("evals") or []},
                         refresh=False)
        self._refresh()
        self._follow_data(tight=True)

    def add_history(self, records: dict, refresh: bool = True):
        """Show records of the trainer's history ('steps', 'evals' lists, as the trainer
        writes them) that arrived since the last call."""
        self.add_steps([{"step": s["step"], "loss": s["loss"], "acc": s.get("acc"),
                         "clip": {"fired": s.get("clip_fired", False)}}
                        for s in records.get("steps") or []], refresh=refresh)
        for ev in records.get("evals") or []:
            self.add_eval(ev, refresh=refresh)

    def step_count(self) -> int:
        """Training steps shown."""
        return self.steps.n

    def add_steps(self, events: list[dict], refresh: bool = True):
        if not events:
            return
        xs, ls, sl, sa = [], [], [], []
        for ev in events:
            loss = ev["loss"]
            acc = ev.get("acc")
            a = self.ema
            self._ema_loss = loss if self._ema_loss is None else (
                a * self._ema_loss + (1 - a) * loss)
            if acc is not None:
                self._ema_acc = acc if self._ema_acc is None else (
                    a * self._ema_acc + (1 - a) * acc)
            xs.append(ev["step"])
            ls.append(loss)
            sl.append(self._ema_loss)
            sa.append(np.nan if self._ema_acc is None else self._ema_acc)
            if (ev.get("clip") or {}).get("fired"):
                self.clip_x.extend([ev["step"]])
                self.clip_y.extend([loss])
                self.n_clipped += 1
        self.steps.extend(xs)
        self.losses.extend(ls)
        self.smooth_loss.extend(sl)
        self.smooth_acc.extend(sa)
        if refresh:
            self.schedule_refresh()

    def add_eval(self, ev: dict, refresh: bool = True):
        self.eval_x.append(ev["step"])
        self.eval_loss.append(np.nan if ev.get("val_loss") is None else ev["val_loss"])
        self.eval_acc.append(np.nan if ev.get("val_acc") is None else ev["val_acc"])
        if ev.get("best"):
            self.best = (ev["step"], ev.get("val_acc"))
        if refresh:
            self.schedule_refresh()

    def schedule_refresh(self):
        """Redraw within REFRESH_MS; updates arriving meanwhile share that one redraw."""
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def flush(self):
        """Draw what has arrived now (end of a run, tests)."""
        if self._refresh_timer.isActive():
            self._refresh_timer.stop()
            self._refresh()

    def set_finished(self, text: str):
        self.finished_text = text
        self.flush()
        self._follow_data(tight=True)
        self._refresh_stats()

    def _stop_following(self, *_):
        self._follow = False

    def _follow_data(self, tight: bool = False):
        """Widen the loss view (x shared with accuracy) only when the data outgrows it;
        ``tight``: fit it to the data (a finished run, a loaded history)."""
        vb = self.loss_plot.getPlotItem().getViewBox()
        if any(vb.autoRangeEnabled()):      # the "A" button: follow the data again
            vb.disableAutoRange()
            self._follow, self._x_limit, self._y_limit = True, 0.0, 0.0
        if not self._follow or self.steps.n == 0:
            return
        last = float(self.steps.data[-1])
        finite = self.losses.data[np.isfinite(self.losses.data)]
        top = float(finite.max()) if finite.size else 1.0
        if tight:
            self._x_limit, self._y_limit = 1.02 * last, 1.05 * top
            vb.setXRange(0, self._x_limit, padding=0)
            vb.setYRange(0, self._y_limit, padding=0)
            return
        if last > self._x_limit:
            self._x_limit = nice_ceiling(max(10.0, 1.25 * last))
            vb.setXRange(0, self._x_limit, padding=0)
        if top > self._y_limit:
            self._y_limit = nice_ceiling(1.1 * top)
            vb.setYRange(0, self._y_limit, padding=0)

    def _refresh(self):
        self._follow_data()
        x = self.steps.data
        self.loss_raw.setData(x, self.losses.data)
        self.loss_smooth.setData(x, self.smooth_loss.data)
        self.acc_smooth.setData(x, self.smooth_acc.data, connect="finite")
        self.clip_marks.setData(self.clip_x.data, self.clip_y.data)
        self.val_loss.setData(np.array(self.eval_x, float), np.array(self.eval_loss, float))
        self.val_acc.setData(np.array(self.eval_x, float), np.array(self.eval_acc, float))
        self._refresh_stats()

    def _refresh_stats(self):
        n = self.steps.n
        if n == 0:
            self.stats.setText(self.finished_text or "Press Train to start.")
            return
        parts = [f"<b>{n:,}</b> steps, last batch loss {self.losses.data[-1]:.4f}"]
        parts.append(f"clipping fired on <b>{self.n_clipped:,} of {n:,}</b> steps "
                     f"({self.n_clipped / n:.1%})")
        if self.eval_x:
            va = self.eval_acc[-1]
            parts.append(f"validation accuracy {va:.1%} at step {self.eval_x[-1]}")
        if self.best and self.best[1] is not None:
            parts.append(f"best {self.best[1]:.1%} (step {self.best[0]})")
        text = " · ".join(parts)
        if self.finished_text:
            text += f"<br>{self.finished_text}"
        self.stats.setText(text)
