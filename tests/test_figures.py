"""report.figures: every builder returns a Figure that renders to a PNG with the right content."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import LogNorm, to_hex
from matplotlib.figure import Figure

from core import metrics
from report import figures

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
ROOT = Path(__file__).resolve().parents[1]


def _history(n_steps=60, T=8):
    rng = np.random.default_rng(0)
    steps = [{"step": s, "epoch": s / 20, "loss": 2.3 - s / 40 + 0.1 * rng.random(),
              "acc": 0.1 + s / 100, "lr": 0.01, "clip_fired": False, "grad_norm": 1.0}
             for s in range(n_steps)]
    evals = [{"type": "eval", "step": s, "epoch": s / 20, "train_loss": 2.0 - s / 50,
              "train_acc": 0.2 + s / 120, "val_loss": 2.1 - s / 60, "val_acc": 0.15 + s / 150,
              "best": True} for s in range(19, n_steps, 20)]
    dh = [[s, (np.exp(-0.5 * (T - 1 - np.arange(T))) * (1 + s / 100)).tolist()]
          for s in range(0, n_steps, 5)]
    return {"steps": steps, "evals": evals, "dh_norm": dh}


def _save(fig, tmp_path, name):
    assert isinstance(fig, Figure)
    path = figures.save_png(fig, tmp_path / f"{name}.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000, f"{name}.png is suspiciously small ({len(data)} bytes)"
    assert not list(tmp_path.glob(".*")), "temporary file left behind"
    return path


def test_figures_module_never_imports_pyplot_or_qt():
    code = ("import sys, report.figures\n"
            "bad = [m for m in sys.modules\n"
            "       if m == 'matplotlib.pyplot' or m.startswith('PySide6')]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_training_curves(tmp_path):
    fig = figures.training_curves_figure(_history())
    axes = fig.get_axes()
    assert len(axes) == 2
    labels = [line.get_label() for line in axes[1].get_lines()]
    assert "train accuracy" in labels and "validation accuracy" in labels
    # accuracy is drawn in percent
    val = next(line for line in axes[1].get_lines() if line.get_label() == "validation accuracy")
    assert np.nanmax(val.get_ydata()) > 1.0
    _save(fig, tmp_path, "curves")


def test_training_curves_empty_history_still_renders(tmp_path):
    fig = figures.training_curves_figure({})
    path = figures.save_png(fig, tmp_path / "empty.png")
    assert path.stat().st_size > 1000


def test_confusion_has_class_names_and_counts(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 10, 200))
    cm = metrics.confusion_matrix(y, p, 10)
    fig = figures.confusion_figure(cm, NAMES)
    ax = fig.get_axes()[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 100 and str(cm[0, 0]) == texts[0]
    assert len(fig.get_axes()) == 2  # matrix + colour bar
    _save(fig, tmp_path, "confusion")


def test_reliability_title_has_ece(tmp_path):
    probs = np.array([[0.9, 0.1], [0.08, 0.92], [0.55, 0.45], [0.3, 0.7]])
    bins = metrics.reliability_bins(probs, [0, 0, 0, 0])
    fig = figures.reliability_figure(bins)
    assert "ECE = 49.25%" in fig.get_axes()[0].get_title()
    assert len(fig.get_axes()) == 2
    _save(fig, tmp_path, "reliability")


def test_tsne_legend_lists_classes(tmp_path):
    rng = np.random.default_rng(2)
    labels = np.arange(100) % 10
    emb = rng.normal(size=(100, 2)) + labels[:, None]
    fig = figures.tsne_figure(emb, labels, NAMES)
    legend = fig.get_axes()[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == NAMES
    _save(fig, tmp_path, "tsne")


def test_gallery_captions_true_and_predicted(tmp_path):
    imgs = np.random.default_rng(3).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    fig = figures.gallery_figure(imgs, [3, 5, 0, 1, 2], [5, 3, 8, 9, 0],
                                 [0.9, 0.8, 0.7, 0.6, 0.5], NAMES, ncols=4)
    titles = [ax.get_title() for ax in fig.get_axes() if ax.get_title()]
    assert titles[0] == "true: cat\npred: dog 90%"
    assert len(titles) == 5 and len(fig.get_axes()) == 8  # 2 rows x 4, 3 blank
    _save(fig, tmp_path, "gallery")


def test_prediction_grid_green_right_red_wrong(tmp_path):
    imgs = np.random.default_rng(4).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    fig = figures.prediction_grid_figure(imgs, [0, 1, 2, 3], [0, 1, 5, 3], NAMES, ncols=4)
    axes = fig.get_axes()
    colors = [to_hex(ax.title.get_color()) for ax in axes]
    assert colors == [figures.CORRECT_COLOR, figures.CORRECT_COLOR, figures.WRONG_COLOR,
                      figures.CORRECT_COLOR]
    assert axes[2].get_title() == "dog\n(true: bird)"
    assert "3/4 right" in fig._suptitle.get_text()
    _save(fig, tmp_path, "grid")


def test_grad_through_time_uses_log_colour_and_colorbar(tmp_path):
    h = _history(T=8)
    steps = np.array([r[0] for r in h["dh_norm"]])
    norms = np.array([r[1] for r in h["dh_norm"]])
    norms[:, :2] = 0.0  # truncated BPTT: first two timesteps get no gradient
    fig = figures.grad_through_time_figure(steps, norms)
    ax = fig.get_axes()[0]
    mesh = ax.collections[0]
    assert isinstance(mesh.norm, LogNorm)
    assert mesh.norm.vmin == pytest.approx(norms[norms > 0].min())
    assert len(fig.get_axes()) == 3  # heatmap, colour bar, profiles
    assert "vanish" in ax.get_title()
    assert "timestep" in ax.get_xlabel() and "training step" in ax.get_ylabel()
    assert any("truncated" in t.get_text() for t in ax.texts)
    _save(fig, tmp_path, "gtt")


def test_grad_through_time_empty(tmp_path):
    fig = figures.grad_through_time_figure(np.zeros(0), np.zeros((0, 0)))
    assert figures.save_png(fig, tmp_path / "e.png").stat().st_size > 1000
