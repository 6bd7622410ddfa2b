"""GUI responsiveness benchmark: launch time, GUI-thread timer jitter while training, and
training throughput inside the app against the same run headless.

Run from the repository root (Qt needs no display: QT_QPA_PLATFORM defaults to offscreen):

    python bench/bench_gui.py             # full run (~3 min) -> bench/results/bench_gui.json
    python bench/bench_gui.py --quick     # a few seconds per phase, to check it works
    python bench/bench_gui.py --seconds 20 --data ../shared/cifar10/cifar-10-python.tar.gz

Targets (issue: training competes with the GUI thread on a 2-core machine), while the row-RNN
(H=256, batch 128) trains inside the app (at 1 process and with "Train on all cores"): a 16 ms
QTimer's p99 interval < 33 ms and max < 100 ms; training throughput inside the app >= 70% of
the same run headless; window shown < 2 s after launch. This is a benchmark, not a test: it
prints figures and writes JSON.

Phases, in one run:
  launch   - a fresh ``python`` subprocess runs ``main.main([])`` (= ``python main.py``: the
             QApplication, MainWindow, show, event loop); window shown = process spawn to the
             end of the main window's first paint (a one-shot timer queued from the first Paint
             event), so interpreter start and every import count. Median of ``--launch-repeats``.
  idle     - in this process: MainWindow(data_spec=DATA) shown offscreen, data loaded through
             the app's load worker, form set to row-RNN H=256, batch 128; a 16 ms
             Qt.PreciseTimer on the GUI thread records ``time.perf_counter()`` at each timeout
             for ``--seconds``; intervals are reported as p50 / p99 / max in ms.
  training - the Train button (objectName ``trainButton``) is clicked, so the app's own path
             runs: MainWindow.start_training -> TrainWorker on its QThread (BLAS limited to one
             thread there) -> step batches / snapshots / traces back to the GUI. After a warm-up
             the same timer is sampled for ``--seconds``; the worker's step events received in
             that window give the throughput.
  all cores - a second window with the Training menu's "Train on all cores" ticked
             (``allCoresAction``: the trainer gets ``workers`` = the machine's cores, at most
             4, in worker processes): the training phase again (no idle phase), with the
             worker processes' CPU share in the window; after each window closes, the worker
             processes and /dev/shm segments left (both must be empty).
  headless - the same TrainConfig (taken from the app's form) in a fresh subprocess through
             cli.commands.make_trainer (the CLI's path; no checkpoint folder, like the app)
             and ``Trainer.events()`` at one BLAS thread (as ``python main.py train`` runs),
             warm-up then ``--seconds``. Variants: cli_same_run = ``--workers 1``, the app's
             default (the issue's "same run"; the throughput target is judged on it);
             cli_all_cores = ``--workers`` of "Train on all cores" (= the CLI's default).
Throughput figures per side: ``step_images_per_s`` = median of the trainer's reported
images_per_s (an EMA of batch / step time, evaluations excluded) over the steady window;
``effective_images_per_s`` = batch x steps / trainer seconds across the window (evaluations
and the loop's own overhead included). Ratios are app / headless.

Stalls (timer intervals > 50 ms) are listed with the GUI-thread CPU time and run-queue wait
(Linux schedstat: runnable but not running) inside them, and the app's signals handled then:
CPU time = the GUI thread was busy; run-queue wait = other threads/processes had the cores;
neither = it slept (e.g. waiting for the GIL).

The machine may be shared with other jobs: the load average and the busiest processes (with
their nice values) are recorded before, between the phases and after; nobody waits for a
quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_util import load_average, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_gui.json"
TARGETS = {"training_p99_ms": 33.0, "training_max_ms": 100.0, "throughput_ratio": 0.70,
           "window_shown_s": 2.0}
TIMER_MS = 16
LAUNCH_TIMEOUT_S = 60
HIDDEN, BATCH = 256, 128


# --- helpers shared by the phases ---------------------------------------------------------------
def busiest_processes(n=6):
    """The processes using the most CPU (pid, nice, %cpu since start, command), for context."""
    try:
        out = subprocess.run(["ps", "-eo", "pid,ni,pcpu,etime,args", "--sort=-pcpu"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return []
    rows = []
    for line in out[1:]:
        pid, ni, pcpu, etime, cmd = line.split(None, 4)
        if int(pid) == os.getpid() or cmd.startswith("ps "):
            continue
        rows.append({"pid": int(pid), "nice": ni, "pcpu": float(pcpu), "elapsed": etime,
                     "cmd": cmd[:120]})
        if len(rows) >= n:
            break
    return rows


def loadavg():
    return [round(v, 2) for v in os.getloadavg()]


def percentile(values, q):
    """Linear-interpolated percentile of a non-empty list (no NumPy needed)."""
    s = sorted(values)
    if not s:
        return None
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def interval_stats(ticks):
    """p50/p99/max (ms) of the intervals between successive timer ticks."""
    iv = [1000.0 * (b - a) for a, b in zip(ticks, ticks[1:], strict=False)]
    if not iv:
        return {"intervals": 0}
    return {"intervals": len(iv), "p50_ms": percentile(iv, 50), "p90_ms": percentile(iv, 90),
            "p99_ms": percentile(iv, 99), "max_ms": max(iv), "mean_ms": statistics.fmean(iv),
            "over_33ms": sum(v > 33.0 for v in iv), "over_100ms": sum(v > 100.0 for v in iv),
            "span_s": ticks[-1] - ticks[0]}


def throughput(records, batch, warmup_s):
    """Figures from step records (t since first step, step, images_per_s, trainer seconds)
    after the warm-up."""
    steady = [r for r in records if r[0] >= warmup_s]
    if len(steady) < 2:
        return {"steps": len(steady)}
    ips = [r[2] for r in steady if r[2]]
    d_steps = steady[-1][1] - steady[0][1]
    d_sec = steady[-1][3] - steady[0][3]
    return {"steps": len(steady), "first_step": steady[0][1], "last_step": steady[-1][1],
            "step_images_per_s": statistics.median(ips) if ips else None,
            "step_images_per_s_p10_p90": [percentile(ips, 10), percentile(ips, 90)],
            "effective_images_per_s": batch * d_steps / d_sec if d_sec > 0 else None,
            "window_trainer_seconds": d_sec}


def runqueue_wait_s() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat), or 0."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def timer_line(name, st):
    return (f"{name} 16 ms timer: p50 {fmt(st.get('p50_ms'), '.1f')}  p99 "
            f"{fmt(st.get('p99_ms'), '.1f')}  max {fmt(st.get('max_ms'), '.1f')} ms  (GUI thread "
            f"waited for a CPU {fmt(st.get('gui_thread_runqueue_wait_fraction'), '.0%')} "
            "of the time)")


def fmt(v, spec=".0f"):
    return "n/a" if v is None else format(v, spec)


def blas_info():
    from threadpoolctl import threadpool_info

    return [{k: d.get(k) for k in ("internal_api", "version", "num_threads")}
            for d in threadpool_info() if d.get("user_api") == "blas"]


# --- phase 1: launch (subprocess) -------------------------------------------------------------
def launch_child(t_spawn: float):
    """Internal: run ``python main.py`` (no arguments) and print when the window is painted."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtCore

    import app.main_window as mw
    import main as cli

    marks: dict = {"imports_done": time.monotonic() - t_spawn}

    def report():
        marks["painted"] = time.monotonic() - t_spawn
        win = marks.pop("_win", None)
        marks["launch_seconds_attr"] = getattr(win, "launch_seconds", None)
        sys.stdout.write(json.dumps(marks) + "\n")
        sys.stdout.flush()
        os._exit(0)  # the data-load worker may still run: no orderly shutdown needed here

    class FirstPaint(QtCore.QObject):
        def eventFilter(self, obj, ev):
            t = ev.type()
            if t == QtCore.QEvent.Show and "show_event" not in marks:
                marks["show_event"] = time.monotonic() - t_spawn
            elif t == QtCore.QEvent.Paint and "first_paint_start" not in marks:
                marks["first_paint_start"] = time.monotonic() - t_spawn
                QtCore.QTimer.singleShot(0, report)  # after this paint cycle completes
            return False

    orig_init = mw.MainWindow.__init__
    filt = FirstPaint()

    def init(self, *a, **kw):
        marks["window_init_start"] = time.monotonic() - t_spawn
        orig_init(self, *a, **kw)
        marks["window_init_end"] = time.monotonic() - t_spawn
        marks["_win"] = self
        self.installEventFilter(filt)

    mw.MainWindow.__init__ = init
    QtCore.QTimer.singleShot(30000, lambda: os._exit(3))  # never hang the parent
    sys.exit(cli.main([]))


def measure_launch(repeats: int) -> dict:
    runs = []
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    for _ in range(repeats):
        t0 = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, __file__, "--launch-child", repr(t0)],
                                  capture_output=True, text=True, cwd=ROOT, env=env,
                                  timeout=LAUNCH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            runs.append({"error": f"no window painted within {LAUNCH_TIMEOUT_S} s"})
            continue
        wall = time.monotonic() - t0
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            runs.append({"error": f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}"})
            continue
        r = json.loads(lines[-1])
        r["process_wall_s"] = wall
        runs.append(r)
    ok = [r["painted"] for r in runs if "painted" in r]
    return {"how": "spawn of `python` running main.main([]) (= python main.py) -> end of the "
                   "main window's first paint; CLOCK_MONOTONIC across processes",
            "median_s": statistics.median(ok) if ok else None, "runs": runs}


# --- phase 4: headless (subprocess) -----------------------------------------------------------
def cli_child(spec: dict):
    """Internal: the same config through the CLI's make_trainer, timed; JSON on stdout."""
    sys.path.insert(0, str(ROOT))
    import numpy  # noqa: F401  (threadpoolctl only limits a BLAS that is already loaded)

    if spec.get("blas_threads"):
        from core.blas import limit_blas_threads

        limit_blas_threads(int(spec["blas_threads"]))
    from cli.commands import make_trainer

    cfg = dict(spec["config"])
    cfg.pop("preset", None)
    t0 = time.perf_counter()
    trainer, _ = make_trainer(spec["data"], None, overrides=cfg, log=None)
    setup_s = time.perf_counter() - t0
    records, first = [], None
    stop_at = spec["warmup_s"] + spec["seconds"]
    blas_during = None
    for ev in trainer.events():
        if ev["type"] != "step":
            continue
        now = time.perf_counter()
        if first is None:
            first = now
            blas_during = blas_info()
        records.append((now - first, ev["step"], ev.get("images_per_s") or 0.0, ev["seconds"]))
        if now - first >= stop_at:
            trainer.cancel()
    out = throughput(records, trainer.config.batch_size, spec["warmup_s"])
    out.update({"setup_s": setup_s, "blas_during": blas_during,
                "config": trainer.config.to_dict(), "loadavg_end": loadavg()})
    sys.stdout.write(json.dumps(out) + "\n")


def measure_cli(name: str, spec: dict) -> dict:
    timeout = 120 + 2 * (spec["warmup_s"] + spec["seconds"])
    try:
        proc = subprocess.run([sys.executable, __file__, "--cli-child", json.dumps(spec)],
                              capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"{name}: no result within {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}"}
    out = json.loads(lines[-1])
    out["blas_threads_limit"] = spec.get("blas_threads")
    return out


# --- phases 2 and 3: the app in this process --------------------------------------------------
def worker_processes() -> list[int]:
    """This process's training worker processes (multiprocessing spawn children)."""
    from core.process_parallel import worker_processes as children

    return children()


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used, or 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rnnscope_segments() -> list[str]:
    """This process's shared-memory segments under /dev/shm (core.process_parallel names)."""
    from core.process_parallel import SEGMENT_PREFIX

    mine = f"{SEGMENT_PREFIX}{os.getpid()}_"
    shm = Path("/dev/shm")
    return sorted(p.name for p in shm.iterdir() if p.name.startswith(mine)) if shm.is_dir() \
        else []


def measure_app(args, seconds: float, warmup_s: float, all_cores: bool = False,
                idle: bool = True) -> dict:
    """The app phases: idle (if ``idle``) and training, with the Training menu's "Train on all
    cores" set to ``all_cores`` (the window has no QSettings: the user's are not touched)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from PySide6 import QtCore, QtTest, QtWidgets

    from app import gc_policy
    from app.main_window import MainWindow
    from core.blas import blas_threads

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    gc_policy.install(app)     # as run_app does: garbage is collected on the GUI thread only

    def wait_until(pred, timeout_s, what):
        end = time.perf_counter() + timeout_s
        while not pred():
            if time.perf_counter() > end:
                raise TimeoutError(f"gave up waiting for {what} after {timeout_s:.0f} s")
            app.processEvents(QtCore.QEventLoop.AllEvents, 20)
            time.sleep(0.005)

    def run_loop(s):
        loop = QtCore.QEventLoop()
        QtCore.QTimer.singleShot(int(1000 * s), loop.quit)
        loop.exec()

    class Recorder(QtCore.QObject):
        def __init__(self):
            super().__init__()
            self.timer = QtCore.QTimer(self)
            self.timer.setTimerType(QtCore.Qt.PreciseTimer)
            self.timer.setInterval(TIMER_MS)
            self.timer.timeout.connect(self.tick)
            self.ticks: list[float] = []
            self.cpu: list[float] = []   # GUI-thread CPU time at each tick (time.thread_time)
            self.wait: list[float] = []  # GUI-thread time spent runnable but not running
            self.steps: list[tuple] = []
            self.first_step = None
            self.traces = 0
            self.marks: list[tuple] = []   # (time, what) of GUI-thread handlers, for stalls

        def mark(self, what):
            self.marks.append((time.perf_counter(), what))

        @QtCore.Slot()
        def tick(self):
            self.ticks.append(time.perf_counter())
            self.cpu.append(time.thread_time())
            self.wait.append(runqueue_wait_s())

        @QtCore.Slot(list)
        def on_steps(self, events):
            now = time.perf_counter()
            if self.first_step is None:
                self.first_step = now
            self.mark(f"steps x{len(events)}")
            for ev in events:
                self.steps.append((now - self.first_step, ev["step"],
                                   ev.get("images_per_s") or 0.0, ev["seconds"]))

        @QtCore.Slot()
        def on_trace(self):
            self.traces += 1
            self.mark("trace shown")

        @QtCore.Slot(dict)
        def on_event(self, ev):
            self.mark(f"event {ev.get('type')}")

        @QtCore.Slot(dict)
        def on_snapshot(self, snap):
            self.mark("snapshot")

        def stalls(self, threshold_ms=50.0):
            """Intervals over the threshold, with the handlers that ended inside them (the app's
            own slots run first, so these marks follow the app's handling)."""
            t0 = self.ticks[0] if self.ticks else 0.0
            out = []
            for i in range(1, len(self.ticks)):
                a, b = self.ticks[i - 1], self.ticks[i]
                if 1000 * (b - a) > threshold_ms:
                    out.append({"at_s": round(a - t0, 3), "ms": round(1000 * (b - a), 1),
                                "gui_cpu_ms": round(1000 * (self.cpu[i] - self.cpu[i - 1]), 1),
                                "gui_runqueue_wait_ms": round(
                                    1000 * (self.wait[i] - self.wait[i - 1]), 1),
                                "handlers": [w for t, w in self.marks if a < t <= b]})
            return out

        def sample(self, s):
            self.ticks, self.cpu, self.wait, self.marks = [], [], [], []
            c0, p0, t0 = time.thread_time(), time.process_time(), time.perf_counter()
            w0 = runqueue_wait_s()
            self.timer.start()
            run_loop(s)
            self.timer.stop()
            t1 = time.perf_counter()
            wall = t1 - t0
            # the window's edges count: start -> first timeout is an interval, and the last
            # timeout -> end of window is a lower bound of one (a starved loop has few ticks)
            self.ticks = [t0, *self.ticks, t1]
            self.cpu = [c0, *self.cpu, time.thread_time()]
            self.wait = [w0, *self.wait, runqueue_wait_s()]
            out = interval_stats(self.ticks)
            out["gui_thread_cpu_fraction"] = (time.thread_time() - c0) / wall
            out["process_cpu_fraction"] = (time.process_time() - p0) / wall
            out["gui_thread_runqueue_wait_fraction"] = (runqueue_wait_s() - w0) / wall
            return out

    out: dict = {}
    t0 = time.perf_counter()
    w = MainWindow(data_spec=args.data)
    w.all_cores_action.setChecked(all_cores)
    out["all_cores"] = all_cores
    out["workers_setting"] = w.train_workers()
    w.show()
    rec = Recorder()
    label = "all cores" if all_cores else "1 process"

    def drive():
        w.traceShown.connect(rec.on_trace)
        wait_until(lambda: w.splits is not None, 120, "the data to load")
        out["data"] = w.splits.description
        mp = w.model_panel
        mp.model_combo.setCurrentIndex(mp.model_combo.findData("row-rnn"))
        mp.hidden_spin.setValue(HIDDEN)
        mp.batch_spin.setValue(BATCH)
        mp.epochs_spin.setValue(1000)   # never finishes inside the window: stopped by the benchmark
        traces = rec.traces
        try:  # the preview of the new form (300 ms debounce) and its trace, before sampling idle
            wait_until(lambda: rec.traces > traces, 20, "the preview trace")
        except TimeoutError as exc:
            out["preview_note"] = str(exc)
        run_loop(0.5)
        out["setup_s"] = time.perf_counter() - t0
        out["tab"] = w.tabs.tabText(w.tabs.currentIndex())
        out["blas_gui_thread_idle"] = blas_threads()
        out["loadavg_idle_start"] = loadavg()
        print(f"app ({label}): {out['data']}; tab '{out['tab']}'")
        if idle:
            out["idle"] = rec.sample(seconds)
            out["idle_stalls_over_50ms"] = rec.stalls()
            print(timer_line("idle    ", out["idle"]))

        cfg = mp.config()
        out["config"] = cfg.to_dict()
        button = w.findChild(QtWidgets.QPushButton, "trainButton")
        if button is None or not button.isEnabled():
            raise RuntimeError("the trainButton is missing or disabled")
        out["loadavg_train_start"] = loadavg()
        QtTest.QTest.mouseClick(button, QtCore.Qt.LeftButton)
        if not w.is_training():
            raise RuntimeError("clicking trainButton did not start training")
        w.train_worker.steps.connect(rec.on_steps)
        w.train_worker.event.connect(rec.on_event)
        w.train_worker.snapshot.connect(rec.on_snapshot)
        t_click = time.perf_counter()
        wait_until(lambda: rec.first_step is not None, 120, "the first training step")
        out["first_step_after_click_s"] = rec.first_step - t_click
        run_loop(max(0.0, warmup_s - (time.perf_counter() - rec.first_step)))
        out["blas_during_training"] = blas_threads()
        trainer = getattr(w.train_worker, "trainer", None)
        out["trainer_config"] = trainer.config.to_dict() if trainer is not None else None
        n_traces = rec.traces
        pids = worker_processes()
        out["worker_processes"] = len(pids)
        out["status_processes_label"] = w.processes_label.text().strip()
        cpu0 = {p: process_cpu_s(p) for p in pids}
        t_win = time.perf_counter() - rec.first_step
        out["training"] = rec.sample(seconds)
        span = time.perf_counter() - rec.first_step - t_win
        out["worker_processes_cpu_fraction"] = [
            round((process_cpu_s(p) - c) / span, 3) for p, c in cpu0.items()]
        out["traces_shown_while_training"] = rec.traces - n_traces
        out["training_stalls_over_50ms"] = rec.stalls()
        t_end = time.perf_counter() - rec.first_step
        out["loadavg_train_end"] = loadavg()
        tr = out["training"]
        print(timer_line(f"training ({label})", tr)
              + (f"; {len(pids)} worker processes, CPU "
                 f"{out['worker_processes_cpu_fraction']}" if pids else ""))
        in_window = [r for r in rec.steps if t_win <= r[0] <= t_end]
        out["throughput"] = throughput(in_window, cfg.batch_size, 0.0)
        out["throughput"]["step_batches_note"] = ("step events as received by the GUI thread "
                                                  "during the timer window")

    try:
        drive()
    finally:
        out["shutdown_ok"] = w.shutdown()
        w.close()
        w.deleteLater()
        app.processEvents()
        # the pool ends with the run: nothing may be left once the window has closed
        out["worker_processes_after_close"] = worker_processes()
        out["segments_after_close"] = rnnscope_segments()
    return out


# --- main ---------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="a few seconds per phase (to check the benchmark runs)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="sampling window of each phase (default 15, --quick 4)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="training seconds discarded before sampling (default 3, --quick 2)")
    ap.add_argument("--launch-repeats", type=int, default=None,
                    help="launch measurements (default 3, --quick 2)")
    ap.add_argument("--data", default="probe",
                    help="'probe' (built in, default) or a CIFAR-10 tarball/folder")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--launch-child", metavar="T0", help=argparse.SUPPRESS)
    ap.add_argument("--cli-child", metavar="JSON", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.launch_child:
        return launch_child(float(args.launch_child))
    if args.cli_child:
        return cli_child(json.loads(args.cli_child))
    seconds = args.seconds or (4.0 if args.quick else 15.0)
    warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 3.0)
    repeats = args.launch_repeats or (2 if args.quick else 3)
    if args.data != "probe":
        args.data = str(Path(args.data).expanduser().resolve())
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))

    import numpy as np
    import PySide6

    started = time.perf_counter()
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "load_before": load_average(), "cpu_count": os.cpu_count(),
              "machine": platform.processor() or platform.machine(),
              "python": platform.python_version(), "numpy": np.__version__,
              "pyside6": PySide6.__version__,
              "qt_qpa_platform": os.environ.get("QT_QPA_PLATFORM"),
              "targets": TARGETS,
              "settings": {"seconds": seconds, "warmup_s": warmup, "launch_repeats": repeats,
                           "timer_ms": TIMER_MS, "timer_type": "Qt.PreciseTimer",
                           "data": args.data, "model": "row-rnn", "hidden": HIDDEN,
                           "batch": BATCH, "quick": args.quick},
              "note": "the machine may be shared - see load_before / loadavg_* / load_after",
              "loadavg_phases": {}}
    result["busiest_processes_before"] = busiest_processes()
    print(f"load average before: {result['load_before']}")
    for p in result["busiest_processes_before"][:4]:
        print(f"  busy: pid {p['pid']} nice {p['nice']} {p['pcpu']:.0f}% {p['cmd'][:70]}")

    result["window_shown"] = launch = measure_launch(repeats)
    result["loadavg_phases"]["after_launch"] = loadavg()
    print(f"window shown: median {fmt(launch['median_s'], '.2f')} s after spawn "
          f"({', '.join(fmt(r.get('painted'), '.2f') for r in launch['runs'])})")

    # the app at 1 process (the default), then with "Train on all cores", in this process
    app_res = measure_app(args, seconds, warmup)
    result["app"] = app_res
    result["loadavg_phases"]["after_app"] = loadavg()
    result["app"]["threads"] = ("TrainWorker on its QThread; core.blas.limit_blas_threads(1) "
                                "in the worker (OpenBLAS limit is process-wide)")
    all_res = measure_app(args, seconds, warmup, all_cores=True, idle=False)
    result["app_all_cores"] = all_res
    result["loadavg_phases"]["after_app_all_cores"] = loadavg()
    result["app_all_cores"]["threads"] = (
        f"TrainWorker on its QThread driving {all_res['workers_setting']} worker processes "
        "(core.process_parallel, spawn, one BLAS thread each); the trainer's thread waits")
    apps = {"app": app_res, "app_all_cores": all_res}
    for name, r in apps.items():
        tp = r["throughput"]
        print(f"{name + ':':15s} {fmt(tp.get('step_images_per_s'))} images/s per step "
              f"(effective {fmt(tp.get('effective_images_per_s'))}), workers "
              f"{(r['trainer_config'] or {}).get('workers')}, BLAS threads during training "
              f"{r['blas_during_training']}; left after close: processes "
              f"{r['worker_processes_after_close']}, segments {r['segments_after_close']}")

    cfg = app_res["trainer_config"] or app_res["config"]
    base = {"data": args.data, "config": cfg, "warmup_s": warmup, "seconds": seconds}
    n_all = all_res["workers_setting"]
    variants = {   # the CLI at each app setting; cli_all_cores is also the CLI's default
        "cli_same_run": {**base, "config": {**cfg, "workers": 1}, "blas_threads": 1},
        "cli_all_cores": {**base, "config": {**cfg, "workers": n_all}, "blas_threads": 1}}
    cli = {}
    for name, spec in variants.items():
        cli[name] = r = measure_cli(name, spec)
        result["loadavg_phases"][f"after_{name}"] = loadavg()
        if "error" in r:
            print(f"{name}: failed: {r['error']}")
            continue
        threads = [b.get("num_threads") for b in r.get("blas_during") or []]
        print(f"{name + ':':15s} {fmt(r.get('step_images_per_s'))} images/s per step "
              f"(effective {fmt(r.get('effective_images_per_s'))}), BLAS threads {threads}"
              + f", workers {r['config'].get('workers')}")
    result["cli"] = cli
    from core.threads import default_workers

    result["cli_default_workers"] = default_workers()

    ratios = {}
    pairs = [("app", "cli_same_run"), ("app_all_cores", "cli_all_cores"),
             ("app_all_cores", "app"), ("cli_all_cores", "cli_same_run")]
    sides = {**{k: v["throughput"] for k, v in apps.items()}, **cli}
    for a_name, b_name in pairs:
        for key in ("step_images_per_s", "effective_images_per_s"):
            a, b = sides[a_name].get(key), sides[b_name].get(key)
            if a and b:
                ratios[f"{a_name}/{b_name} ({key})"] = a / b
    result["ratios"] = ratios
    for k, v in ratios.items():
        print(f"ratio {k}: {v:.2f}")

    idle = app_res["idle"]
    ref = ratios.get("app/cli_same_run (step_images_per_s)")
    result["targets_met"] = {
        "window_shown_s": launch["median_s"] is not None
        and launch["median_s"] < TARGETS["window_shown_s"],
        "throughput_ratio_vs_same_run": ref is not None and ref >= TARGETS["throughput_ratio"],
    }
    for name, r in apps.items():
        tr = r["training"]
        result["targets_met"][f"{name}_training_p99_ms"] = (
            tr.get("p99_ms", 1e9) < TARGETS["training_p99_ms"])
        result["targets_met"][f"{name}_training_max_ms"] = (
            tr.get("max_ms", 1e9) < TARGETS["training_max_ms"])
    ref_all = ratios.get("app_all_cores/cli_all_cores (step_images_per_s)")
    result["targets_met"]["app_all_cores_throughput_ratio_vs_cli_all_cores"] = (
        ref_all is not None and ref_all >= TARGETS["throughput_ratio"])
    result["summary"] = {
        "window_shown_median_s": launch["median_s"],
        "idle_ms": {k: idle.get(k) for k in ("p50_ms", "p99_ms", "max_ms")},
        "training_ms": {name: {k: r["training"].get(k) for k in ("p50_ms", "p99_ms", "max_ms")}
                        for name, r in apps.items()},
        "gui_thread_runqueue_wait_fraction": {
            "idle": idle.get("gui_thread_runqueue_wait_fraction"),
            **{name: r["training"].get("gui_thread_runqueue_wait_fraction")
               for name, r in apps.items()}},
        "workers": {name: (r["trainer_config"] or {}).get("workers") for name, r in apps.items()},
        "app_step_images_per_s": {name: r["throughput"].get("step_images_per_s")
                                  for name, r in apps.items()},
        "cli_step_images_per_s": {k: v.get("step_images_per_s") for k, v in cli.items()},
        "ratios_step": {k: v for k, v in ratios.items() if "step_images" in k},
        "left_after_close": {name: {"processes": r["worker_processes_after_close"],
                                    "segments": r["segments_after_close"]}
                             for name, r in apps.items()},
    }
    result["load_after"] = load_average()
    result["busiest_processes_after"] = busiest_processes()
    result["wall_s"] = time.perf_counter() - started
    print(f"targets met: {result['targets_met']}")
    print(f"load average after: {result['load_after']}  (wall {result['wall_s']:.0f} s)")
    write_json(result, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
