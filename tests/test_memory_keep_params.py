"""The memory bench's keep_params option: each result carries a model that rebuilds to the
same predictions, and its probe data rebuilds from the recorded options; memory.json's results
are unchanged without it."""

from __future__ import annotations

import numpy as np

from core import memory_bench as mb
from core.datasets import Normalizer, load_data
from core.models import build_model

TINY = dict(hidden=6, epochs=1, n_train=120, n_val=40, n_test=40, gradient_images=20,
            batch_size=40)


def test_kept_params_rebuild_the_run_and_its_data():
    cfg = mb.BenchConfig(cells=("gru",), distances=(8,), seeds=1, **TINY)
    doc = mb.run_bench(cfg, workers=1, keep_params=True)
    r = doc["results"][0]
    trained = r["trained"]
    assert trained["model_config"]["cell"] == "gru"
    assert trained["probe_params"]["cue_row"] == r["cue_row"] == 32 - 4 - 8
    splits = load_data("probe", probe_params=trained["probe_params"], seed=trained["seed"])
    model = build_model(trained["model_config"])
    for k, v in trained["params"].items():
        model.params[k] = v
    norm = Normalizer.from_dict(trained["normalizer"])
    x = model.input_from_images(norm.apply(splits.test.images, dtype=model.dtype))
    acc = float(np.mean(np.argmax(model.scores(x), axis=1) == splits.test.labels))
    assert acc == r["test_acc"]
    plain = mb.run_bench(cfg, workers=1)["results"][0]
    assert "trained" not in plain
    assert {k: v for k, v in plain.items() if k != "seconds"} == {
        k: v for k, v in r.items() if k not in ("seconds", "trained")}
