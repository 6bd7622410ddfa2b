"""Engine benchmark: training-step throughput of RowRNN and CNNRNN, matmul peak, memory.

Run from the repository root:

    python bench/bench_engine.py           # full run (~2 min) -> bench/results/bench_engine.json
    python bench/bench_engine.py --quick   # fewer repetitions
    python bench/bench_engine.py --quick --threads 1 --models row-lstm row-gru cnn-rnn-positions

A step is forward + backward (``model.loss``) + a plain SGD update ``p -= lr * g``, float32,
random inputs (speed does not depend on the data). Figures are medians over repetitions after
warm-up, at 2 and at 1 BLAS thread (threadpoolctl). The float32 matmul rate (1024^3 sgemm) is
measured in the same run so the fraction of peak is visible. The models (``MODELS``): the
row-RNN (T=32, D=96, H=256, B=128) with the vanilla, LSTM and GRU cells; the CNN+RNN (64, 64
channels, H=128, B=256) reading 8 map rows and reading 64 map positions. Nominal work per
image: the recurrent part 6 (D + H) G H T flop (forward and backward matmuls, G gate blocks),
17.3 MFLOP for the vanilla row-RNN, 69 LSTM, 52 GRU; the CNN+RNN ~68 MFLOP over rows (mostly
convolutions), ~73 over positions. If PyTorch is importable, the equivalent PyTorch models
(nn.RNN / nn.LSTM / nn.GRU, nn.Conv2d, torch.optim.SGD) are timed in the same run, each in a
fresh subprocess, and the ratio printed; rnnscope never depends on it.
At more than one thread three engine variants are timed too: the recurrent loops alone on one
BLAS thread (``set_loop_blas_threads(1)``); for the CNN+RNN, the conv chunks on Python worker
threads (``set_conv_workers(n)``); and the batch split over n threads with one BLAS thread
each (``core.batch_parallel``, what ``train --workers n`` runs; the issue's targets apply).
Peak memory of one CNN+RNN step at B=256 is measured in a fresh subprocess (VmHWM, Linux) and
with tracemalloc (NumPy arrays only).

Timings on a machine shared with other work are noisy: the JSON records ``uptime`` before and
after so a reader can judge. At one thread, images per CPU-second (``images_per_cpu_s``, from
process time) estimates what an idle machine would give; at more threads it counts the BLAS
threads' spinning too and means little.
"""

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_util import blas_info, blas_summary, finish, load_average, timed_calls  # noqa: E402
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.batch_parallel import parallel_loss  # noqa: E402
from core.blas import set_loop_blas_threads  # noqa: E402
from core.conv import set_conv_workers  # noqa: E402
from core.models import CNNRNN, RowRNN  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bench_engine.json"
LR = 1e-3


def rnn_mflop(T, D, H, G):
    """Nominal MFLOP per image of a recurrent layer's training step: the forward's x W_xh and
    h W_hh and the backward's two input and two weight gradients, 3 x 2 (D + H) G H per step."""
    return 6 * (D + H) * G * H * T / 1e6


CNN_MFLOP = 68.0  # CNN+RNN over 8 map rows; its recurrent part is rnn_mflop(8, 512, 128, 1)
CONV_MFLOP = CNN_MFLOP - rnn_mflop(8, 512, 128, 1)
# name -> model kind, constructor options, batch, nominal MFLOP per image, repetition group
MODELS = {
    "row-rnn": ("row-rnn", {}, 128, rnn_mflop(32, 96, 256, 1), "row"),
    "row-lstm": ("row-rnn", {"cell": "lstm"}, 128, rnn_mflop(32, 96, 256, 4), "row"),
    "row-gru": ("row-rnn", {"cell": "gru"}, 128, rnn_mflop(32, 96, 256, 3), "row"),
    "cnn-rnn": ("cnn-rnn", {}, 256, CNN_MFLOP, "cnn"),
    "cnn-rnn-positions": ("cnn-rnn", {"sequence": "positions"}, 256,
                          CONV_MFLOP + rnn_mflop(64, 64, 128, 1), "cnn"),
}
TARGETS = {"row-rnn": 8000, "cnn-rnn": 1200}  # images/s at 2 threads (issue 3)


def median_seconds(fn, reps, warmup=2, budget_s=45.0):
    """(median, min, interquartile range) of ``reps`` timed calls after ``warmup`` calls;
    stops early (after at least 3) once ``budget_s`` is spent, e.g. when a loaded machine
    makes multi-threaded BLAS crawl."""
    times, cpu = timed_calls(fn, reps, warmup, budget_s)
    times = np.array(times)
    iqr = float(np.percentile(times, 75) - np.percentile(times, 25))
    median_seconds.last_cpu = float(np.median(cpu))
    return float(np.median(times)), float(times.min()), iqr, len(times)


def matmul_gflops(threads, n=1024, reps=15):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    with threadpool_limits(limits=threads, user_api="blas"):
        med, best, _, _ = median_seconds(lambda: np.matmul(a, b, out=out), reps)
    return {"median": 2 * n**3 / med / 1e9, "best": 2 * n**3 / best / 1e9}


def sgd_step(model, X, y, trace=False, workers=1):
    out = parallel_loss(model, X, y, 0.0, trace, workers)
    grads = out[1]
    for k, p in model.params.items():
        p -= LR * grads[k]


def time_numpy_model(name, batch, threads, reps, trace=False, workers=1):
    rng = np.random.default_rng(0)
    kind, options = MODELS[name][:2]
    if kind == "row-rnn":
        model = RowRNN(**options)
        X = rng.standard_normal((batch, 32, 96), dtype=np.float32)
    else:
        model = CNNRNN(**options)
        X = rng.standard_normal((batch, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    with threadpool_limits(limits=threads, user_api="blas"):
        med, best, iqr, done = median_seconds(lambda: sgd_step(model, X, y, trace, workers),
                                              reps)
    # at one thread on a loaded machine, images per CPU-second estimates the quiet figure
    return {"images_per_s": batch / med, "best_images_per_s": batch / best,
            "images_per_cpu_s": batch / median_seconds.last_cpu,
            "median_step_s": med, "iqr_step_s": iqr, "reps": done}


def torch_in_subprocess(name, batch, threads, reps, channels_last=False):
    """Time the PyTorch model in a fresh process, so its OpenMP threads (which spin after
    each parallel region) never overlap the NumPy timings."""
    args = [sys.executable, __file__, "--torch-one", name, str(batch), str(threads), str(reps),
            str(int(channels_last))]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_torch_model(name, batch, threads, reps, channels_last=False):
    import torch  # optional: never a dependency of rnnscope

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    nn = torch.nn
    kind, options = MODELS[name][:2]
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[options.get("cell", "rnn")]
    positions = options.get("sequence") == "positions"
    if kind == "row-rnn":
        rnn, head = layer(96, 256, batch_first=True), nn.Linear(256, 10)
        params = list(rnn.parameters()) + list(head.parameters())
        X = torch.randn(batch, 32, 96)

        def forward(x):
            return head(rnn(x)[0][:, -1])
    else:
        convs = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        T, D = (64, 64) if positions else (8, 512)
        rnn, head = layer(D, 128, batch_first=True), nn.Linear(128, 10)
        params = list(convs.parameters()) + list(rnn.parameters()) + list(head.parameters())
        X = torch.randn(batch, 3, 32, 32)
        if channels_last:
            convs = convs.to(memory_format=torch.channels_last)
            X = X.contiguous(memory_format=torch.channels_last)

        def forward(x):
            f = convs(x)  # (N, C, 8, 8) -> rows as timesteps, features (W, C); or positions
            seq = f.permute(0, 2, 3, 1).reshape(x.shape[0], T, D)
            return head(rnn(seq)[0][:, -1])

    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(params, lr=LR)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(forward(X), y).backward()
        opt.step()

    med, best, iqr, done = median_seconds(step, reps)
    return {"images_per_s": batch / med, "best_images_per_s": batch / best,
            "median_step_s": med, "iqr_step_s": iqr, "reps": done,
            "torch": torch.__version__}


MEMORY_SCRIPT = r"""
import sys, tracemalloc
import numpy as np
sys.path.insert(0, {root!r})
from core.models import CNNRNN
rng = np.random.default_rng(0)
model = CNNRNN()
X = rng.standard_normal((256, 32, 32, 3), dtype=np.float32)
y = rng.integers(0, 10, 256)
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
base = status("VmRSS")
tracemalloc.start()
loss, grads = model.loss(X, y)
for k, p in model.params.items():
    p -= 1e-3 * grads[k]
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(base, status("VmHWM"), peak)
"""


def cnn_step_memory():
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT.format(root=str(ROOT))],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    base_kb, peak_kb, traced = (int(v) for v in out.stdout.split())
    return {"process_peak_rss_mb": peak_kb / 1024, "rss_before_step_mb": base_kb / 1024,
            "how": "VmHWM / VmRSS from /proc/self/status; NumPy peak from tracemalloc",
            "numpy_traced_peak_mb": traced / 2**20}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                    help="which models to time (default: all)")
    ap.add_argument("--no-memory", action="store_true", help="skip the B=256 memory probe")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--torch-one", nargs=5, metavar=("MODEL", "B", "THREADS", "REPS", "CL"),
                    help=argparse.SUPPRESS)  # internal: one PyTorch timing, JSON on stdout
    args = ap.parse_args(argv)
    if args.torch_one:
        name, batch, threads, reps, cl = args.torch_one
        print(json.dumps(time_torch_model(name, int(batch), int(threads), int(reps),
                                          bool(int(cl)))))
        return
    group_reps = {"row": 10, "cnn": 4} if args.quick else {"row": 30, "cnn": 10}
    have_torch = importlib.util.find_spec("torch") is not None

    blas = blas_info()
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "load_before": load_average(), "cpu_count": os.cpu_count(),
              "machine": platform.processor() or platform.machine(),
              "numpy": np.__version__, "blas": blas, "dtype": "float32",
              "nominal_mflop_per_image": {name: round(m[3], 2) for name, m in MODELS.items()},
              "note": "medians; the machine may be shared - see load_before/load_after",
              "runs": []}
    print(f"load average before: {result['load_before']}")
    print(blas_summary(blas))
    for threads in args.threads:
        peak = matmul_gflops(threads)
        print(f"\n== {threads} BLAS thread(s): float32 sgemm 1024^3 {peak['median']:.1f} GFLOP/s "
              f"(best {peak['best']:.1f})")
        run = {"threads": threads, "sgemm_gflops": peak, "models": {}}
        for name in args.models:
            kind, _, batch, mflop, group = MODELS[name]
            reps = group_reps[group]
            r = time_numpy_model(name, batch, threads, reps)
            r["gflops"] = r["images_per_s"] * mflop / 1e3
            r["fraction_of_sgemm"] = r["gflops"] / peak["median"]
            norms = time_numpy_model(name, batch, threads, reps, trace="norms")
            r["trace_norms_overhead"] = norms["median_step_s"] / r["median_step_s"] - 1
            print(f"{name:17s} B={batch}: {r['images_per_s']:8.0f} images/s "
                  f"(best {r['best_images_per_s']:.0f}, per CPU-s "
                  f"{r['images_per_cpu_s']:.0f}), {r['gflops']:.1f} GFLOP/s = "
                  f"{100 * r['fraction_of_sgemm']:.0f}% of sgemm; trace='norms' "
                  f"{100 * r['trace_norms_overhead']:+.1f}%")
            if threads > 1:  # the recurrent loops alone on one BLAS thread
                set_loop_blas_threads(1)
                try:
                    r["loop_blas_1"] = time_numpy_model(name, batch, threads, reps)
                finally:
                    set_loop_blas_threads(None)
                print(f"{'':8s} recurrent loop on 1 BLAS thread: "
                      f"{r['loop_blas_1']['images_per_s']:8.0f} images/s")
            if threads > 1 and kind == "cnn-rnn":  # conv chunks on Python threads instead
                set_conv_workers(threads)
                try:
                    r["conv_workers"] = time_numpy_model(name, batch, threads, reps)
                finally:
                    set_conv_workers(1)
                print(f"{'':8s} conv chunks on {threads} threads (BLAS 1 inside): "
                      f"{r['conv_workers']['images_per_s']:8.0f} images/s")
            if threads > 1:  # the batch split over threads, one BLAS thread each (the trainer's)
                b = time_numpy_model(name, batch, threads, reps, workers=threads)
                b["gflops"] = b["images_per_s"] * mflop / 1e3
                b["fraction_of_sgemm"] = b["gflops"] / peak["median"]
                target = f" (target {TARGETS[name]})" if name in TARGETS else ""
                b["target_images_per_s"] = TARGETS.get(name)
                r["batch_split"] = b
                print(f"{'':8s} batch split over {threads} threads (BLAS 1 each): "
                      f"{b['images_per_s']:8.0f} images/s = {100 * b['fraction_of_sgemm']:.0f}% "
                      f"of sgemm{target}")
            if have_torch:
                variants = [("torch", False)] + ([("torch_channels_last", True)]
                                                  if kind == "cnn-rnn" else [])
                for variant, cl in variants:
                    t = torch_in_subprocess(name, batch, threads, reps, channels_last=cl)
                    t["numpy_over_torch"] = r["images_per_s"] / t["images_per_s"]
                    ours = f"NumPy/PyTorch = {t['numpy_over_torch']:.2f}"
                    if "batch_split" in r:
                        t["batch_split_over_torch"] = (r["batch_split"]["images_per_s"]
                                                       / t["images_per_s"])
                        ours += f", batch split/PyTorch = {t['batch_split_over_torch']:.2f}"
                    r[variant] = t
                    print(f"{'':8s} {variant}: {t['images_per_s']:8.0f} images/s -> {ours}")
            run["models"][name] = r
        result["runs"].append(run)
    if not have_torch:
        print("\n(PyTorch not importable: no comparison)")
    result["torch_compared"] = have_torch
    if not args.no_memory:
        mem = cnn_step_memory()
        result["cnn_step_memory_b256"] = mem
        print(f"\nCNN+RNN step at B=256: process peak RSS {mem['process_peak_rss_mb']:.0f} MB "
              f"(before the step {mem['rss_before_step_mb']:.0f} MB), NumPy arrays peak "
              f"{mem['numpy_traced_peak_mb']:.0f} MB")
    finish(result, args.out)


if __name__ == "__main__":
    main()
