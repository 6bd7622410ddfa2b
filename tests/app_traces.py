"""An explorer trace of an untrained tiny model, for the GUI tests that need one to show
(tests/test_gui_panels.py, tests/test_gui_views_clear.py): the panels display it without a
window, a trainer or a worker thread."""

import numpy as np

from core.config import TrainConfig


def untrained_trace(splits, model="row-rnn", index=0, **config):
    """``app.trace_job.explorer_trace`` of val image ``index`` under a fresh H = 8 model of kind
    ``model`` (more TrainConfig fields in ``config``), with the first 16 val images as the batch."""
    from app.trace_job import ModelCache, explorer_trace, snapshot_of
    from core.datasets import Normalizer
    from core.trainer import build_model_from_config

    cfg = TrainConfig(model=model, hidden=8, channels=(4, 4), init="orthogonal", **config)
    net = build_model_from_config(cfg)
    norm = Normalizer(cfg.normalization).fit(np.asarray(splits.train.images[:100]))
    snap = snapshot_of(net, norm, cfg.to_dict(), 0, "test")
    val = splits.val
    return explorer_trace(ModelCache(), snap, np.asarray(val.images[index]),
                          int(val.labels[index]), "val", index, list(splits.class_names),
                          np.asarray(val.images[:16]), np.asarray(val.labels[:16]))
