"""Training benchmark: the real `train` path at --workers 1 and 2, against a PyTorch CPU loop.

Run from the repository root:

    python bench/bench_train.py                       # probe task -> bench/results/bench_train.json
    python bench/bench_train.py --data cifar10 --rounds 5 --steps 60
    python bench/bench_train.py --quick               # a few steps: shows it works, measures little

Each case builds the trainer the command line builds (``cli.commands.make_trainer``: the data,
normalisation, augmentation where the preset has it, the optimizer, clipping, the per-step
extras: dh_norm, accuracy, clip record) and times ``--steps`` training steps after warm-up
steps (the first of which starts the worker processes; that start-up is reported apart):

- row-RNN: the ``best-row`` preset (B 128, H 256, Adam, norm clipping, flips);
- CNN+RNN: ``best-cnn`` with B 256, conv 64/64, H 128 (Nesterov SGD, norm clipping, crop+flip);
- row LSTM: ``best-row-lstm`` with H 256 (B 128, Adam, norm clipping, flips).

Variants: ``workers=1`` (one process), ``workers=2`` (what `train --workers 2` runs: the parent
prepares the batch, computes one half itself while one worker process computes the other,
combines and updates) and ``workers=2, 2 processes`` (both halves on worker processes while
the parent waits: what the app's "Train on all cores" runs, ``Trainer(parent_part=False)``).
If PyTorch is importable, a PyTorch training loop of the same model (nn.RNN or nn.LSTM,
nn.Conv2d channels-last, the same optimizer, clip_grad_norm_) over the same normalised images
in memory, batch size and thread count (2) runs in a fresh subprocess in every round; it draws
random batches and does no augmentation and no per-step extras. Rounds interleave the
variants; the JSON holds every round, the medians and the median of the per-round ratios.

``fraction_of_2core_sgemm_peak``: images/s x nominal MFLOP per image (row-RNN 17.3, CNN+RNN
with H 128 ~68, row LSTM 69.2, as in bench_engine.py) over twice the one-thread 1024^3 float32
sgemm rate measured in the same run.

``prep`` is the parent's own share of a step: gathering the batch from the uint8 images,
augmenting, normalising and copying it into the shared input block, timed alone.

Timings on a machine shared with other work are noisy: the JSON records ``uptime`` before and
after.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_util import blas_info, blas_summary, load_average, write_json

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "bench_train.json"
CASES = {
    "row-rnn": {"preset": "best-row", "overrides": {}},
    "cnn-rnn": {"preset": "best-cnn", "overrides": {"hidden": 128, "batch_size": 256}},
    "row-lstm": {"preset": "best-row-lstm", "overrides": {"hidden": 256, "batch_size": 128}},
}
TORCH_THREADS = 2
MFLOP_PER_IMAGE = {"row-rnn": 17.3, "cnn-rnn": 68.0, "row-lstm": 69.2}


def sgemm_gflops_one_thread(reps: int = 5) -> float:
    """Median float32 1024^3 matmul rate at one BLAS thread, GFLOP/s."""
    from core.threads import one_blas_thread

    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    times = []
    with one_blas_thread():
        a @ a
        for _ in range(reps):
            t0 = time.perf_counter()
            a @ a
            times.append(time.perf_counter() - t0)
    return 2 * 1024**3 / float(np.median(times)) / 1e9


def make(case: str, data: str, workers: int):
    from cli.commands import make_trainer

    spec = CASES[case]
    overrides = {**spec["overrides"], "workers": workers, "epochs": 10_000,
                 "eval_every": 10**9, "max_minutes": None}
    trainer, splits = make_trainer(data, None, preset=spec["preset"], overrides=overrides,
                                   log=None)
    return trainer, splits


def time_trainer(case: str, data: str, workers: int, warmup: int, steps: int,
                 parent_part: bool = True) -> dict:
    """images/s over ``steps`` steps of the real trainer after ``warmup`` steps; parent_part
    False: every part on worker processes, as the app trains (Trainer(parent_part=False))."""
    from core.blas import limit_blas_threads

    trainer, _ = make(case, data, workers)
    trainer._loss.parent_part = parent_part   # before the first step starts the pool
    marks = []

    def on_event(ev):
        if ev["type"] == "step":
            marks.append(time.perf_counter())
            if len(marks) >= warmup + steps + 1:
                trainer.cancel()

    trainer.listener = on_event
    t0 = time.perf_counter()
    with limit_blas_threads(1):   # as `train` runs it
        trainer.run()
    B = trainer.config.batch_size
    seconds = marks[-1] - marks[warmup]
    return {"images_per_s": B * steps / seconds, "first_step_s": marks[0] - t0,
            "step_ms": 1000 * seconds / steps}


def profile_step(case: str, data: str, warmup: int, steps: int) -> dict:
    """Where a ``workers=2`` step's time goes in the parent, ms per step: preparing the batch
    (augment + normalise), its own part (``model.loss`` on half the batch), waiting for the
    worker's part after its own is done, combining the parts, clipping, the optimizer step,
    and the rest (the trainer's bookkeeping, the copy into shared memory, the pipe).
    The wrappers cost a few microseconds per call."""
    import contextlib

    from core import process_parallel
    from core import trainer as trainer_mod

    totals: dict[str, float] = {}
    counting = [False]

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                if counting[0]:
                    totals[name] = totals.get(name, 0.0) + time.perf_counter() - t0
        return wrapper

    trainer, _ = make(case, data, 2)
    pool_cls = process_parallel.ProcessPool
    targets = [(trainer_mod, "augment_batch", "prepare: augment"),
               (trainer.normalizer, "apply", "prepare: normalise"),
               (pool_cls, "_collect", "wait for the worker"),
               (process_parallel, "combine_parts", "combine the parts"),
               (trainer_mod, "clip_gradients", "clip"),
               (trainer.optimizer, "step", "optimizer step"),
               (trainer.model, "loss", "own part (model.loss)")]
    marks = []

    def on_event(ev):
        if ev["type"] == "step":
            marks.append(time.perf_counter())
            counting[0] = len(marks) > warmup
            if len(marks) >= warmup + steps + 1:
                trainer.cancel()

    trainer.listener = on_event
    with contextlib.ExitStack() as undo:
        for obj, attr, name in targets:
            orig = getattr(obj, attr)
            setattr(obj, attr, timed(name, orig))
            if isinstance(obj, type) or obj.__class__.__name__ == "module":
                undo.callback(setattr, obj, attr, orig)
        from core.blas import limit_blas_threads

        with limit_blas_threads(1):
            trainer.run()
    step_ms = 1000 * (marks[-1] - marks[warmup]) / steps
    out = {name: 1000 * v / steps for name, v in totals.items()}
    out["rest"] = step_ms - sum(out.values())
    return {"step_ms": step_ms, "ms_per_step": out}


def time_prep(case: str, data: str, reps: int = 20) -> float:
    """ms per step of the parent's batch preparation (gather, augment, normalise, copy)."""
    from core.datasets import augment_batch

    trainer, splits = make(case, data, 1)
    cfg = trainer.config
    rng = np.random.default_rng(0)
    out = None
    t0 = time.perf_counter()
    for _ in range(reps):
        idx = rng.permutation(trainer.n_train)[:cfg.batch_size]
        images = splits.train.images[idx]
        if cfg.augment:
            images = augment_batch(images, rng, crop_pad=cfg.crop_pad, flip=True)
        X = trainer.model.input_from_images(trainer.normalizer.apply(images, dtype=trainer.dtype))
        if out is None:
            out = np.empty_like(X)
        out[...] = X   # the copy into the shared input block
    return 1000 * (time.perf_counter() - t0) / reps


def torch_round(case: str, data: str, warmup: int, steps: int) -> dict | None:
    """The PyTorch loop in a fresh interpreter; None if torch is not importable."""
    if importlib.util.find_spec("torch") is None:
        return None
    trainer, splits = make(case, data, 1)
    cfg = trainer.config
    with tempfile.TemporaryDirectory() as tmp:
        x = trainer.normalizer.apply(splits.train.images, dtype=np.float32)
        np.save(Path(tmp) / "x.npy", x)
        np.save(Path(tmp) / "y.npy", np.asarray(splits.train.labels, dtype=np.int64))
        args = {"case": case, "dir": tmp, "warmup": warmup, "steps": steps,
                "batch_size": cfg.batch_size, "hidden": cfg.hidden_dim,
                "channels": list(cfg.channels), "optimizer": cfg.optimizer, "lr": cfg.lr,
                "momentum": cfg.momentum, "reg": cfg.reg, "clip": cfg.clip_threshold,
                "cell": cfg.cell, "threads": TORCH_THREADS}
        out = subprocess.run([sys.executable, __file__, "--torch-child", json.dumps(args)],
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_child(args: dict) -> None:
    import torch
    from torch import nn

    torch.set_num_threads(args["threads"])
    torch.manual_seed(0)
    x = torch.from_numpy(np.load(Path(args["dir"]) / "x.npy"))   # (N, 32, 32, 3)
    y = torch.from_numpy(np.load(Path(args["dir"]) / "y.npy"))
    H, B = args["hidden"], args["batch_size"]
    row = args["case"] != "cnn-rnn"
    recurrent = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[args["cell"]]
    if row:
        x = x.reshape(len(x), 32, 96).contiguous()
        rnn = recurrent(96, H, batch_first=True)
        conv = None
    else:
        c1, c2 = args["channels"]
        x = x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        conv = nn.Sequential(nn.Conv2d(3, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        conv = conv.to(memory_format=torch.channels_last)
        rnn = recurrent(8 * c2, H, batch_first=True)
    head = nn.Linear(H, 10)
    modules = [m for m in (conv, rnn, head) if m is not None]
    params = [p for m in modules for p in m.parameters()]
    if args["optimizer"] == "adam":
        opt = torch.optim.Adam(params, lr=args["lr"], weight_decay=args["reg"])
    else:
        opt = torch.optim.SGD(params, lr=args["lr"], momentum=args["momentum"],
                              nesterov=args["optimizer"] == "nesterov",
                              weight_decay=args["reg"])
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)

    def step():
        idx = torch.randint(0, len(y), (B,), generator=gen)
        xb, yb = x[idx], y[idx]
        if conv is not None:
            f = conv(xb.contiguous(memory_format=torch.channels_last))  # (B, C2, 8, 8)
            xb = f.permute(0, 2, 3, 1).reshape(B, 8, -1)   # map row t = timestep, (W, C)
        out, _ = rnn(xb)
        loss = loss_fn(head(out[:, -1]), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, args["clip"])
        opt.step()

    for _ in range(args["warmup"]):
        step()
    t0 = time.perf_counter()
    for _ in range(args["steps"]):
        step()
    seconds = time.perf_counter() - t0
    print(json.dumps({"images_per_s": B * args["steps"] / seconds,
                      "step_ms": 1000 * seconds / args["steps"], "torch": torch.__version__}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="probe", help="probe (default), cifar10 or a CIFAR-10 path")
    p.add_argument("--models", default="row-rnn,cnn-rnn,row-lstm")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=0, help="timed steps (default 40 row / 8 cnn)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="1 round of a few steps")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--profile", action="store_true",
                   help="also break a workers=2 step down in the parent (profile_step)")
    p.add_argument("--torch-child", help=argparse.SUPPRESS)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    if args.torch_child:
        torch_child(json.loads(args.torch_child))
        return 0

    print(blas_summary(blas_info()), flush=True)
    rounds = 1 if args.quick else args.rounds
    result = {"command": " ".join(["python", "bench/bench_train.py"] + (argv or sys.argv[1:])),
              "machine": platform.processor() or platform.machine(),
              "python": platform.python_version(), "numpy": np.__version__, "blas": blas_info(),
              "uptime_before": load_average(), "data": args.data,
              "sgemm_gflops_one_thread": sgemm_gflops_one_thread(), "cases": {}}
    peak = 2 * result["sgemm_gflops_one_thread"]
    for case in args.models.split(","):
        steps = args.steps or {"row-rnn": 40, "row-lstm": 16}.get(case, 8)
        warmup = args.warmup
        if args.quick:
            steps, warmup = max(2, steps // 4), 2
        runs: dict[str, list] = {"workers=1": [], "workers=2": [], "workers=2, 2 processes": [],
                                 "pytorch": []}
        for r in range(rounds):
            runs["workers=1"].append(time_trainer(case, args.data, 1, warmup, steps))
            runs["workers=2"].append(time_trainer(case, args.data, 2, warmup, steps))
            runs["workers=2, 2 processes"].append(
                time_trainer(case, args.data, 2, warmup, steps, parent_part=False))
            if not args.no_torch:
                t = torch_round(case, args.data, warmup, steps)
                if t is not None:
                    runs["pytorch"].append(t)
            print(f"{case} round {r + 1}: " + ", ".join(
                f"{k} {v[-1]['images_per_s']:.0f}" for k, v in runs.items() if v)
                + " images/s", flush=True)
        runs = {k: v for k, v in runs.items() if v}
        med = {k: float(np.median([x["images_per_s"] for x in v])) for k, v in runs.items()}
        ratios = {"workers=2 / workers=1": float(np.median(
            [a["images_per_s"] / b["images_per_s"]
             for a, b in zip(runs["workers=2"], runs["workers=1"])]))}
        if "pytorch" in runs:
            ratios["workers=2 / pytorch"] = float(np.median(
                [a["images_per_s"] / b["images_per_s"]
                 for a, b in zip(runs["workers=2"], runs["pytorch"])]))
        step_ms = float(np.median([x["step_ms"] for x in runs["workers=2"]]))
        prep_ms = time_prep(case, args.data)
        result["cases"][case] = {
            "preset": CASES[case]["preset"], "overrides": CASES[case]["overrides"],
            "steps": steps, "warmup": warmup, "rounds": runs, "median_images_per_s": med,
            "median_ratio": ratios, "prep_ms": prep_ms,
            "fraction_of_2core_sgemm_peak": {
                k: v * MFLOP_PER_IMAGE[case] / 1e3 / peak for k, v in med.items()},
            "prep_share_of_step_at_workers_2": prep_ms / step_ms,
            "first_step_s_workers_2": float(np.median([x["first_step_s"]
                                                      for x in runs["workers=2"]])),
        }
        if args.profile:
            prof = profile_step(case, args.data, warmup, steps)
            result["cases"][case]["profile_workers_2"] = prof
            print(f"{case}: workers=2 step {prof['step_ms']:.1f} ms = " + ", ".join(
                f"{k} {v:.1f}" for k, v in prof["ms_per_step"].items()), flush=True)
        print(f"{case}: median " + ", ".join(f"{k} {v:.0f}" for k, v in med.items())
              + " images/s; " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
              + f"; parent's batch prep {prep_ms:.1f} ms = {100 * prep_ms / step_ms:.1f}% of a "
              "step at workers=2", flush=True)
    result["uptime_after"] = load_average()
    write_json(result, args.out)
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
