"""The memory bench: how far back can each cell remember?

Letters: N = images, T = 32 timesteps (image rows read by the row-RNN), D = 96 input values
per row, H = hidden units, K = 10 classes, G = gate blocks of a cell (rnn 1, gru 3, lstm 4).

One run trains a row-RNN with one cell variant on the memory-probe task (core.probe) with its
cue at one distance, through ``core.trainer.Trainer``, and measures it. The distance d is the
number of steps from the last cue row to the last row read: with the band on 0-based rows
cue_row .. cue_row + h - 1 (h = cue height) and the last row 31, d = 32 - h - cue_row, so
for h = 4 the cue rows 25-28 (1-based) are d = 4 and rows 1-4 are d = 28; d runs 0..32 - h.

Cell variants are written ``cell[:option[:option]]``: the cell is any name in
``core.cells.CELLS``; an option is an activation (``core.names.ACTIVATIONS``, the vanilla cell
only) or a recurrent init (``core.names.INITS``), in either order. The vanilla cell's missing
options come from the bench's ``activation`` / ``init`` (tanh / xavier); a gated cell keeps
the model default init (xavier) unless its spec names one. Labels: 'rnn-tanh-xavier',
'rnn-relu-identity' (IRNN), 'lstm', 'lstm-orthogonal'.

Every run is independent and deterministic for its (variant, distance, seed): the data (the
probe images of that seed with the cue at that distance), the initial parameters and the
batch order all come from the seed, and each run computes on one BLAS thread, whether in this
process or in a worker process. ``run_bench`` spreads the runs over ``workers`` processes
('spawn'), reports progress as plain dicts and stops within one training step when asked.

Result of one run (``run_one``), all plain JSON-able values:
    cell, variant, activation, init, hidden, lr, distance, seed, cue_row (0-based),
    test_acc, val_acc (fractions 0..1, of the best-val parameters the trainer restored),
    g_first_over_last = g_1 / g_T with g_t = mean over test images of ||dl_i/dh_t|| (T,),
    dh_norm (T,) that profile, dc_norm (T,) the same for the cell state (LSTM; else None),
    cue_mass: share of the row connectivity (core.connectivity) on the cue rows, averaged over
    test images for their true class, and connectivity_rows (T,) the mean normalised profile,
    params (count), epochs (done, float), steps, seconds (wall time of the whole run),
    diverged (bool), finish (the trainer's reason), message.

With ``keep_params=True`` (in-process use such as the app, never memory.json) a result also
holds 'trained': {'model_config': model.config, 'params': {name: array copy} of the restored
parameters, 'normalizer': Normalizer.to_dict(), 'train_config': TrainConfig.to_dict(),
'probe_params': the probe task's options, 'seed': the data seed}, enough to rebuild the model
(core.models.build_model) and its probe data (core.datasets.load_data('probe', ...)).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import numbers
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from core.errors import ConfigError, RnnscopeError
from core.names import ACTIVATIONS, INITS, TIMESTEPS

ROWS = TIMESTEPS["row-rnn"]     # the row-RNN reads the 32 image rows
INPUT_DIM = 96                  # 32 pixels x 3 channels per row
NUM_CLASSES = 10
CHANCE = 1.0 / NUM_CLASSES
BENCH_DISTANCES = (4, 8, 12, 16, 20, 24, 28)
BENCH_SEEDS = 3
BENCH_HIDDEN = 64
BENCH_EPOCHS = 10
BENCH_BATCH = 64
BENCH_SIZES = {"n_train": 2000, "n_val": 500, "n_test": 500}
# Adam learning rates per cell for this task with the defaults above; the vanilla cell with
# ReLU (IRNN: unbounded states) takes a lower one than with tanh.
BENCH_LR = {"rnn": 2e-3, "lstm": 3e-3, "gru": 3e-3}
BENCH_RELU_LR = 5e-4
FALLBACK_LR = 2e-3              # a registered cell with no entry above
GRADIENT_IMAGES = 200           # test images for the dh / dc profile and the connectivity
MATCHES = ("hidden", "params")
STEP_REPORT_SECONDS = 0.2       # a worker reports a run's progress at most this often


class BenchError(RnnscopeError):
    """A bench worker process died, or a run failed in a way the bench cannot record."""


# -- cell variants ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One cell variant of the bench: a registered cell plus its options."""

    cell: str
    activation: str
    init: str
    label: str

    @property
    def spec(self) -> str:
        return f"{self.cell}:{self.activation}:{self.init}" if self.cell == "rnn" else (
            self.cell if self.init == "xavier" else f"{self.cell}:{self.init}")


def registered_cells() -> list[str]:
    from core.cells import CELLS

    return list(CELLS)


def parse_variant(text: str, activation: str = "tanh", init: str = "xavier") -> Variant:
    """'rnn', 'rnn:relu:identity', 'lstm:orthogonal', ... -> Variant (module docstring)."""
    parts = [p.strip() for p in str(text).strip().split(":")]
    cell, options = parts[0].lower(), [p.lower() for p in parts[1:]]
    cells = registered_cells()
    if cell not in cells:
        raise ConfigError(f"--cells: unknown cell {cell!r} in {text!r}; registered cells: "
                          f"{', '.join(cells)}")
    act = ini = None
    for opt in options:
        if opt in ACTIVATIONS and act is None:
            act = opt
        elif opt in INITS and ini is None:
            ini = opt
        else:
            raise ConfigError(f"--cells: {text!r}: {opt!r} is not an activation "
                              f"({', '.join(ACTIVATIONS)}) or an init ({', '.join(INITS)}), "
                              "or it is given twice")
    if cell == "rnn":
        act, ini = act or activation, ini or init
        return Variant(cell, act, ini, f"rnn-{act}-{ini}")
    if act is not None:
        raise ConfigError(f"--cells: {text!r}: the activation option is the vanilla cell's; "
                          f"{cell} has its own gate nonlinearities")
    ini = ini or "xavier"
    return Variant(cell, "tanh", ini, cell if ini == "xavier" else f"{cell}-{ini}")


def parse_variants(specs, activation: str = "tanh", init: str = "xavier") -> list[Variant]:
    """A list (or comma-separated text) of variant specs -> Variants, duplicates refused."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(",")]
    specs = [s for s in (str(s).strip() for s in specs)]
    if not specs or any(not s for s in specs):
        raise ConfigError("--cells: give a comma-separated list of cells, e.g. rnn,lstm,gru "
                          "(no empty entries)")
    out = [parse_variant(s, activation, init) for s in specs]
    labels = [v.label for v in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ConfigError(f"--cells: {', '.join(dup)} is listed twice")
    return out


# -- sizes ---------------------------------------------------------------------------------------
def param_count(cell: str, hidden: int, input_dim: int = INPUT_DIM,
                num_classes: int = NUM_CLASSES) -> int:
    """Parameters of a row-RNN with this cell: W_xh (D, G*H) + W_hh (H, G*H) + b_h (G*H,)
    + W_hq (H, K) + b_q (K,), G = the cell's gate blocks."""
    from core.cells import get_cell

    G, H = len(get_cell(cell).blocks), int(hidden)
    return input_dim * G * H + H * G * H + G * H + H * num_classes + num_classes


def hidden_for_params(cell: str, budget: int, input_dim: int = INPUT_DIM,
                      num_classes: int = NUM_CLASSES) -> int:
    """The hidden size H >= 1 whose ``param_count`` is closest to ``budget`` (ties: smaller)."""
    from core.cells import get_cell

    G, K = len(get_cell(cell).blocks), num_classes
    a, b, c = G, input_dim * G + G + K, K - budget  # a H^2 + b H + c = 0
    root = (-b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    return min(sorted(candidates),
               key=lambda h: abs(param_count(cell, h, input_dim, num_classes) - budget))


def default_lr(variant: Variant) -> float:
    if variant.cell == "rnn" and variant.activation == "relu":
        return BENCH_RELU_LR
    return BENCH_LR.get(variant.cell, FALLBACK_LR)


def parse_lr(items) -> dict[str, float]:
    """['lstm=3e-3', 'rnn:relu:identity=1e-4'] (or one comma-separated text) -> {key: lr}.
    A key is a cell name (all its variants) or one variant (its spec or label)."""
    if items is None:
        return {}
    if isinstance(items, str):
        items = [items]
    out = {}
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            try:
                lr = float(value)
            except ValueError:
                lr = math.nan
            if not sep or not key.strip() or not math.isfinite(lr) or lr <= 0:
                raise ConfigError(f"--lr {part!r}: write CELL=RATE with a rate > 0, e.g. "
                                  "--lr lstm=3e-3 or --lr rnn:relu:identity=1e-4")
            out[key.strip().lower()] = lr
    return out


# -- the bench's configuration -------------------------------------------------------------------
@dataclass
class BenchConfig:
    """Every choice of a bench. cells: variant specs (empty = every registered cell).
    match 'hidden': every variant has ``hidden`` units; 'params': the first variant has
    ``hidden`` units and every other one the hidden size whose parameter count is closest to
    its count. lr: {cell name or variant spec/label: learning rate} over ``default_lr``.
    Seeds are 0..seeds-1."""

    cells: tuple[str, ...] = ()
    distances: tuple[int, ...] = BENCH_DISTANCES
    seeds: int = BENCH_SEEDS
    hidden: int = BENCH_HIDDEN
    match: str = "hidden"
    epochs: int = BENCH_EPOCHS
    cue_height: int = 4
    noise: float = 0.5
    activation: str = "tanh"
    init: str = "xavier"
    lr: dict = field(default_factory=dict)
    batch_size: int = BENCH_BATCH
    n_train: int = BENCH_SIZES["n_train"]
    n_val: int = BENCH_SIZES["n_val"]
    n_test: int = BENCH_SIZES["n_test"]
    gradient_images: int = GRADIENT_IMAGES

    def validate(self) -> BenchConfig:
        """Raise ConfigError (one line, naming the option) on a bad value; return self."""
        def integer(v):
            return isinstance(v, numbers.Integral) and not isinstance(v, bool)

        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"--activation {self.activation!r}: use one of "
                              f"{', '.join(ACTIVATIONS)}")
        if self.init not in INITS:
            raise ConfigError(f"--init {self.init!r}: use one of {', '.join(INITS)}")
        if self.match not in MATCHES:
            raise ConfigError(f"--match {self.match!r}: use hidden or params")
        for name, value, low, high in (("--hidden", self.hidden, 1, 4096),
                                       ("--epochs", self.epochs, 1, 10_000),
                                       ("--seeds", self.seeds, 1, 1000),
                                       ("--batch-size", self.batch_size, 1, 65536),
                                       ("--cue-height", self.cue_height, 1, ROWS - 1)):
            if not (integer(value) and low <= value <= high):
                raise ConfigError(f"{name} {value!r}: give a whole number from {low} to {high}")
        for name in ("n_train", "n_val", "n_test", "gradient_images"):
            value = getattr(self, name)
            if not (integer(value) and value >= 1):
                raise ConfigError(f"{name} {value!r}: give a whole number of images >= 1")
        noise = self.noise
        if not (isinstance(noise, (int, float)) and not isinstance(noise, bool)
                and 0.0 <= float(noise) <= 1.0):
            raise ConfigError(f"--noise {noise!r}: give a noise level in [0, 1]")
        top = ROWS - self.cue_height
        ds = list(self.distances)
        if not ds or not all(integer(d) and 0 <= d <= top for d in ds):
            raise ConfigError(f"--distances {','.join(map(str, ds)) or '(none)'}: give "
                              f"distances from 0 to {top} (32 rows minus the cue height "
                              f"{self.cue_height})")
        if len(set(ds)) != len(ds):
            raise ConfigError(f"--distances {','.join(map(str, ds))}: a distance is listed twice")
        for key, value in self.lr.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"--lr {key}={value!r}: the learning rate must be > 0")
        variants = self.variants_only()
        from core.config import TrainConfig

        for v in variants:  # the model's own rules for each cell's options
            TrainConfig(model="row-rnn", cell=v.cell, activation=v.activation,
                        init=v.init).validate()
        known = {v.cell for v in variants} | {v.label for v in variants} | {
            v.spec for v in variants}
        for key in self.lr:
            if key not in known and _spec_label(key, self) not in known:
                raise ConfigError(f"--lr {key}=...: {key!r} is none of the benched cells "
                                  f"({', '.join(v.label for v in variants)})")
        return self

    def variants_only(self) -> list[Variant]:
        specs = self.cells or tuple(registered_cells())
        return parse_variants(list(specs), self.activation, self.init)

    def variants(self) -> list[dict]:
        """Each variant with its hidden size, parameter count and learning rate (plain dicts,
        in the order given)."""
        vs = self.variants_only()
        hidden = [self.hidden] * len(vs)
        if self.match == "params":
            budget = param_count(vs[0].cell, self.hidden)
            hidden = [self.hidden] + [hidden_for_params(v.cell, budget) for v in vs[1:]]
        out = []
        for v, h in zip(vs, hidden, strict=True):
            out.append({"label": v.label, "cell": v.cell, "activation": v.activation,
                        "init": v.init, "hidden": int(h), "params": param_count(v.cell, h),
                        "lr": self._lr_of(v)})
        return out

    def _lr_of(self, v: Variant) -> float:
        for key in (v.label, v.spec):
            if key in self.lr:
                return float(self.lr[key])
        for key, value in self.lr.items():
            if _spec_label(key, self) == v.label:
                return float(value)
        return float(self.lr.get(v.cell, default_lr(v)))

    def runs(self) -> list[dict]:
        """One plain spec per (variant, distance, seed), in that nesting order."""
        out = []
        for v in self.variants():
            for d in self.distances:
                for s in range(self.seeds):
                    out.append({**v, "distance": int(d), "seed": int(s),
                                "cue_row": ROWS - self.cue_height - int(d),
                                "cue_height": int(self.cue_height), "noise": float(self.noise),
                                "epochs": int(self.epochs), "batch_size": int(self.batch_size),
                                "n_train": int(self.n_train), "n_val": int(self.n_val),
                                "n_test": int(self.n_test),
                                "gradient_images": int(self.gradient_images)})
        return out

    def settings(self) -> dict:
        """The configuration as written into memory.json."""
        d = asdict(self)
        d["cells"] = [v.label for v in self.variants_only()]
        d["distances"] = [int(x) for x in self.distances]
        return d


def _spec_label(key: str, config: BenchConfig) -> str | None:
    """The label of a --lr key written as a variant spec (None if it is not one)."""
    try:
        return parse_variant(key, config.activation, config.init).label
    except ConfigError:
        return None


# -- one run -------------------------------------------------------------------------------------
def gradient_profile(model, X, y) -> dict:
    """dl_i/dh_t (and dl_i/dc_t where the cell has a cell state) of each image's own loss,
    full BPTT -> {'dh_norm': (T,) mean over images of ||dl_i/dh_t||, 'dc_norm': (T,) or None}.

    X model input (N, T, D), y int (N,)."""
    import numpy as np

    from core.layers import softmax

    scores = model.scores(X)
    dscores = softmax(np.asarray(scores, dtype=np.float64))
    dscores[np.arange(len(y)), np.asarray(y)] -= 1.0  # d l_i / d scores_i, per image
    g = model.input_gradient(X, dscores.astype(model.dtype))["cell"]

    def mean_norm(a):  # (T, N, H) -> (T,)
        a = np.asarray(a, dtype=np.float64)
        return np.sqrt(np.einsum("tnh,tnh->tn", a, a)).mean(axis=1)

    dc = g.extra.get("dc") if isinstance(g.extra, dict) else None
    return {"dh_norm": mean_norm(g.dh), "dc_norm": None if dc is None else mean_norm(dc)}


def _ratio(a: float, b: float) -> float | None:
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return None
    return float(a / b)


def run_one(spec: dict, on_step: Callable[[int, int, float, float | None], None] | None = None,
            should_stop: Callable[[], bool] | None = None, keep_params: bool = False) -> dict:
    """Train and measure one run (a dict from ``BenchConfig.runs``) -> its result dict
    (module docstring), or ``{'cancelled': True, ...}`` when ``should_stop()`` became true.

    on_step(step, total_steps, loss, batch accuracy) after every training step; should_stop is
    checked after every step and between evaluation batches (the run then ends before its next
    step). Runs on whatever BLAS threads the caller set (``run_bench`` sets one).
    keep_params: add the 'trained' entry (module docstring)."""
    import numpy as np

    from core.config import TrainConfig
    from core.connectivity import cue_band_summary
    from core.datasets import load_data
    from core.trainer import Trainer

    t0 = time.perf_counter()
    probe = {"n_train": spec["n_train"], "n_val": spec["n_val"], "n_test": spec["n_test"],
             "cue_row": spec["cue_row"], "cue_height": spec["cue_height"],
             "noise": spec["noise"], "seed": spec["seed"]}
    splits = load_data("probe", probe_params=probe, seed=spec["seed"])
    config = TrainConfig(model="row-rnn", cell=spec["cell"], hidden=spec["hidden"],
                         activation=spec["activation"], init=spec["init"], optimizer="adam",
                         lr=spec["lr"], clip="norm", clip_threshold=5.0,
                         batch_size=spec["batch_size"], epochs=spec["epochs"],
                         schedule="constant", seed=spec["seed"], workers=1)
    trainer = None

    def listener(ev):
        if ev["type"] == "step":
            if on_step is not None:
                on_step(ev["step"], total, ev["loss"], ev.get("acc"))
            if should_stop is not None and should_stop():
                trainer.cancel()
        elif ev["type"] == "eval" and should_stop is not None and should_stop():
            trainer.cancel()

    trainer = Trainer(config, splits, listener=listener)
    total = spec["epochs"] * trainer.steps_per_epoch
    if should_stop is not None and should_stop():
        trainer.cancel()
    finished = trainer.run()
    key = {k: spec[k] for k in ("label", "cell", "distance", "seed")}
    if finished["reason"] == "cancelled":
        return {**key, "cancelled": True}
    model, norm, test = trainer.model, trainer.normalizer, splits.test
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        test_acc = trainer.evaluate("test")["acc"]
        val_acc = trainer.evaluate("val")["acc"]
        n = min(spec["gradient_images"], len(test.labels))
        X = model.input_from_images(norm.apply(test.images[:n], dtype=model.dtype))
        prof = gradient_profile(model, X, test.labels[:n])
        conn = cue_band_summary(model, norm, test, spec["cue_row"], spec["cue_height"],
                                max_images=n)
    dh = prof["dh_norm"]
    result = {
        "cell": spec["cell"], "variant": spec["label"], "activation": spec["activation"],
        "init": spec["init"], "hidden": spec["hidden"], "lr": spec["lr"],
        "distance": spec["distance"], "seed": spec["seed"], "cue_row": spec["cue_row"],
        "test_acc": test_acc, "val_acc": val_acc,
        "g_first_over_last": _ratio(float(dh[0]), float(dh[-1])),
        "dh_norm": [float(v) for v in dh],
        "dc_norm": None if prof["dc_norm"] is None else [float(v) for v in prof["dc_norm"]],
        "cue_mass": conn["inside"], "connectivity_rows": conn["rows"],
        "params": int(sum(p.size for p in model.params.values())),
        "epochs": float(trainer.epoch), "steps": int(trainer.step),
        "seconds": time.perf_counter() - t0,
        "diverged": finished["reason"] == "diverged", "finish": finished["reason"],
        "message": finished["message"],
    }
    if keep_params:
        result["trained"] = {
            "model_config": dict(model.config),
            "params": {k: np.array(v, copy=True) for k, v in model.params.items()},
            "normalizer": norm.to_dict(), "train_config": config.to_dict(),
            "probe_params": probe, "seed": int(spec["seed"])}
    return result


# -- worker processes ----------------------------------------------------------------------------
_queue = None   # in a worker: the progress queue to the parent
_stop = None    # in a worker: the parent's stop event


def _worker_init(queue, stop) -> None:
    """Each worker process: ignore Ctrl-C (the parent decides how to stop), one BLAS thread."""
    global _queue, _stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _queue, _stop = queue, stop
    queue.cancel_join_thread()  # progress lines may be dropped at exit; the parent never waits
    import numpy  # noqa: F401  (loads BLAS first: a limit set before that would not stick)

    from core.blas import limit_blas_threads

    limit_blas_threads(1)


def _worker_run(run_id: int, spec: dict, keep_params: bool = False) -> tuple[int, dict]:
    last = [0.0]

    def on_step(step, total, loss, acc):
        now = time.monotonic()
        if now - last[0] >= STEP_REPORT_SECONDS or step >= total:
            last[0] = now
            _queue.put(("step", run_id, step, total, loss, acc))

    _queue.put(("start", run_id))
    return run_id, run_one(spec, on_step=on_step, should_stop=_stop.is_set,
                           keep_params=keep_params)


@contextmanager
def _sigint_blocked():
    """SIGINT blocked in this thread while worker processes start: a child begins with it
    blocked (the mask survives the exec of 'spawn') until its initializer ignores it."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def default_workers() -> int:
    from core.threads import default_workers as cores

    return cores(cap=64)


def run_bench(config: BenchConfig, workers: int | None = None,
              progress: Callable[[dict], None] | None = None,
              should_stop: Callable[[], bool] | None = None,
              keep_params: bool = False) -> dict:
    """Run every (variant, distance, seed) of ``config`` -> the memory.json dict.

    workers: processes (None = the machine's cores); 1 runs in this process (on one BLAS
    thread, restored afterwards), e.g. on the app's worker thread. progress(event) gets plain
    dicts: {'type': 'bench_start', 'runs', 'workers', 'variants'}, {'type': 'run_start',
    'run', 'label', 'distance', 'seed'}, {'type': 'run_step', 'run', 'step', 'total_steps',
    'loss', 'acc'} (throttled), {'type': 'run_done', 'run', 'result'} in the order runs finish.
    should_stop() is polled (in this process) between steps: once true, no new run starts,
    the running ones end before their next step, and the result has 'complete': False.
    Results are sorted by (variant order, distance, seed) whatever order they finished in.
    keep_params: every result keeps its trained model ('trained', module docstring; arrays,
    so the document is then no longer JSON: for in-process use such as the app).
    """
    config.validate()
    runs = config.runs()
    variants = config.variants()
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ConfigError(f"--workers {workers}: give 1 or more processes")
    workers = min(workers, len(runs))
    emit = progress or (lambda ev: None)
    stop = should_stop or (lambda: False)
    emit({"type": "bench_start", "runs": len(runs), "workers": workers,
          "variants": variants})
    t0 = time.perf_counter()
    results: dict[int, dict] = {}
    if workers == 1:
        stopped = _run_here(runs, results, emit, stop, keep_params)
    else:
        stopped = _run_in_processes(runs, results, workers, emit, stop, keep_params)
    ordered = [results[i] for i in sorted(results)]
    return bench_document(config, variants, ordered, complete=not stopped and len(
        ordered) == len(runs), seconds=time.perf_counter() - t0, workers=workers)


def _done(run_id, result, results, emit) -> None:
    if result.get("cancelled"):
        return
    results[run_id] = result
    emit({"type": "run_done", "run": run_id, "result": result})


def _run_here(runs, results, emit, stop, keep_params=False) -> bool:
    from core.blas import limit_blas_threads

    with limit_blas_threads(1):
        for i, spec in enumerate(runs):
            if stop():
                return True
            emit({"type": "run_start", "run": i, "label": spec["label"],
                  "distance": spec["distance"], "seed": spec["seed"]})

            def on_step(step, total, loss, acc, i=i):
                emit({"type": "run_step", "run": i, "step": step, "total_steps": total,
                      "loss": loss, "acc": acc})

            _done(i, run_one(spec, on_step=on_step, should_stop=stop, keep_params=keep_params),
                  results, emit)
    return stop()


def _cost(spec: dict) -> float:
    """Relative cost of a run, to start the longest first (balances the processes)."""
    from core.cells import get_cell

    G, H = len(get_cell(spec["cell"]).blocks), spec["hidden"]
    return G * H * (INPUT_DIM + H)


def _run_in_processes(runs, results, workers, emit, stop, keep_params=False) -> bool:
    ctx = mp.get_context("spawn")
    queue, stop_event = ctx.Queue(), ctx.Event()
    order = sorted(range(len(runs)), key=lambda i: -_cost(runs[i]))
    stopped = False
    with _sigint_blocked():
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                   initializer=_worker_init, initargs=(queue, stop_event))
        futures = {pool.submit(_worker_run, i, runs[i], keep_params): i for i in order}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            _drain(queue, runs, emit)
            for f in done:
                if f.cancelled():
                    continue
                try:
                    run_id, result = f.result()
                except BrokenProcessPool:
                    raise BenchError("a bench worker process died (killed, or out of "
                                     "memory); run with fewer --workers") from None
                _done(run_id, result, results, emit)
            if not stopped and stop():
                stopped = True
                stop_event.set()
                for f in pending:
                    f.cancel()
        _drain(queue, runs, emit)
    finally:
        stop_event.set()  # the running runs end before their next step
        pool.shutdown(wait=True, cancel_futures=True)
        queue.close()
    return stopped


def _drain(queue, runs, emit) -> None:
    import queue as queue_module

    while True:
        try:
            msg = queue.get_nowait()
        except (queue_module.Empty, OSError, ValueError):
            return
        if msg[0] == "start":
            spec = runs[msg[1]]
            emit({"type": "run_start", "run": msg[1], "label": spec["label"],
                  "distance": spec["distance"], "seed": spec["seed"]})
        elif msg[0] == "step":
            _, run_id, step, total, loss, acc = msg
            emit({"type": "run_step", "run": run_id, "step": step, "total_steps": total,
                  "loss": loss, "acc": acc})


# -- the document --------------------------------------------------------------------------------
def connectivity_summary(results: list[dict], labels: list[str]) -> dict:
    """{label: {str(distance): {'cue_mass_mean', 'cue_mass_min', 'cue_mass_max', 'runs'}}}:
    the share of the row connectivity on the cue rows over seeds (``cue_mass`` per run)."""
    import numpy as np

    out: dict = {}
    for label in labels:
        by_d: dict = {}
        for r in results:
            if r["variant"] == label and r.get("cue_mass") is not None:
                by_d.setdefault(int(r["distance"]), []).append(float(r["cue_mass"]))
        out[label] = {str(d): {"cue_mass_mean": float(np.mean(v)), "cue_mass_min": min(v),
                               "cue_mass_max": max(v), "runs": len(v)}
                      for d, v in sorted(by_d.items())}
    return out


def bench_document(config: BenchConfig, variants: list[dict], results: list[dict], *,
                   complete: bool, seconds: float, workers: int) -> dict:
    """The memory.json content: {'cells', 'distances', 'seeds', 'results'} as the issue
    specifies, plus 'variants' (label, cell, activation, init, hidden, params, lr per
    variant), 'connectivity' (``connectivity_summary``), 'chance', 'cue_height' and 'uniform_mass'
    (the cue-band share if every row counted alike), 'settings', 'complete', 'seconds',
    'workers'."""
    labels = [v["label"] for v in variants]
    return {
        "cells": labels,
        "distances": [int(d) for d in config.distances],
        "seeds": int(config.seeds),
        "results": results,
        "variants": variants,
        "connectivity": connectivity_summary(results, labels),
        "chance": CHANCE,
        "cue_height": int(config.cue_height),
        "uniform_mass": config.cue_height / ROWS,
        "settings": config.settings(),
        "complete": bool(complete),
        "seconds": float(seconds),
        "workers": int(workers),
    }


def accuracy_table(doc: dict) -> list[list]:
    """Rows [label, mean test accuracy at each distance (None where no run finished)]."""
    import numpy as np

    rows = []
    for label in doc["cells"]:
        row = [label]
        for d in doc["distances"]:
            accs = [r["test_acc"] for r in doc["results"]
                    if r["variant"] == label and r["distance"] == d and r["test_acc"] is not None]
            row.append(float(np.mean(accs)) if accs else None)
        rows.append(row)
    return rows
