"""A stopped run continued in place on another number of worker processes (Trainer.reopen's
``workers``, what the app's "Train on all cores" does to Continue): the same run up to the
order of floating-point sums, and its worker processes end with it."""

import os
from pathlib import Path

import numpy as np
import pytest

from core.config import TrainConfig
from core.datasets import load_data
from core.process_parallel import SEGMENT_PREFIX
from core.trainer import Trainer

SHM = Path("/dev/shm")
pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="needs /dev/shm (Linux)")


def _my_segments() -> set[str]:
    mine = f"{SEGMENT_PREFIX}{os.getpid()}_"
    return {p.name for p in SHM.iterdir() if p.name.startswith(mine)}


def _cfg(**kw):
    base = dict(model="row-rnn", hidden=16, optimizer="adam", lr=5e-3, batch_size=50,
                epochs=2, clip="norm", clip_threshold=5.0, seed=1, dtype="float64", workers=1)
    base.update(kw)
    return TrainConfig(**base)


def _run_until(trainer, step):
    """Cancel at ``step``; returns the parameters then (the finish may restore the best ones
    over them, and continuing needs these, as the app keeps them)."""
    at_stop = None
    for ev in trainer.events():
        if ev["type"] == "step" and ev["step"] == step:
            at_stop = {k: v.copy() for k, v in trainer.model.params.items()}
            trainer.cancel()
    assert trainer.finished["reason"] == "cancelled"
    return at_stop


def test_reopen_on_more_and_fewer_processes_continues_the_same_run():
    probe = load_data("probe", probe_params={"n_train": 240, "n_val": 60, "n_test": 60})
    before = _my_segments()
    full = Trainer(_cfg(), probe)
    full.run()
    t = Trainer(_cfg(), probe)
    t.reopen(_run_until(t, 3), workers=2)              # 1 -> 2 processes
    assert t.config.workers == 2 and t.history["config"]["workers"] == 2
    at_stop = _run_until(t, 7)                          # past the first evaluation
    assert t._loss.pool is None and _my_segments() == before   # ended with the run
    t.reopen(at_stop, workers=1)                        # and back
    assert t.config.workers == 1
    t.run()
    assert t.step == full.step and t.finished["reason"] == "completed"
    np.testing.assert_allclose([s["loss"] for s in t.history["steps"]],
                               [s["loss"] for s in full.history["steps"]], rtol=1e-9)
    for k, v in full.model.params.items():
        np.testing.assert_allclose(t.model.params[k], v, rtol=1e-7, atol=1e-10)
    t2 = Trainer(_cfg(workers=2), probe)
    t2.reopen(_run_until(t2, 2))                        # None keeps the run's workers
    assert t2.config.workers == 2
    t2.cancel()
    t2.run()
    assert _my_segments() == before
