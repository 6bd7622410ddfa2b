"""What the trainer's per-step extras cost: dh_norm (trace='norms'), accuracy, the clip record.

Runs the real Trainer loop on synthetic CIFAR-shaped data twice, interleaved:
  with extras   - as shipped (model.loss(..., trace='norms'), clip_gradients with its record)
  bare          - model.loss(..., trace=False) and an in-place clip without any record
and prints the median seconds per step of each and the overhead in percent; writes
bench/results/trainer_extras.json. Usage (from the repo root):

    /work/venv/bin/python bench/bench_trainer_extras.py [--threads 1] [--rounds 3] [--steps 40]

Numbers measured while other work runs on the machine are noisy; the rounds are interleaved
so both variants see the same load.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
from bench_util import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import trainer as trainer_mod  # noqa: E402
from core.blas import limit_blas_threads  # noqa: E402
from core.config import TrainConfig  # noqa: E402
from core.imageset import DataSplits, ImageSet  # noqa: E402


class _BareRecord:
    def __init__(self, norm):
        self.norm_before = norm
        self.fired = False

    def to_dict(self):
        return {}


def _bare_clip(grads, mode, threshold):
    """Clip in place with the least work: no per-parameter norms, no cosine, no record."""
    if mode == "value":
        for g in grads.values():
            np.clip(g, -threshold, threshold, out=g)
        return _BareRecord(0.0)
    norm = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads.values()))
    if mode == "norm" and norm > threshold:
        for g in grads.values():
            g *= g.dtype.type(threshold / norm)
    return _BareRecord(norm)


class _BareModel:
    """Wraps a model so loss() runs without a trace (no dh_norm, no probs)."""

    def __init__(self, model):
        self._m = model
        self.params = model.params
        self.config = model.config
        self.kind = model.kind

    def input_from_images(self, x):
        return self._m.input_from_images(x)

    def scores(self, X):
        return self._m.scores(X)

    def loss(self, X, y, reg=0.0, trace=False):
        loss, grads = self._m.loss(X, y, reg)
        return loss, grads, None


def _splits(n):
    rng = np.random.default_rng(0)
    names = [str(k) for k in range(10)]
    img = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    lab = rng.integers(0, 10, n).astype(np.int64)
    small = ImageSet(img[:200], lab[:200], names)
    return DataSplits(ImageSet(img, lab, names), small, small, "synthetic", "synthetic", {})


def _time_steps(cfg, splits, steps, bare):
    t = trainer_mod.Trainer(cfg, splits)
    if bare:
        t.model = _BareModel(t.model)
    clip_fn = trainer_mod.clip_gradients
    if bare:
        trainer_mod.clip_gradients = _bare_clip
    times = []
    last = [None]

    def listener(ev):
        if ev["type"] != "step":
            return
        now = time.perf_counter()
        if last[0] is not None:
            times.append(now - last[0])
        last[0] = now
        if ev["step"] >= steps:
            t.cancel()

    t.listener = listener
    try:
        t.run()
    finally:
        trainer_mod.clip_gradients = clip_fn
    return times[3:]  # skip warm-up


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args(argv)
    limit_blas_threads(args.threads)
    cases = {
        "row-rnn H=256 B=128 value clip": TrainConfig.from_preset(
            "seed000", epochs=1, max_minutes=None),
        "cnn-rnn 64/64 H=128 B=256 norm clip": TrainConfig.from_preset(
            "seed001", epochs=1, max_minutes=None, augment=False),
    }
    results = {}
    for name, cfg in cases.items():
        splits = _splits(cfg.batch_size * (args.steps + 5))
        with_x, bare = [], []
        for _ in range(args.rounds):
            bare += _time_steps(cfg, splits, args.steps, bare=True)
            with_x += _time_steps(cfg, splits, args.steps, bare=False)
        mb, mw = float(np.median(bare)), float(np.median(with_x))
        results[name] = {
            "seconds_per_step_bare": mb, "seconds_per_step_with_extras": mw,
            "images_per_s_bare": cfg.batch_size / mb,
            "images_per_s_with_extras": cfg.batch_size / mw,
            "overhead_percent": 100.0 * (mw / mb - 1.0), "steps_timed": len(with_x),
        }
        print(f"{name}: bare {mb * 1e3:.1f} ms/step ({cfg.batch_size / mb:.0f} img/s), with "
              f"extras {mw * 1e3:.1f} ms/step ({cfg.batch_size / mw:.0f} img/s): overhead "
              f"{results[name]['overhead_percent']:+.1f}%")
    out = {"command": "python bench/bench_trainer_extras.py " + " ".join(argv or sys.argv[1:]),
           "blas_threads": args.threads, "machine": platform.processor() or platform.machine(),
           "note": "median s/step over interleaved rounds; other work may share the machine",
           "results": results}
    path = write_json(out, ROOT / "bench" / "results" / "trainer_extras.json")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
