"""The report of ``python main.py report`` for the current model, built on a worker thread.

The data is computed exactly as core.commands.report_data does for a checkpoint (predictions,
confusion, reliability, t-SNE of final hidden states, confident mistakes, a prediction grid,
gradient through time), but from a model snapshot and the loaded splits; the figures are the
CLI's (app/figures.py). matplotlib Figures are created here (no canvas) and wrapped in
FigureCanvasQTAgg on the GUI thread.
"""

from __future__ import annotations

import threading
import traceback

import numpy as np
from PySide6 import QtCore

from app.trace_job import ModelCache, model_text
from core.blas import limit_blas_threads
from core.errors import RnnscopeError

REPORT_ORDER = ["curves", "confusion", "reliability", "tsne", "gallery", "predictions",
                "grad_through_time"]


PREDICT_CHUNK = 1000   # images predicted between two checks of the cancel flag


class ReportCancelled(Exception):
    """The window closed (or a new report was asked for) while this one was being built."""


def _predict(model, norm, imageset, log=None, cancelled=None):
    """core.analysis.predict over ``imageset`` in chunks, checking ``cancelled()`` between
    them, so closing the window never waits for a whole 10,000-image test split."""
    from types import SimpleNamespace

    from core import analysis

    n = len(imageset)
    parts = []
    for a in range(0, n, PREDICT_CHUNK):
        if cancelled is not None and cancelled():
            raise ReportCancelled()
        if log:
            log(f"predicting {a:,} of {n:,} images ...")
        b = min(n, a + PREDICT_CHUNK)
        chunk = SimpleNamespace(images=imageset.images[a:b], labels=imageset.labels[a:b])
        parts.append(analysis.predict(model, norm, chunk, hidden=True))
    if not parts:
        return analysis.predict(model, norm, imageset, hidden=True)
    return analysis.Prediction(probs=np.concatenate([p.probs for p in parts]),
                               labels=np.concatenate([p.labels for p in parts]),
                               hidden=np.concatenate([p.hidden for p in parts]))


def report_data(snap: dict, splits, history: dict, split: str = "test", tsne_points: int = 500,
                seed: int = 0, log=None, cancelled=None) -> dict:
    """Plain arrays/dicts for the report figures (the layout of core.commands.report_data)."""
    from core import analysis, metrics

    model, norm = ModelCache().model(snap)
    imageset = getattr(splits, split)
    names = list(imageset.class_names)
    pred = _predict(model, norm, imageset, log=log, cancelled=cancelled)
    if cancelled is not None and cancelled():
        raise ReportCancelled()
    K = len(names)
    cm = metrics.confusion_matrix(pred.labels, pred.predicted, K)
    bins = metrics.reliability_bins(pred.probs, pred.labels)
    pick = analysis.sample_indices(len(imageset), tsne_points, seed=seed)
    if log:
        log(f"t-SNE of {len(pick)} final hidden states ...")
    embedding = (analysis.tsne_embedding(pred.hidden[pick], seed=seed) if len(pick) >= 3
                 else np.zeros((0, 2)))
    wrong = analysis.most_confident_mistakes(pred.probs, pred.labels, k=24)
    grid = analysis.sample_indices(len(imageset), 32, seed=seed + 1)
    steps, norms = analysis.grad_through_time(history)
    return {
        "model": model_text(snap), "data": splits.description, "split": split,
        "class_names": names, "history": history,
        "summary": metrics.summarize(pred.probs, pred.labels),
        "confusion": cm, "reliability": bins,
        "tsne": {"embedding": embedding, "labels": pred.labels[pick]},
        "gallery": {"images": np.asarray(imageset.images[wrong]), "labels": pred.labels[wrong],
                    "predicted": pred.predicted[wrong], "confidence": pred.confidence[wrong]},
        "grid": {"images": np.asarray(imageset.images[grid]), "labels": pred.labels[grid],
                 "predicted": pred.predicted[grid]},
        "grad_through_time": {"steps": steps, "norms": norms},
    }


def report_figures(rd: dict) -> dict:
    """name -> matplotlib Figure, the same builders and titles as app.figures.write_report."""
    from app import figures

    names = rd["class_names"]
    g, p, t = rd["gallery"], rd["grid"], rd["tsne"]
    what = f"{rd.get('model') or 'model'}"
    return {
        "curves": figures.training_curves_figure(rd.get("history") or {},
                                                 title=f"Training curves: {what}"),
        "confusion": figures.confusion_figure(rd["confusion"], names),
        "reliability": figures.reliability_figure(rd["reliability"]),
        "tsne": figures.tsne_figure(t["embedding"], t["labels"], names),
        "gallery": figures.gallery_figure(g["images"], g["labels"], g["predicted"],
                                          g["confidence"], names),
        "predictions": figures.prediction_grid_figure(p["images"], p["labels"], p["predicted"],
                                                      names),
        "grad_through_time": figures.grad_through_time_figure(
            rd["grad_through_time"]["steps"], rd["grad_through_time"]["norms"]),
    }


class ReportWorker(QtCore.QObject):
    """``ready(summary, {name: Figure})`` or ``failed(message)``; ``status(text)`` meanwhile."""

    status = QtCore.Signal(str)
    ready = QtCore.Signal(dict, dict)
    failed = QtCore.Signal(str)
    done = QtCore.Signal()

    def __init__(self, snapshot: dict, splits, history: dict, split: str = "test",
                 tsne_points: int = 500):
        super().__init__()
        self.snapshot, self.splits, self.history = snapshot, splits, history
        self.split, self.tsne_points = split, tsne_points
        self._cancel = threading.Event()

    def cancel(self):
        self._cancel.set()

    @QtCore.Slot()
    def run(self):
        limit_blas_threads(1)
        try:
            rd = report_data(self.snapshot, self.splits, self.history, self.split,
                             self.tsne_points, log=self.status.emit,
                             cancelled=self._cancel.is_set)
            if self._cancel.is_set():
                return
            self.status.emit("drawing figures ...")
            figs = report_figures(rd)
            if not self._cancel.is_set():
                summary = {"model": rd["model"], "data": rd["data"], "split": rd["split"],
                           **{k: v for k, v in rd["summary"].items()
                              if isinstance(v, (int, float))}}
                self.ready.emit(summary, figs)
        except ReportCancelled:
            pass
        except RnnscopeError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:
            traceback.print_exc()
            self.failed.emit(f"internal error while building the report: {exc!r}")
        finally:
            self.done.emit()
