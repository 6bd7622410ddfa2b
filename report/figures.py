"""Report figures as matplotlib ``Figure`` objects (no pyplot, no Qt).

Every builder takes plain arrays/dicts and returns a new ``matplotlib.figure.Figure``; the
command line saves them with :func:`save_png`, the app wraps them in ``FigureCanvasQTAgg``.

Letters: N = number of images, K = number of classes, S = recorded training steps,
T = timesteps, B = calibration bins.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from core.fileio import atomic_write

CORRECT_COLOR = "#1a9850"   # green
WRONG_COLOR = "#d73027"     # red


def save_png(fig: Figure, path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically (core.fileio: the previous file is kept on failure,
    a write error is a one-line WriteError)."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi),
                        what="report figure")


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    head = np.cumsum(values[: window - 1]) / np.arange(1, window)
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def training_curves_figure(history: dict, title: str | None = None) -> Figure:
    """Loss (left) and accuracy (right) against epochs from a trainer ``history`` dict.

    Uses ``history['steps']`` (per-batch loss/acc, drawn faint with a moving average) and
    ``history['evals']`` (train/val loss and accuracy at each evaluation, drawn with markers).
    """
    steps = history.get("steps") or []
    evals = history.get("evals") or []
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    if steps:
        ep = np.array([s["epoch"] for s in steps], dtype=float)
        loss = np.array([s["loss"] for s in steps], dtype=float)
        acc = np.array([s["acc"] for s in steps], dtype=float)
        w = max(1, len(steps) // 50)
        ax_loss.plot(ep, loss, color="0.75", lw=0.8, label="batch loss")
        ax_loss.plot(ep, _moving_average(loss, w), color="C0", lw=1.5,
                     label=f"batch loss (mean of {w})" if w > 1 else "_")
        ax_acc.plot(ep, 100 * _moving_average(acc, w), color="0.7", lw=1.0,
                    label=f"batch accuracy (mean of {w})" if w > 1 else "batch accuracy")
    if evals:
        ee = np.array([e["epoch"] for e in evals], dtype=float)
        for key, color, label in (("train", "C0", "train"), ("val", "C1", "validation")):
            lv = np.array([e.get(f"{key}_loss", np.nan) for e in evals], dtype=float)
            av = np.array([e.get(f"{key}_acc", np.nan) for e in evals], dtype=float)
            ax_loss.plot(ee, lv, "o-", color=color, ms=3, lw=1.2, label=f"{label} loss")
            ax_acc.plot(ee, 100 * av, "o-", color=color, ms=3, lw=1.2,
                        label=f"{label} accuracy")
        best = [e for e in evals if e.get("best")]
        if best:
            b = max(best, key=lambda e: e.get("val_acc", -1))
            ax_acc.axvline(b["epoch"], color="C1", ls=":", lw=1)
            ax_acc.annotate(f"best val {100 * b['val_acc']:.1f}%", (b["epoch"], 100 * b["val_acc"]),
                            textcoords="offset points", xytext=(4, -12), fontsize=8, color="C1")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if not steps and not evals:
        ax_loss.text(0.5, 0.5, "no training history", ha="center", va="center",
                     transform=ax_loss.transAxes)
    fig.suptitle(textwrap.fill(title or "Training curves", 110), fontsize=11)
    return fig


def confusion_figure(cm, class_names, title: str | None = None) -> Figure:
    """Confusion matrix ``(K, K)`` (rows true, columns predicted), coloured by row share."""
    cm = np.asarray(cm)
    K = cm.shape[0]
    totals = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, totals, out=np.zeros(cm.shape, float), where=totals > 0)
    fig = Figure(figsize=(7.2, 6.2), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(100 * share, cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(im, ax=ax, label="% of the true class")
    for i in range(K):
        for j in range(K):
            ax.text(j, i, f"{cm[i, j]}", ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(K), class_names, rotation=45, ha="right")
    ax.set_yticks(range(K), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    acc = np.trace(cm) / max(1, cm.sum())
    ax.set_title(title or f"Confusion matrix (counts; accuracy {100 * acc:.1f}% of {cm.sum()})")
    return fig


def reliability_figure(bins: dict, title: str | None = None) -> Figure:
    """Reliability diagram from :func:`core.metrics.reliability_bins`, ECE in the title.

    Top: accuracy of each confidence bin (bars) against the diagonal of perfect calibration;
    bottom: how many predictions fall in each bin.
    """
    edges = np.asarray(bins["edges"], dtype=float)
    acc = np.asarray(bins["accuracy"], dtype=float)
    conf = np.asarray(bins["confidence"], dtype=float)
    counts = np.asarray(bins["counts"], dtype=float)
    width = np.diff(edges)
    left = edges[:-1]
    fig = Figure(figsize=(6, 6.4), layout="constrained")
    ax, ax_n = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    filled = ~np.isnan(acc)
    ax.bar(left[filled], acc[filled], width=width[filled], align="edge", color="C0",
           edgecolor="white", label="accuracy in bin")
    gap_lo = np.minimum(acc, conf)[filled]
    gap_hi = np.maximum(acc, conf)[filled]
    ax.bar(left[filled], gap_hi - gap_lo, bottom=gap_lo, width=width[filled], align="edge",
           color="none", edgecolor=WRONG_COLOR, hatch="//", lw=0.8,
           label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    ax_n.bar(left, counts, width=width, align="edge", color="0.5", edgecolor="white")
    ax_n.set(xlabel="confidence (probability of the predicted class)", ylabel="predictions")
    ax_n.grid(alpha=0.3)
    ece = bins.get("ece", float("nan"))
    ax.set_title(title or f"Reliability diagram — ECE = {100 * ece:.2f}% "
                 f"({len(counts)} bins, {int(counts.sum())} images)")
    return fig


def tsne_figure(embedding, labels, class_names, title: str | None = None) -> Figure:
    """t-SNE scatter ``(N, 2)`` of final hidden states, coloured by true class ``(N,)``."""
    emb = np.asarray(embedding)
    labels = np.asarray(labels)
    fig = Figure(figsize=(8.4, 6.4), layout="constrained")
    ax = fig.subplots()
    cmap = _class_colors(len(class_names))
    for c, name in enumerate(class_names):
        m = labels == c
        if m.any():
            ax.scatter(emb[m, 0], emb[m, 1], s=9, color=cmap[c], alpha=0.8, label=name,
                       linewidths=0)
    if len(labels):
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=2, fontsize=9,
                  title="true class", frameon=False)
    else:  # t-SNE needs at least 3 points
        ax.text(0.5, 0.5, "no t-SNE: fewer than 3 points (--tsne-points)", ha="center",
                va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1 (axes have no units; only neighbourhoods matter)")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title or f"t-SNE of the final hidden state h_T ({len(labels)} test images)")
    return fig


def _class_colors(K: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if K <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(K)]


CAPTION_POINTS = 9   # image-grid captions: readable in a PNG and in the app's Reports tab


def _image_grid(images, captions, colors, ncols: int, title: str, cell: float = 1.9) -> Figure:
    images = np.asarray(images)
    n = len(images)
    ncols = max(1, min(ncols, n)) if n else 1
    nrows = max(1, -(-n // ncols))
    lines = max((c.count("\n") + 1 for c in captions), default=1)
    caption_in = lines * CAPTION_POINTS * 1.3 / 72
    fig = Figure(figsize=(cell * ncols + 0.2, (cell + caption_in + 0.1) * nrows + 0.6),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(images[i], interpolation="nearest")
        ax.set_title(captions[i], fontsize=CAPTION_POINTS, color=colors[i])
        for side in ax.spines.values():
            side.set_edgecolor(colors[i])
            side.set_linewidth(2)
    if n == 0:
        axes[0].text(0.5, 0.5, "nothing to show", ha="center", va="center",
                     transform=axes[0].transAxes)
    fig.suptitle(title, fontsize=12)
    return fig


def gallery_figure(images, labels, predicted, confidence, class_names, ncols: int = 6,
                   title: str | None = None) -> Figure:
    """Misclassified images ``uint8 (k, 32, 32, 3)`` with true / predicted class and confidence."""
    captions = [f"true: {class_names[t]}\npred: {class_names[p]} {100 * c:.0f}%"
                for t, p, c in zip(labels, predicted, confidence)]
    colors = [WRONG_COLOR if t != p else CORRECT_COLOR for t, p in zip(labels, predicted)]
    return _image_grid(images, captions, colors, ncols,
                       title or "Most confident mistakes (confidence = probability of the "
                       "predicted class)")


def prediction_grid_figure(images, labels, predicted, class_names, ncols: int = 8,
                           title: str | None = None) -> Figure:
    """Images ``uint8 (N, 32, 32, 3)`` captioned with the prediction: green right, red wrong."""
    captions = [class_names[p] if t == p else f"{class_names[p]}\n(true: {class_names[t]})"
                for t, p in zip(labels, predicted)]
    colors = [CORRECT_COLOR if t == p else WRONG_COLOR for t, p in zip(labels, predicted)]
    right = int(sum(t == p for t, p in zip(labels, predicted)))
    return _image_grid(images, captions, colors, ncols,
                       title or f"Predictions on random test images: {right}/{len(labels)} "
                       "right (green = correct, red = wrong)")


def _edges(centres: np.ndarray) -> np.ndarray:
    c = np.asarray(centres, dtype=float)
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def grad_through_time_figure(steps, norms, title: str | None = None) -> Figure:
    """Heatmap of ||dL/dh_t|| (log colour) over training step ``(S,)`` x timestep ``(S, T)``.

    Left: the full matrix (rows = training steps, columns = timesteps t = 1..T; 1 = first
    image row read, T = the last, where the loss is). Zeros (timesteps cut by truncated
    BPTT) are grey.
    Right: the profile over timesteps at the first, middle and last recorded step.
    """
    steps = np.asarray(steps)
    norms = np.asarray(norms, dtype=float)
    fig = Figure(figsize=(12, 5), layout="constrained")
    ax, ax_p = fig.subplots(1, 2, width_ratios=(2.2, 1))
    if norms.size == 0:
        for a in (ax, ax_p):
            a.text(0.5, 0.5, "no per-timestep gradient norms in the history", ha="center",
                   va="center", transform=a.transAxes)
        fig.suptitle(title or "Gradient through time")
        return fig
    S, T = norms.shape
    positive = norms[np.isfinite(norms) & (norms > 0)]
    vmin = float(positive.min()) if positive.size else 1e-12
    vmax = float(positive.max()) if positive.size else 1.0
    if vmax <= vmin:
        vmax = vmin * 10
    masked = np.ma.masked_where(~np.isfinite(norms) | (norms <= 0), norms)
    cmap = _viridis_with_grey()
    mesh = ax.pcolormesh(np.arange(T + 1) + 0.5, _edges(steps), masked,
                         norm=LogNorm(vmin=vmin, vmax=vmax), cmap=cmap, shading="flat")
    fig.colorbar(mesh, ax=ax, label="mean per-image ||dL/dh_t|| (log scale)")
    ax.set_xlabel(f"timestep t (1 = first row read ... {T} = last, where the loss is)")
    ax.set_ylabel("training step")
    cut = int(np.argmax(np.any(norms > 0, axis=0))) if np.any(norms > 0) else T
    if cut > 0:
        ax.text((cut + 1) / 2, float(np.mean(ax.get_ylim())),
                "no gradient\n(truncated\nBPTT)", ha="center", va="center", fontsize=9,
                color="0.3")
    ax.set_title("Gradient reaching each timestep during training\n"
                 "dark on the left = gradient vanishes before reaching the early rows", fontsize=10)
    picks = sorted({0, S // 2, S - 1})
    colors = ["C0", "C1", "C3"]
    for c, s in zip(colors, picks):
        row = np.where(norms[s] > 0, norms[s], np.nan)
        ax_p.semilogy(np.arange(1, T + 1), row, "o-", ms=2.5, color=c, label=f"step {steps[s]}")
    ax_p.set_xlabel("timestep t")
    ax_p.set_ylabel("||dL/dh_t|| (log scale)")
    ax_p.grid(alpha=0.3, which="both")
    ax_p.legend(fontsize=8)
    ax_p.set_title(_early_late_text(norms[-1], steps[-1]), fontsize=10)
    fig.suptitle(title or "Gradient through time (BPTT)")
    return fig


def _early_late_text(row: np.ndarray, step) -> str:
    """One line comparing the gradient at the first reached timestep with the last one."""
    T = len(row)
    reached = np.flatnonzero(np.isfinite(row) & (row > 0))
    if reached.size == 0 or not row[-1] > 0:
        return f"Profiles over timesteps (step {step})"
    t0 = int(reached[0])
    r = float(row[t0] / row[-1])
    ratio = f"{r:.2g} x" if r >= 0.01 else f"1/{1 / r:.3g} of"
    return f"Profiles; at step {step}, t={t0 + 1} gets\n{ratio} the gradient at t={T}"


def _viridis_with_grey():
    from matplotlib import colormaps

    return colormaps["viridis"].with_extremes(bad="0.85")


REPORT_ORDER = ("curves", "confusion", "reliability", "tsne", "gallery", "predictions",
                "grad_through_time")


def report_figures(rd: dict) -> dict[str, Figure]:
    """name (REPORT_ORDER) -> Figure for the report data of core.analysis.report_arrays with
    'model' and 'data' added (the command line's PNGs and the app's Reports tab)."""
    names = rd["class_names"]
    what = " — ".join(str(v) for v in (rd.get("model") or "model", rd.get("data")) if v)
    g, p, t = rd["gallery"], rd["grid"], rd["tsne"]
    return {
        "curves": training_curves_figure(rd.get("history") or {},
                                         title=f"Training curves: {what}"),
        "confusion": confusion_figure(rd["confusion"], names),
        "reliability": reliability_figure(rd["reliability"]),
        "tsne": tsne_figure(t["embedding"], t["labels"], names),
        "gallery": gallery_figure(g["images"], g["labels"], g["predicted"], g["confidence"],
                                  names),
        "predictions": prediction_grid_figure(p["images"], p["labels"], p["predicted"], names),
        "grad_through_time": grad_through_time_figure(rd["grad_through_time"]["steps"],
                                                      rd["grad_through_time"]["norms"]),
    }


def write_report(rd: dict, out_dir) -> list[Path]:
    """Save :func:`report_figures` as ``NAME.png`` files in ``out_dir`` (atomically each)."""
    out_dir = Path(out_dir)
    figs = report_figures(rd)
    return [save_png(figs[name], out_dir / f"{name}.png") for name in REPORT_ORDER]
