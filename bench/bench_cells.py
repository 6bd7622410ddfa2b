"""Cell benchmark: the recurrent part of a float32 training step for rnn, lstm and gru.

Run from the repository root:

    python bench/bench_cells.py            # -> bench/results/bench_cells.json
    python bench/bench_cells.py --quick    # fewer repetitions

One step is the time-major sequence forward (zero initial state) + its backward from a
gradient on the last state only, without dx (what the row model needs: its input is the
image), at B 128, T 32, D 96, H 256 and one BLAS thread. Medians over a few rounds; each
round times the NumPy step, its matmuls alone and PyTorch one after the other (after warm-up),
so a change in the machine's load hits all three. Two matmul references: the same matmuls the
step does (the input projection, T-1 recurrent products forward and backward, dWx, dWh) as
plain sgemm calls into preallocated outputs, which is the step's peak on this BLAS and gives
the fraction of peak; and a 1024^3 sgemm for the machine's rate. If PyTorch is importable,
nn.RNN / nn.LSTM / nn.GRU forward + backward of the same sizes (input without gradient,
h_n.backward) are timed at one thread, in fresh subprocesses so that PyTorch's OpenMP
threads never overlap the NumPy timings; ``speed_vs_torch`` > 1 means rnnscope is
faster (``speed_vs_torch_cpu`` compares process CPU times, steadier on a loaded machine). The
JSON records ``uptime`` before and after: on a shared machine speeds vary, so compare ratios
from one run.
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
from bench_util import finish, load_average, timed_calls  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.gru_layers import gru_backward_tm, gru_forward_tm  # noqa: E402
from core.init import gru_params, lstm_params  # noqa: E402
from core.lstm_layers import lstm_backward_tm, lstm_forward_tm  # noqa: E402
from core.rnn_layers import rnn_backward_tm, rnn_forward_tm  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bench_cells.json"
B, T, D, H = 128, 32, 96, 256
BLOCKS = {"rnn": 1, "lstm": 4, "gru": 3}


def summary(wall, cpu):
    return {"median_ms": 1e3 * float(np.median(wall)), "best_ms": 1e3 * float(np.min(wall)),
            "cpu_ms": 1e3 * float(np.median(cpu)), "reps": len(wall)}


def step_gflop(G):
    """Matmul GFLOP of one step: forward input projection + T-1 recurrent products; backward
    T-1 recurrent products, dWx over T steps, dWh over T-1 steps (no dx)."""
    GH = G * H
    proj = 2 * T * B * D * GH
    rec = 2 * (T - 1) * B * H * GH
    return (2 * proj + 3 * rec) / 1e9


def numpy_cell(cell, rng):
    """(step function, name) for one cell at the benchmark sizes, float32."""
    x = rng.standard_normal((T, B, D), dtype=np.float32)
    dlast = rng.standard_normal((B, H), dtype=np.float32)
    if cell == "rnn":
        Wx = (rng.standard_normal((D, H)) / np.sqrt(D)).astype(np.float32)
        Wh = (rng.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32)
        b = np.zeros(H, np.float32)
        fwd, bwd = rnn_forward_tm, rnn_backward_tm
    else:
        init = lstm_params if cell == "lstm" else gru_params
        p = init(rng, D, H, np.float32, init="orthogonal")
        Wx, Wh, b = p["W_xh"], p["W_hh"], p["b_h"]
        fwd, bwd = (lstm_forward_tm, lstm_backward_tm) if cell == "lstm" else (
            gru_forward_tm, gru_backward_tm)

    def step():
        _, cache = fwd(x, None, Wx, Wh, b)
        return bwd(cache, dh_last=dlast, need_dx=False)

    return step


def matmul_reference(G, rng):
    """The step's matmuls alone, same shapes, into preallocated outputs."""
    GH = G * H
    x = rng.standard_normal((T * B, D), dtype=np.float32)
    Wx = rng.standard_normal((D, GH), dtype=np.float32)
    Wh = rng.standard_normal((H, GH), dtype=np.float32)
    hs = rng.standard_normal((T * B, H), dtype=np.float32)
    da = rng.standard_normal((T * B, GH), dtype=np.float32)
    proj = np.empty((T * B, GH), np.float32)
    rec = np.empty((B, GH), np.float32)
    back = np.empty((B, H), np.float32)
    dWx = np.empty((D, GH), np.float32)
    dWh = np.empty((H, GH), np.float32)
    WhT = Wh.T

    def run():
        np.matmul(x, Wx, out=proj)
        for t in range(T - 1):
            np.matmul(hs[t * B : (t + 1) * B], Wh, out=rec)
        for t in range(T - 1):
            np.matmul(da[t * B : (t + 1) * B], WhT, out=back)
        np.matmul(x.T, da, out=dWx)
        np.matmul(hs[: (T - 1) * B].T, da[B:], out=dWh)

    return run


def sgemm_gflops(reps, n=1024):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    wall, _ = timed_calls(lambda: np.matmul(a, b, out=out), reps)
    return {"median": 2 * n**3 / np.median(wall) / 1e9, "best": 2 * n**3 / np.min(wall) / 1e9}


def time_torch_cell(cell, reps):
    import torch  # optional: never a dependency of rnnscope

    torch.set_num_threads(1)
    torch.manual_seed(0)
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](D, H)
    x = torch.randn(T, B, D)
    dlast = torch.randn(1, B, H)

    def step():
        for p in module.parameters():
            p.grad = None
        out = module(x)[1]
        h_n = out[0] if cell == "lstm" else out
        h_n.backward(dlast)

    wall, cpu = timed_calls(step, reps)
    return {"wall": wall, "cpu": cpu, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}


def torch_in_subprocess(cell, reps):
    args = [sys.executable, __file__, "--torch-one", cell, str(reps)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--cells", nargs="+", default=list(BLOCKS), choices=list(BLOCKS))
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--torch-one", nargs=2, metavar=("CELL", "REPS"),
                    help=argparse.SUPPRESS)  # internal: one PyTorch timing, JSON on stdout
    args = ap.parse_args(argv)
    if args.torch_one:
        cell, reps = args.torch_one
        print(json.dumps(time_torch_cell(cell, int(reps))))
        return
    rounds, reps = (2, 4) if args.quick else (4, 8)
    have_torch = importlib.util.find_spec("torch") is not None
    blas = [{k: d.get(k) for k in ("internal_api", "version", "architecture")}
            for d in threadpool_info()]
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "load_before": load_average(), "cpu_count": os.cpu_count(),
              "machine": platform.processor() or platform.machine(), "numpy": np.__version__,
              "blas": blas, "dtype": "float32", "blas_threads": 1,
              "sizes": {"B": B, "T": T, "D": D, "H": H},
              "step": "time-major forward from h0 = 0 + backward from dh_last, no dx",
              "note": (f"medians over {rounds} rounds of {reps} calls; in each round the NumPy "
                       "step, its matmuls alone and PyTorch are timed one after the other, so "
                       "load changes hit all three; the machine may be shared - see "
                       "load_before/load_after"),
              "cells": {}}
    print(f"load average before: {result['load_before']}")
    rng = np.random.default_rng(0)
    with threadpool_limits(limits=1, user_api="blas"):
        result["sgemm_1024_gflops"] = sgemm_gflops(3 * reps)
        print(f"float32 sgemm 1024^3 at 1 thread: {result['sgemm_1024_gflops']['median']:.1f} "
              f"GFLOP/s")
        for cell in args.cells:
            G = BLOCKS[cell]
            gflop = step_gflop(G)
            step, ref = numpy_cell(cell, rng), matmul_reference(G, rng)
            ours, mats, theirs = ([], []), ([], []), ([], [])
            for _ in range(rounds):
                for acc, fn in ((ours, step), (mats, ref)):
                    wall, cpu = timed_calls(fn, reps)
                    acc[0].extend(wall)
                    acc[1].extend(cpu)
                if have_torch:
                    t = torch_in_subprocess(cell, reps)
                    theirs[0].extend(t["wall"])
                    theirs[1].extend(t["cpu"])
            r, m = summary(*ours), summary(*mats)
            med = r["median_ms"] / 1e3
            r.update({"images_per_s": B / med, "images_per_cpu_s": 1e3 * B / r["cpu_ms"],
                      "matmul_gflop": gflop, "gflops": gflop / med,
                      "same_matmuls": m,
                      "fraction_of_matmul_peak": m["median_ms"] / r["median_ms"],
                      "fraction_of_matmul_peak_cpu": m["cpu_ms"] / r["cpu_ms"],
                      "fraction_of_sgemm_1024": (gflop / med
                                                 / result["sgemm_1024_gflops"]["median"])})
            line = (f"{cell:5s} {r['median_ms']:7.1f} ms/step (best {r['best_ms']:.1f}, CPU "
                    f"{r['cpu_ms']:.1f}), {r['images_per_s']:6.0f} images/s, "
                    f"{r['gflops']:.1f} GFLOP/s; its matmuls alone {m['median_ms']:.1f} ms -> "
                    f"{100 * r['fraction_of_matmul_peak']:.0f}% of matmul peak "
                    f"(CPU {100 * r['fraction_of_matmul_peak_cpu']:.0f}%)")
            if have_torch:
                tt = summary(*theirs)
                tt.update(torch=t["torch"], torch_threads=t["torch_threads"],
                          images_per_s=1e3 * B / tt["median_ms"])
                r["torch"] = tt
                r["speed_vs_torch"] = tt["median_ms"] / r["median_ms"]
                r["speed_vs_torch_cpu"] = tt["cpu_ms"] / r["cpu_ms"]
                line += (f"; PyTorch {tt['median_ms']:.1f} ms (CPU {tt['cpu_ms']:.1f}) -> "
                         f"rnnscope/PyTorch speed {r['speed_vs_torch']:.2f}x "
                         f"(CPU time {r['speed_vs_torch_cpu']:.2f}x)")
            print(line)
            result["cells"][cell] = r
    if not have_torch:
        print("(PyTorch not importable: no comparison)")
    result["torch_compared"] = have_torch
    finish(result, args.out)


if __name__ == "__main__":
    main()
