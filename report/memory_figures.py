"""The memory bench's figures, from a memory.json document (``core.memory_bench``).

Every builder takes the document dict and returns a new ``matplotlib.figure.Figure`` (no
pyplot, no Qt); :func:`write_memory_figures` saves them atomically (``report.figures.save_png``).

Letters: T = timesteps (32 image rows), d = distance from the last cue row to the last row read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from report.figures import save_png

FIGURE_NAMES = ("memory.png", "gradients.png", "connectivity.png")


def _runs(doc: dict, label: str, distance=None) -> list[dict]:
    return [r for r in doc.get("results", []) if r.get("variant") == label
            and (distance is None or r.get("distance") == distance)]


def _variant(doc: dict, label: str) -> dict:
    for v in doc.get("variants", []):
        if v.get("label") == label:
            return v
    return {"label": label}


def _legend_label(doc: dict, label: str) -> str:
    v = _variant(doc, label)
    if "params" in v:
        return f"{label} ({v['params']:,} params, H={v['hidden']})"
    return label


def _colors(doc: dict) -> dict:
    return {label: f"C{i % 10}" for i, label in enumerate(doc.get("cells", []))}


def _no_runs(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no finished runs{what}", ha="center", va="center",
            transform=ax.transAxes, color="0.4")


def _per_distance(doc: dict, label: str, key: str):
    """Distances with finished runs, and the mean / min / max of ``key`` over their seeds."""
    ds, mean, lo, hi = [], [], [], []
    for d in doc.get("distances", []):
        vals = [r[key] for r in _runs(doc, label, d) if r.get(key) is not None]
        if vals:
            ds.append(d)
            mean.append(np.mean(vals))
            lo.append(min(vals))
            hi.append(max(vals))
    return np.array(ds), np.array(mean), np.array(lo), np.array(hi)


def memory_figure(doc: dict) -> Figure:
    """Test accuracy against distance: per cell variant its mean over seeds (line), the
    min-max band over seeds, each seed's run (dots; a diverged run as an x), chance drawn."""
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.add_subplot()
    colors = _colors(doc)
    for label in doc.get("cells", []):
        c = colors[label]
        ds, mean, lo, hi = _per_distance(doc, label, "test_acc")
        if not len(ds):
            continue
        ax.fill_between(ds, 100 * lo, 100 * hi, color=c, alpha=0.18, lw=0)
        ax.plot(ds, 100 * mean, "o-", color=c, lw=1.8, ms=4, label=_legend_label(doc, label))
        runs = [r for r in _runs(doc, label) if r.get("test_acc") is not None]
        ok = [r for r in runs if not r.get("diverged")]
        bad = [r for r in runs if r.get("diverged")]
        ax.plot([r["distance"] for r in ok], [100 * r["test_acc"] for r in ok], ".", color=c,
                ms=3, alpha=0.6)
        if bad:
            ax.plot([r["distance"] for r in bad], [100 * r["test_acc"] for r in bad], "x",
                    color=c, ms=6, label=f"{label}: diverged run")
    chance = 100 * float(doc.get("chance", 0.1))
    ax.axhline(chance, color="0.35", ls="--", lw=1, label=f"chance ({chance:.0f}%)")
    if not doc.get("results"):
        _no_runs(ax, "")
    seeds = doc.get("seeds")
    ax.set(xlabel="distance d: rows read after the last cue row", ylabel="test accuracy (%)",
           ylim=(0, 102), xticks=list(doc.get("distances", [])),
           title=f"How far back can each cell remember? (mean and min-max over {seeds} "
                 f"seed{'s' if seeds != 1 else ''})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def _longest_distance(doc: dict):
    done = {r["distance"] for r in doc.get("results", [])}
    ds = [d for d in doc.get("distances", []) if d in done]
    return max(ds) if ds else None


def _mean_profile(runs: list[dict], key: str):
    rows = [r[key] for r in runs if r.get(key)]
    if not rows:
        return None
    a = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
    return np.nanmean(a, axis=0)


def gradients_figure(doc: dict, distance=None) -> Figure:
    """||dl/dh_t|| against t after training at ``distance`` (default the longest one with
    finished runs), one curve per variant (mean over seeds), shared log axis; ||dl/dc_t||
    dashed for a cell with a cell state (LSTM). The cue rows are shaded."""
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.add_subplot()
    d = _longest_distance(doc) if distance is None else distance
    colors = _colors(doc)
    drawn = False
    for label in doc.get("cells", []) if d is not None else []:
        runs = _runs(doc, label, d)
        dh = _mean_profile(runs, "dh_norm")
        if dh is None:
            continue
        t = np.arange(1, len(dh) + 1)
        ax.semilogy(t, np.where(dh > 0, dh, np.nan), "-", color=colors[label], lw=1.8,
                    label=f"{label}: ||dl/dh_t||")
        dc = _mean_profile(runs, "dc_norm")
        if dc is not None:
            ax.semilogy(t, np.where(dc > 0, dc, np.nan), "--", color=colors[label], lw=1.5,
                        label=f"{label}: ||dl/dc_t||")
        drawn = True
    if d is not None and drawn:
        height = int(doc.get("cue_height", 4))
        T = 32
        first = T - height - d + 1  # 1-based first cue row
        ax.axvspan(first - 0.5, first + height - 0.5, color="0.85", zorder=0,
                   label=f"cue rows {first}-{first + height - 1}")
        ax.legend(fontsize=8, loc="best")
    else:
        _no_runs(ax, "")
    ax.set(xlabel="timestep t (image row read, 1 = first)",
           ylabel="mean gradient norm over test images (log)",
           title="Gradient through time after training"
                 + (f", distance d = {d}" if d is not None else ""))
    ax.grid(alpha=0.3, which="both")
    return fig


def connectivity_figure(doc: dict) -> Figure:
    """Left: share of the connectivity ||d logit / d row|| that falls on the cue rows against
    distance (mean and min-max over seeds), with the share if every row counted alike.
    Right: the mean row profile at the longest distance, cue rows shaded."""
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ax, ax_rows = fig.subplots(1, 2)
    colors = _colors(doc)
    for label in doc.get("cells", []):
        ds, mean, lo, hi = _per_distance(doc, label, "cue_mass")
        if not len(ds):
            continue
        ax.fill_between(ds, 100 * lo, 100 * hi, color=colors[label], alpha=0.18, lw=0)
        ax.plot(ds, 100 * mean, "o-", color=colors[label], lw=1.8, ms=4, label=label)
    uniform = 100 * float(doc.get("uniform_mass", 4 / 32))
    ax.axhline(uniform, color="0.35", ls="--", lw=1,
               label=f"every row alike ({uniform:.1f}%)")
    ax.set(xlabel="distance d", ylabel="connectivity on the cue rows (%)", ylim=(0, 102),
           xticks=list(doc.get("distances", [])),
           title="Which rows did the decision use? (true class, test images)")
    ax.grid(alpha=0.3)
    d = _longest_distance(doc)
    for label in doc.get("cells", []) if d is not None else []:
        prof = _mean_profile(_runs(doc, label, d), "connectivity_rows")
        if prof is not None:
            ax_rows.plot(np.arange(1, len(prof) + 1), 100 * prof, "-", color=colors[label],
                         lw=1.6, label=label)
    if d is not None:
        height = int(doc.get("cue_height", 4))
        first = 32 - height - d + 1
        ax_rows.axvspan(first - 0.5, first + height - 0.5, color="0.85", zorder=0,
                        label="cue rows")
        ax_rows.legend(fontsize=8)
    if not doc.get("results"):
        _no_runs(ax, "")
        _no_runs(ax_rows, "")
    else:
        ax.legend(fontsize=8, loc="best")
    ax_rows.set(xlabel="image row (1 = top, read first)", ylabel="share of connectivity (%)",
                title="Connectivity per row" + (f", d = {d}" if d is not None else ""))
    ax_rows.grid(alpha=0.3)
    return fig


def memory_figures(doc: dict) -> dict[str, Figure]:
    return {"memory.png": memory_figure(doc), "gradients.png": gradients_figure(doc),
            "connectivity.png": connectivity_figure(doc)}


def write_memory_figures(doc: dict, out_dir) -> list[Path]:
    """memory.png, gradients.png and connectivity.png in ``out_dir``, each written atomically."""
    out_dir = Path(out_dir)
    return [save_png(fig, out_dir / name) for name, fig in memory_figures(doc).items()]
