"""The Memory tab: how far back can each cell remember? (core.memory_bench in the app)

Choose cells and vanilla variants, distances, seeds, hidden size and epochs; Run trains one
row-RNN per (variant, distance, seed) on the memory-probe task on a worker thread
(app.memory_worker). Three plots fill in as runs finish: test accuracy against distance (a
point per seed, the mean line and min-max band per cell, chance drawn), the gradient profile
||dl/dh_t|| after training at the selected distance (||dl/dc_t|| dashed for the LSTM), and the
share of the connectivity ||d logit/d x_t|| on the cue rows against distance. Clicking a point
emits ``exploreRequested(result)`` with that run's result (its trained model under
'trained'), which the main window opens in the Explorer.

The plot items are made once per cell variant and updated with setData; the figures are a few
numbers per run, computed here from the results.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from app.fill_scroll_area import FillScrollArea
from app.log_axis import DecadeLogAxis
from app.memory_worker import MemoryWorker
from app.plot_frame import PlotFrame
from app.plot_style import CLASS_COLORS, CUE, SUBTLE, legend_below, make_plot
from app.worker_thread import start_worker, stop_worker
from core.errors import ConfigError, RnnscopeError
from core.memory_bench import (
    BENCH_DISTANCES,
    BENCH_EPOCHS,
    BENCH_HIDDEN,
    BENCH_SEEDS,
    CHANCE,
    ROWS,
    BenchConfig,
    parse_variant,
)

# The checkable list: (variant spec, text, checked at start).
VARIANT_CHOICES = [
    ("rnn:tanh:xavier", "vanilla tanh / Xavier", True),
    ("rnn:tanh:orthogonal", "vanilla tanh / orthogonal", False),
    ("rnn:relu:identity", "IRNN: relu / identity", False),
    ("lstm", "LSTM", True),
    ("gru", "GRU", True),
]
SYMBOLS = ["o", "t", "s", "d", "star"]
CUE_HEIGHT = 4   # the bench's default cue band (4 rows)


def _colour(label: str) -> str:
    labels = [parse_variant(spec).label for spec, _, _ in VARIANT_CHOICES]
    i = labels.index(label) if label in labels else len(labels) + sum(map(ord, label))
    return CLASS_COLORS[i % len(CLASS_COLORS)]


def _symbol(label: str) -> str:
    labels = [parse_variant(spec).label for spec, _, _ in VARIANT_CHOICES]
    i = labels.index(label) if label in labels else sum(map(ord, label))
    return SYMBOLS[i % len(SYMBOLS)]


class _VariantItems:
    """The plot items of one cell variant in the three plots (made once, reused)."""

    def __init__(self, label: str, acc: pg.PlotItem, grad: pg.PlotItem, conn: pg.PlotItem,
                 on_click):
        c = _colour(label)
        fill = QtGui.QColor(c)
        fill.setAlpha(45)
        pen = pg.mkPen(c, width=2)
        sym = _symbol(label)
        self.low = pg.PlotDataItem(pen=None)
        self.high = pg.PlotDataItem(pen=None)
        self.band = pg.FillBetweenItem(self.low, self.high, brush=fill)
        self.mean = pg.PlotDataItem(pen=pen, symbol=None)
        self.points = pg.ScatterPlotItem(size=9, symbol=sym, pen=pg.mkPen("w", width=0.8),
                                         brush=pg.mkBrush(c), hoverable=True,
                                         hoverSize=12)
        self.points.sigClicked.connect(on_click)
        for it in (self.low, self.high, self.band, self.mean, self.points):
            acc.addItem(it)
        self.points.setZValue(5)
        self.dh = pg.PlotDataItem(pen=pen)
        self.dc = pg.PlotDataItem(pen=pg.mkPen(c, width=2, style=QtCore.Qt.DashLine))
        grad.addItem(self.dh)
        grad.addItem(self.dc)
        self.conn_mean = pg.PlotDataItem(pen=pen)
        self.conn_points = pg.ScatterPlotItem(size=8, symbol=sym, pen=pg.mkPen("w", width=0.8),
                                              brush=pg.mkBrush(c), hoverable=True)
        self.conn_points.sigClicked.connect(on_click)
        conn.addItem(self.conn_mean)
        conn.addItem(self.conn_points)
        # names for the CSV export and the read-out, given after adding: a name given before
        # would put every item into the legend, which lists only the mean lines
        for it, name in ((self.low, "min"), (self.high, "max"), (self.mean, "mean"),
                         (self.points, "runs"), (self.dh, "dl/dh_t"), (self.dc, "dl/dc_t"),
                         (self.conn_mean, "cue share mean"), (self.conn_points,
                                                              "cue share runs")):
            it.opts["name"] = f"{label} {name}"
        self.all = (self.low, self.high, self.mean, self.points, self.dh, self.dc,
                    self.conn_mean, self.conn_points)

    def clear(self):
        for it in self.all:
            it.setData([], [])


class MemoryPanel(QtWidgets.QWidget):
    """Controls, the three plots and the bench's worker thread."""

    exploreRequested = QtCore.Signal(object)   # a run's result dict with 'trained'
    benchFinished = QtCore.Signal(object)      # the document of the finished runs
    message = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("memoryPanel")
        self.worker: MemoryWorker | None = None
        self.thread: QtCore.QThread | None = None
        self.workers_for_run = lambda: 1   # processes per bench (the main window may change it)
        self.results: dict[int, dict] = {}
        self.variants: list[dict] = []
        self.distances: list[int] = []
        self.total_runs = 0
        self.cue_height = CUE_HEIGHT
        self._items: dict[str, _VariantItems] = {}

        # --- controls ---------------------------------------------------------------------
        self.cells_list = QtWidgets.QListWidget()
        self.cells_list.setObjectName("memoryCellsList")
        self.cells_list.setToolTip("Which cells race; the vanilla cell with each activation / "
                                   "recurrent init")
        for spec, text, on in VARIANT_CHOICES:
            item = QtWidgets.QListWidgetItem(text)
            item.setData(QtCore.Qt.UserRole, spec)
            item.setFlags(item.flags() | QtCore.Qt.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.Checked if on else QtCore.Qt.Unchecked)
            self.cells_list.addItem(item)
        rows = self.cells_list.count()
        self.cells_list.setFixedHeight(rows * self.cells_list.sizeHintForRow(0)
                                       + 2 * self.cells_list.frameWidth() + 8)
        self.cells_list.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        self.distances_edit = QtWidgets.QLineEdit(",".join(map(str, BENCH_DISTANCES)))
        self.distances_edit.setObjectName("memoryDistancesEdit")
        self.distances_edit.setToolTip("Distances d (comma-separated, 0..28): steps from the "
                                       "last cue row to the last row read; d = 28 puts the "
                                       "cue on rows 1-4")
        self.seeds_spin = self._spin("memorySeedsSpin", 1, 20, BENCH_SEEDS,
                                     "Runs per cell and distance, seeds 0..n-1")
        self.hidden_spin = self._spin("memoryHiddenSpin", 2, 512, BENCH_HIDDEN,
                                      "Hidden units of every cell")
        self.epochs_spin = self._spin("memoryEpochsSpin", 1, 200, BENCH_EPOCHS,
                                      "Training epochs of each run (2,000 probe images)")
        self.run_button = QtWidgets.QPushButton("Run")
        self.run_button.setObjectName("memoryRunButton")
        self.run_button.setToolTip("Train one model per cell, distance and seed in the "
                                   "background")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setObjectName("memoryStopButton")
        self.stop_button.setToolTip("Stop after the current training step; finished runs stay")
        self.stop_button.setEnabled(False)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setObjectName("memoryProgress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.status_label = QtWidgets.QLabel("Press Run to train the bench.")
        self.status_label.setObjectName("memoryStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setAlignment(QtCore.Qt.AlignLeft | QtCore.Qt.AlignTop)

        form = QtWidgets.QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Distances", self.distances_edit)
        form.addRow("Seeds", self.seeds_spin)
        form.addRow("Hidden units", self.hidden_spin)
        form.addRow("Epochs", self.epochs_spin)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        intro = QtWidgets.QLabel(
            "The memory-probe task puts the class in 4 cue rows; the rest is noise. Move the "
            "cue further from the end (distance d) and see which cells still learn.")
        intro.setWordWrap(True)
        intro.setStyleSheet(f"color: {SUBTLE}")
        controls = QtWidgets.QWidget()
        controls.setObjectName("memoryControls")
        cl = QtWidgets.QVBoxLayout(controls)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(intro)
        cl.addWidget(QtWidgets.QLabel("Cells"))
        cl.addWidget(self.cells_list)
        cl.addLayout(form)
        cl.addLayout(buttons)
        cl.addWidget(self.progress)
        cl.addWidget(self.status_label)
        cl.addStretch(1)
        controls.setFixedWidth(230)

        # --- plots ------------------------------------------------------------------------
        self.acc_plot = make_plot("memoryAccuracyPlot", x_label="distance d (steps from the "
                                  "last cue row to the end)", y_label="test accuracy")
        api = self.acc_plot.getPlotItem()
        api.setXRange(-0.5, ROWS - CUE_HEIGHT + 0.5, padding=0)
        api.setYRange(0, 1.02, padding=0)
        api.getViewBox().setMouseEnabled(x=False, y=False)
        self.chance_line = pg.InfiniteLine(CHANCE, angle=0, pen=pg.mkPen(SUBTLE, width=1,
                                           style=QtCore.Qt.DashLine),
                                           label="chance", labelOpts={
                                               "position": 0.97, "color": SUBTLE,
                                               "anchors": [(1, 1), (1, 1)]})
        api.addItem(self.chance_line, ignoreBounds=True)
        self.acc_legend = legend_below(api, columns=3)
        self.acc_frame = PlotFrame(
            "Test accuracy against distance", self.acc_plot,
            "A cell remembers as far as its line stays above chance: expect the vanilla tanh "
            "cell to fall towards 10% as d grows while the LSTM and GRU stay high. Click a "
            "point to open that model in the Explorer.", export_name="memory_accuracy")

        self.grad_plot = pg.PlotWidget(axisItems={"left": DecadeLogAxis("left")})
        self.grad_plot.setObjectName("memoryGradientPlot")
        gpi = self.grad_plot.getPlotItem()
        gpi.setLogMode(x=False, y=True)
        gpi.showGrid(x=True, y=True, alpha=0.15)
        gpi.setLabel("bottom", "timestep t (image row)")
        gpi.setLabel("left", "||dl/dh_t||")
        gpi.setXRange(0.5, ROWS + 0.5, padding=0)
        gpi.setMenuEnabled(False)
        self.grad_plot.setMinimumSize(160, 120)
        self.cue_region = pg.LinearRegionItem((1, 4), movable=False,
                                              brush=pg.mkBrush(0, 131, 143, 40),
                                              pen=pg.mkPen(None))
        gpi.addItem(self.cue_region, ignoreBounds=True)
        self.grad_legend = legend_below(gpi, columns=2)
        self.distance_combo = QtWidgets.QComboBox()
        self.distance_combo.setObjectName("memoryDistanceCombo")
        self.distance_combo.setToolTip("The distance whose gradients (and connectivity) to show")
        self.grad_frame = PlotFrame(
            "Gradient after training at d =", self.grad_plot,
            "Mean ||dl/dh_t|| over test images (dashed: ||dl/dc_t||); a curve that falls by "
            "decades before it reaches the shaded cue rows means the cue gets no signal.",
            export_name="memory_gradients")
        self.grad_frame.add_header_widget(self.distance_combo)

        self.conn_plot = make_plot("memoryConnectivityPlot", x_label="distance d",
                                   y_label="share on the cue rows")
        cpi = self.conn_plot.getPlotItem()
        cpi.setXRange(-0.5, ROWS - CUE_HEIGHT + 0.5, padding=0)
        cpi.setYRange(0, 1.02, padding=0)
        cpi.getViewBox().setMouseEnabled(x=False, y=False)
        self.uniform_line = pg.InfiniteLine(CUE_HEIGHT / ROWS, angle=0, pen=pg.mkPen(
            SUBTLE, width=1, style=QtCore.Qt.DashLine), label="uniform", labelOpts={
            "position": 0.97, "color": SUBTLE, "anchors": [(1, 1), (1, 1)]})
        cpi.addItem(self.uniform_line, ignoreBounds=True)
        self.selected_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(CUE, width=1))
        self.selected_line.setVisible(False)
        cpi.addItem(self.selected_line, ignoreBounds=True)
        self.conn_frame = PlotFrame(
            "Connectivity on the cue rows", self.conn_plot,
            "Share of ||d logit/d x_t|| (true class, test images) on the 4 cue rows; above "
            "'uniform' the decision reads the cue, at 1 it reads nothing else.",
            export_name="memory_connectivity")

        grid = QtWidgets.QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.acc_frame, 0, 0, 1, 2)
        grid.addWidget(self.grad_frame, 1, 0)
        grid.addWidget(self.conn_frame, 1, 1)
        grid.setRowStretch(0, 5)
        grid.setRowStretch(1, 4)
        plots = QtWidgets.QWidget()
        plots.setLayout(grid)
        plots.setMinimumSize(560, 480)
        self.plots_area = FillScrollArea()
        self.plots_area.setObjectName("memoryPlots")
        self.plots_area.setFrameShape(QtWidgets.QFrame.NoFrame)
        self.plots_area.setWidget(plots)

        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(controls)
        lay.addWidget(self.plots_area, 1)

        self.run_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.distance_combo.currentIndexChanged.connect(self._distance_changed)

    def _spin(self, name: str, low: int, high: int, value: int, tip: str):
        s = QtWidgets.QSpinBox()
        s.setObjectName(name)
        s.setRange(low, high)
        s.setValue(value)
        s.setToolTip(tip)
        return s

    # --- the bench's configuration ----------------------------------------------------------
    def chosen_cells(self) -> list[str]:
        return [self.cells_list.item(i).data(QtCore.Qt.UserRole)
                for i in range(self.cells_list.count())
                if self.cells_list.item(i).checkState() == QtCore.Qt.Checked]

    def set_cells(self, specs):
        for i in range(self.cells_list.count()):
            item = self.cells_list.item(i)
            item.setCheckState(QtCore.Qt.Checked if item.data(QtCore.Qt.UserRole) in specs
                               else QtCore.Qt.Unchecked)

    def config(self) -> BenchConfig:
        """The form as a validated BenchConfig (ConfigError with a one-line message)."""
        cells = self.chosen_cells()
        if not cells:
            raise ConfigError("tick at least one cell")
        try:
            distances = tuple(int(p) for p in self.distances_edit.text().replace(" ", "")
                              .split(",") if p)
        except ValueError:
            raise ConfigError(f"distances {self.distances_edit.text()!r}: give whole numbers "
                              "separated by commas, e.g. 4,16,28") from None
        return BenchConfig(cells=tuple(cells), distances=distances,
                           seeds=self.seeds_spin.value(), hidden=self.hidden_spin.value(),
                           epochs=self.epochs_spin.value()).validate()

    def is_running(self) -> bool:
        return self.worker is not None

    # --- run and stop -----------------------------------------------------------------------
    def start(self, config: BenchConfig | None = None):
        if self.is_running():
            return
        try:
            config = config or self.config()
        except RnnscopeError as exc:
            self.status_label.setText(f"<span style='color:#c62828'>{exc}</span>")
            self.message.emit(str(exc))
            return
        self._reset(config)
        w = MemoryWorker(config, workers=self.workers_for_run())
        w.benchStarted.connect(self._on_bench_started)
        w.runStarted.connect(self._on_run_started)
        w.runStep.connect(self._on_run_step)
        w.runDone.connect(self._on_run_done)
        w.benchDone.connect(self._on_bench_done)
        w.failed.connect(self._on_failed)
        self.worker = w
        self.thread = start_worker(w)
        self.thread.finished.connect(self._on_thread_finished)
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status_label.setText("Starting the bench …")

    def stop(self):
        if self.worker is not None:
            self.worker.cancel()
            self.stop_button.setEnabled(False)
            self.status_label.setText("Stopping after the current training step …")

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop the bench and wait for its thread (the window is closing)."""
        if self.worker is None:
            return True
        ok = stop_worker(self.worker, self.thread, timeout_ms)
        self._on_thread_finished()
        return ok

    def _on_thread_finished(self):
        if self.thread is None:
            return
        self.thread.wait()
        self.thread.deleteLater()
        self.worker.deleteLater()
        self.thread = self.worker = None
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _reset(self, config: BenchConfig):
        self.results = {}
        self.variants = config.variants()
        self.distances = [int(d) for d in config.distances]
        self.total_runs = len(self.variants) * len(self.distances) * config.seeds
        self.cue_height = int(config.cue_height)
        self.progress.setValue(0)
        for items in self._items.values():
            items.clear()
        for pi in (self.acc_plot.getPlotItem(), self.grad_plot.getPlotItem()):
            pi.legend.clear()
        for v in self.variants:
            label = v["label"]
            if label not in self._items:
                self._items[label] = _VariantItems(
                    label, self.acc_plot.getPlotItem(), self.grad_plot.getPlotItem(),
                    self.conn_plot.getPlotItem(), self._points_clicked)
            items = self._items[label]
            self.acc_legend.addItem(items.mean, f"{label} ({v['params']:,} params)")
            self.grad_legend.addItem(items.dh, label)
            if v["cell"] == "lstm":
                self.grad_legend.addItem(items.dc, f"{label} dl/dc")
        self.acc_legend.updateSize()
        self.grad_legend.updateSize()
        self.distance_combo.blockSignals(True)
        self.distance_combo.clear()
        for d in self.distances:
            self.distance_combo.addItem(str(d), d)
        self.distance_combo.setCurrentIndex(len(self.distances) - 1)   # the longest
        self.distance_combo.blockSignals(False)
        self._redraw()

    # --- worker signals ---------------------------------------------------------------------
    def _on_bench_started(self, ev: dict):
        self.total_runs = int(ev["runs"])
        n = int(ev["workers"])
        self.status_label.setText(f"{self.total_runs} runs on {n} "
                                  f"{'process' if n == 1 else 'processes'} …")

    def _on_run_started(self, ev: dict):
        self._current = ev

    def _on_run_step(self, ev: dict):
        cur = getattr(self, "_current", None) or {}
        done = len(self.results)
        frac = ev["step"] / max(1, ev["total_steps"])
        self.progress.setValue(int(1000 * min(1.0, (done + frac) / max(1, self.total_runs))))
        what = (f"{cur.get('label', '')}, d = {cur.get('distance', '')}, seed "
                f"{cur.get('seed', '')}" if cur else "")
        self.status_label.setText(
            f"Run {done + 1} of {self.total_runs}: {what}<br>step {ev['step']} / "
            f"{ev['total_steps']}, loss {ev['loss']:.3f}")

    def _on_run_done(self, ev: dict):
        self.results[int(ev["run"])] = ev["result"]
        self.progress.setValue(int(1000 * len(self.results) / max(1, self.total_runs)))
        self._redraw()

    def _on_bench_done(self, doc: dict):
        n = len(doc["results"])
        if doc.get("stopped") or not doc.get("complete"):
            text = f"Stopped: {n} of {self.total_runs} runs finished."
        else:
            text = f"Done: {n} runs in {doc['seconds']:.0f} s."
        self.status_label.setText(text + " Click a point to open that model in the Explorer.")
        self.message.emit(f"Memory bench: {text}")
        self.benchFinished.emit(doc)

    def _on_failed(self, message: str):
        self.status_label.setText(f"<span style='color:#c62828'>{message}</span>")
        self.message.emit(message)

    # --- drawing ----------------------------------------------------------------------------
    def _runs_of(self, label: str) -> list[tuple[int, dict]]:
        return [(i, r) for i, r in sorted(self.results.items()) if r["variant"] == label]

    def _redraw(self):
        for v in self.variants:
            items = self._items[v["label"]]
            runs = self._runs_of(v["label"])
            xs = [r["distance"] for _, r in runs]
            accs = [r["test_acc"] for _, r in runs]
            items.points.setData(x=xs, y=accs, data=[i for i, _ in runs])
            shares = [(i, r) for i, r in runs if r.get("cue_mass") is not None]
            items.conn_points.setData(x=[r["distance"] for _, r in shares],
                                      y=[r["cue_mass"] for _, r in shares],
                                      data=[i for i, _ in shares])
            ds = sorted(set(xs))
            by_d = [[r["test_acc"] for _, r in runs if r["distance"] == d] for d in ds]
            items.mean.setData(ds, [float(np.mean(a)) for a in by_d])
            items.low.setData(ds, [min(a) for a in by_d])
            items.high.setData(ds, [max(a) for a in by_d])
            cds = sorted({r["distance"] for _, r in shares})
            items.conn_mean.setData(cds, [float(np.mean([r["cue_mass"] for _, r in shares
                                                         if r["distance"] == d])) for d in cds])
        self._draw_gradients()

    def selected_distance(self) -> int | None:
        return self.distance_combo.currentData()

    def _distance_changed(self, *_):
        self._draw_gradients()

    def _draw_gradients(self):
        d = self.selected_distance()
        self.grad_frame.set_title("Gradient after training at d =" if d is not None
                                  else "Gradient after training")
        self.selected_line.setVisible(d is not None)
        if d is None:
            return
        self.selected_line.setValue(d)
        cue_row = ROWS - self.cue_height - d   # 0-based first cue row
        self.cue_region.setRegion((cue_row + 0.5, cue_row + self.cue_height + 0.5))
        t = np.arange(1, ROWS + 1)
        for v in self.variants:
            items = self._items[v["label"]]
            runs = [r for _, r in self._runs_of(v["label"]) if r["distance"] == d]
            for item, key in ((items.dh, "dh_norm"), (items.dc, "dc_norm")):
                curves = [r[key] for r in runs if r.get(key) is not None]
                if not curves:
                    item.setData([], [])
                    continue
                mean = np.mean(np.asarray(curves, dtype=np.float64), axis=0)
                mean = np.where(mean > 0, mean, np.nan)
                item.setData(t[:len(mean)], mean, connect="finite")

    def _points_clicked(self, _item, points, _ev=None):
        if len(points):
            self.explore_run(int(points[0].data()))

    def explore_run(self, run_id: int):
        """Ask for run ``run_id``'s trained model in the Explorer."""
        result = self.results.get(run_id)
        if result is None:
            return
        if result.get("trained") is None:
            self.message.emit("This run kept no trained model to explore.")
            return
        self.message.emit(f"Opening {result['variant']}, d = {result['distance']}, seed "
                          f"{result['seed']} in the Explorer …")
        self.exploreRequested.emit(result)
