"""What a report shows, as plain arrays: one function for the command line and the app.

``python main.py report`` calls it for a loaded checkpoint, the app's Reports tab for the
current model; both then draw :func:`report.figures.report_figures` from the result.
"""

from __future__ import annotations

from core import analysis


def report_data(model, normalizer, splits, history: dict | None, *, model_name: str | None,
                split: str = "test", tsne_points: int = 1000, seed: int = 0, log=None,
                cancelled=None, **about) -> dict:
    """core.analysis.report_arrays on ``splits.<split>`` plus what it is: ``model`` (
    ``model_name``), ``data`` (the splits' description), ``split`` and any ``about`` keys
    (e.g. checkpoint=path)."""
    rd = analysis.report_arrays(model, normalizer, getattr(splits, split), history,
                                tsne_points=tsne_points, seed=seed, log=log,
                                cancelled=cancelled)
    rd.update(model=model_name, data=splits.description, split=split, **about)
    return rd
