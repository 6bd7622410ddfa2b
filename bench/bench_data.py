"""Benchmark of the CIFAR-10 data layer on the real tarball.

Targets (issue 2): first load of the full tarball < 10 s, cached load < 1 s, peak memory for
the full training set < 600 MB.

Each phase runs in a fresh subprocess so its peak memory is its own: peak RSS is
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that process (resident pages, including the
interpreter + numpy baseline and memory-mapped cache pages the phase touched; the baseline of a
bare ``import numpy`` process is reported too). Phases:
  first  - load_cifar10 on the tarball with an empty cache (decode + write the .npy cache)
  cached - load_data(scheme='default') again (memory-maps the cache)
  epoch  - load_data + Normalizer.fit on the 49,000 training images + one pass over them in
           batches of 256 (float32 normalisation + row sequences + augmentation): the full
           training set going through the pipeline
The first load reads the 174 MB tarball from the OS page cache if it was read recently.

Usage: python bench/bench_data.py [--source PATH]   (prints figures, writes
bench/results/bench_data.json). The machine is shared: the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_util import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared/cifar10/cifar-10-python.tar.gz"
TARGETS = {"first_load_s": 10.0, "cached_load_s": 1.0, "epoch_peak_rss_mb": 600.0}


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _phase(name: str, source: str) -> dict:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    out: dict = {"phase": name}
    if name == "baseline":
        out["peak_rss_mb"] = _peak_rss_mb()
        return out
    from core.cifar10 import load_cifar10
    from core.datasets import Normalizer, augment_batch, load_data, to_row_sequences

    t0 = time.perf_counter()
    if name == "first":
        arrays = load_cifar10(source)
        out["seconds"] = time.perf_counter() - t0
        out["cache_entry"] = str(arrays.cache_entry)
        out["train_shape"] = list(arrays.train_images.shape)
    elif name == "cached":
        splits = load_data(source)
        out["seconds"] = time.perf_counter() - t0
        out["memmap"] = isinstance(splits.train.images, np.memmap)
        out["description"] = splits.description
    elif name == "epoch":
        splits = load_data(source)
        norm = Normalizer("per-channel").fit(splits.train.images)
        out["fit_seconds"] = time.perf_counter() - t0
        rng = np.random.default_rng(0)
        checksum = 0.0
        n = len(splits.train)
        for i in range(0, n, 256):
            batch = augment_batch(splits.train.images[i:i + 256], rng)
            seq = to_row_sequences(norm.apply(batch))  # float32 (B, 32, 96)
            checksum += float(seq[:, -1].sum())
        out["seconds"] = time.perf_counter() - t0
        out["images"] = n
        out["mean"] = [round(float(v) / 255, 4) for v in norm.mean]
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _run_phase(name: str, source: str, cache: str) -> dict:
    env = dict(os.environ, RNNSCOPE_CACHE=cache, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, __file__, "--phase", name, "--source", source],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default=str(DEFAULT_SOURCE))
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each phase (median reported)")
    args = ap.parse_args(argv)
    if args.phase:
        print(json.dumps(_phase(args.phase, args.source)))
        return 0
    if not Path(args.source).exists():
        print(f"error: {args.source} not found; pass --source", file=sys.stderr)
        return 1
    load_before = os.getloadavg()
    runs: dict[str, list] = {"baseline": [], "first": [], "cached": [], "epoch": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="rnnscope-bench-") as cache:
            for phase in runs:
                runs[phase].append(_run_phase(phase, args.source, cache))
    def median_s(phase: str) -> float:
        return float(statistics.median(r.get("seconds", 0.0) for r in runs[phase]))

    figures = {
        "first_load_s": round(median_s("first"), 3),
        "cached_load_s": round(median_s("cached"), 4),
        "epoch_pass_s": round(median_s("epoch"), 3),
        "first_load_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["first"]), 1),
        "cached_load_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["cached"]), 1),
        "epoch_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["epoch"]), 1),
        "baseline_rss_mb": round(max(r["peak_rss_mb"] for r in runs["baseline"]), 1),
    }
    result = {
        "source": args.source,
        "command": "python bench/bench_data.py" + ("" if args.source == str(DEFAULT_SOURCE)
                                                    else f" --source {args.source}"),
        "memory_method": "resource.getrusage(RUSAGE_SELF).ru_maxrss of one subprocess per phase",
        "repeats": args.repeats,
        "figures": figures,
        "targets": TARGETS,
        "pass": {k: figures[k] < v for k, v in TARGETS.items()},
        "all_seconds": {p: [round(r.get("seconds", 0.0), 3) for r in rs] for p, rs in runs.items()
                        if p != "baseline"},
        "train_mean_rgb": runs["epoch"][0]["mean"],
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for key, value in figures.items():
        target = TARGETS.get(key)
        mark = "" if target is None else f"   (target < {target:g}: " \
            f"{'ok' if value < target else 'MISSED'})"
        print(f"{key:26s} {value:>10}{mark}")
    print(f"load average before/after: {result['loadavg_before']} / {result['loadavg_after']}")
    out = write_json(result, ROOT / "bench" / "results" / "bench_data.json")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if all(result["pass"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
