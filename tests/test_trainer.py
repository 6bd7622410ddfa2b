"""The training loop on the memory-probe task with tiny real models (seconds, not minutes)."""

import json
import threading
import time

import numpy as np
import pytest

from core.checkpoint import load_checkpoint
from core.config import TrainConfig
from core.datasets import load_data
from core.errors import CheckpointError, ConfigError
from core.models import CNNRNN
from core.trainer import Trainer


@pytest.fixture(scope="module")
def probe():
    return load_data("probe", probe_params={"n_train": 240, "n_val": 60, "n_test": 60})


def _cfg(**kw):
    base = dict(model="row-rnn", hidden=16, optimizer="adam", lr=5e-3, batch_size=50,
                epochs=2, clip="norm", clip_threshold=5.0, seed=1)
    base.update(kw)
    return TrainConfig(**base)


def _strip(history):
    return json.loads(json.dumps(history, allow_nan=False))


def test_run_emits_contract_events(probe, tmp_path):
    seen = []
    tr = Trainer(_cfg(), probe, listener=seen.append, checkpoint_dir=tmp_path)
    events = list(tr.events())
    assert events == seen  # the listener gets exactly what the generator yields
    types = [e["type"] for e in events]
    steps = [e for e in events if e["type"] == "step"]
    assert len(steps) == 2 * tr.steps_per_epoch == 10  # 240 images / 50 -> 5 steps per epoch
    s = steps[-1]
    assert set(s) == {"type", "step", "epoch", "loss", "acc", "lr", "images_per_s", "dh_norm",
                      "clip", "seconds"}
    assert s["dh_norm"].dtype == np.float32 and s["dh_norm"].shape == (32,)
    assert s["clip"]["mode"] == "norm" and 0.0 <= s["acc"] <= 1.0 and s["images_per_s"] > 0
    assert s["epoch"] == pytest.approx(2.0) and steps[0]["epoch"] == pytest.approx(50 / 240)
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [5, 10]
    assert set(evals[0]) == {"type", "step", "epoch", "train_loss", "train_acc", "val_loss",
                             "val_acc", "best"}
    assert evals[0]["best"] is True
    ck = [e for e in events if e["type"] == "checkpoint"]
    assert {e["kind"] for e in ck} >= {"last", "best"}
    assert (tmp_path / "best.npz").exists() and (tmp_path / "last.npz").exists()
    assert types[-1] == "finished" and events[-1]["reason"] == "completed"
    assert events[-1] is tr.finished and tr.run() is tr.finished  # run() after the end: no-op
    h = _strip(tr.history)
    assert len(h["steps"]) == 10 and len(h["evals"]) == 2 and h["finished"]["reason"] == "completed"
    assert h["dh_norm"][0][0] == 1 and len(h["dh_norm"][0][1]) == 32
    assert set(h["steps"][0]) == {"step", "epoch", "loss", "acc", "lr", "clip_fired", "grad_norm"}


def test_loss_goes_down_and_best_params_restored(probe, tmp_path):
    tr = Trainer(_cfg(epochs=4, lr=1e-2), probe, checkpoint_dir=tmp_path)
    fin = tr.run()
    losses = [s["loss"] for s in tr.history["steps"]]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    best = load_checkpoint(tmp_path / "best.npz")
    assert best.meta["params_are"] == "best"
    for k, v in tr.model.params.items():  # the trainer's model now holds the best parameters
        np.testing.assert_array_equal(v, best.model.params[k])
    assert fin["best_val_acc"] == max(e["val_acc"] for e in tr.history["evals"])
    assert tr.evaluate("val")["acc"] == pytest.approx(fin["best_val_acc"])


@pytest.mark.parametrize("kw", [
    dict(augment=True, crop_pad=2, optimizer="adam", eval_every=3),
    dict(model="cnn-rnn", channels=(4, 4), hidden=8, optimizer="nesterov", lr=0.02,
         schedule="warmup-exp", augment=True, clip="value", bptt_window=5),
])
def test_same_seed_same_history(probe, kw):
    a = Trainer(_cfg(**kw), probe)
    a.run()
    b = Trainer(_cfg(**kw), probe)
    b.run()
    assert _strip(a.history) == _strip(b.history)
    c = Trainer(_cfg(**{**kw, "seed": 2}), probe)
    c.run()
    assert _strip(c.history)["steps"] != _strip(a.history)["steps"]


@pytest.mark.parametrize("kw, stop_at", [
    (dict(augment=True, optimizer="adam", schedule="step", decay=0.5, epochs=3), 7),
    (dict(model="cnn-rnn", channels=(4, 4), hidden=8, optimizer="momentum", lr=0.02,
          schedule="warmup-exp", augment=True, epochs=2, eval_every=4, patience=5), 6),
])
def test_resume_from_last_continues_exactly(probe, tmp_path, kw, stop_at):
    full = Trainer(_cfg(**kw), probe, checkpoint_dir=tmp_path / "full")
    full.run()

    part = Trainer(_cfg(**kw), probe, checkpoint_dir=tmp_path / "part")
    part.listener = lambda e: part.cancel() if e.get("step") == stop_at else None
    fin = part.run()
    assert fin["reason"] == "cancelled" and part.step == stop_at
    assert load_checkpoint(tmp_path / "part" / "last.npz").meta["step"] == stop_at

    resumed = Trainer.resume_from(tmp_path / "part" / "last.npz", probe)
    assert resumed.step == stop_at and resumed.pos > 0  # mid-epoch
    resumed.run()
    assert _strip(resumed.history) == _strip(full.history)
    for k, v in full.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v)
    assert resumed.checkpoint_dir == tmp_path / "part"


def test_resume_fits_no_normalizer_and_uses_the_checkpoints(probe, tmp_path, monkeypatch):
    from core.datasets import Normalizer

    first = Trainer(_cfg(epochs=1), probe, checkpoint_dir=tmp_path)
    first.run()
    saved = load_checkpoint(tmp_path / "last.npz").normalizer
    fits = []
    fit = Normalizer.fit
    monkeypatch.setattr(Normalizer, "fit", lambda self, x: fits.append(len(x)) or fit(self, x))
    resumed = Trainer.resume_from(tmp_path / "last.npz", probe, checkpoint_dir=None,
                                  overrides={"epochs": 2})
    assert fits == []            # the checkpoint's normaliser replaces nothing fitted twice
    np.testing.assert_array_equal(resumed.normalizer.mean, saved.mean)
    np.testing.assert_array_equal(resumed.normalizer.std, saved.std)
    Trainer(_cfg(epochs=1), probe, checkpoint_dir=None)
    assert fits == [240]         # a new run fits one on its training split, once
    with pytest.raises(ConfigError, match="not fitted"):
        Trainer(_cfg(epochs=1), probe, normalizer=Normalizer("per-channel"))


def test_resume_refuses_best_and_foreign_data(probe, tmp_path):
    Trainer(_cfg(epochs=1), probe, checkpoint_dir=tmp_path).run()
    with pytest.raises(CheckpointError, match="resume from last.npz"):
        Trainer.resume_from(tmp_path / "best.npz", probe)
    other = load_data("probe", probe_params={"n_train": 100, "n_val": 20, "n_test": 20})
    with pytest.raises(CheckpointError, match="trained on 240 images"):
        Trainer.resume_from(tmp_path / "last.npz", other)
    with pytest.raises(ConfigError, match="lr cannot change"):
        Trainer.resume_from(tmp_path / "last.npz", probe, overrides={"lr": 1.0})
    longer = Trainer.resume_from(tmp_path / "last.npz", probe, checkpoint_dir=None,
                                 overrides={"epochs": 2})
    assert longer.run()["reason"] == "completed" and longer.step == 10


def test_divergence_restores_last_good_params(probe):
    cfg = _cfg(optimizer="sgd", lr=1e4, clip="none", activation="relu", init="normal",
               gain=3.0, epochs=3)
    tr = Trainer(cfg, probe)
    fin = tr.run()
    assert fin["reason"] == "diverged"
    msg = fin["message"]
    assert "\n" not in msg and "learning rate" in msg and "clipping is off" in msg
    assert all(np.all(np.isfinite(v)) for v in tr.model.params.values())
    X = tr.model.input_from_images(tr.normalizer.apply(probe.train.images[:50]))
    loss, _ = tr.model.loss(X, probe.train.labels[:50])
    assert np.isfinite(loss)
    json.dumps(tr.history, allow_nan=False)


def test_divergence_gives_no_numpy_warnings(probe, recwarn):
    cfg = _cfg(optimizer="sgd", lr=1e4, clip="none", activation="relu", init="normal",
               gain=3.0, epochs=3)
    assert Trainer(cfg, probe).run()["reason"] == "diverged"
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_early_stopping_restores_best(probe, tmp_path):
    # a learning rate too small to change the val accuracy: no evaluation after the first is
    # better, so the run stops after 1 + patience evaluations
    tr = Trainer(_cfg(optimizer="sgd", lr=1e-12, eval_every=1, patience=2, epochs=5), probe,
                 checkpoint_dir=tmp_path)
    fin = tr.run()
    assert fin["reason"] == "early_stopped" and tr.step == 3
    assert [e["best"] for e in tr.history["evals"]] == [True, False, False]
    best = load_checkpoint(tmp_path / "best.npz")
    assert best.meta["step"] == best.meta["best_step"] == 1
    assert load_checkpoint(tmp_path / "last.npz").meta["step"] == 3
    for k, v in tr.model.params.items():
        np.testing.assert_array_equal(v, best.model.params[k])


def test_time_budget(probe):
    tr = Trainer(_cfg(epochs=50, max_minutes=0.5 / 60, eval_every=2), probe)
    t0 = time.perf_counter()
    fin = tr.run()
    wall = time.perf_counter() - t0
    assert fin["reason"] == "time_budget" and 0 < tr.step < 50 * tr.steps_per_epoch
    assert 0.5 <= fin["seconds"] <= wall < 5  # evaluations count once, not twice
    assert tr.history["evals"][-1]["step"] == tr.step  # a final evaluation at the stop


def test_pause_resume_cancel_from_another_thread(probe):
    tr = Trainer(_cfg(epochs=1000), probe)
    steps = []
    started = threading.Event()

    def listener(ev):
        if ev["type"] == "step":
            steps.append(ev["step"])
            if ev["step"] >= 3:
                started.set()

    tr.listener = listener
    worker = threading.Thread(target=tr.run)
    worker.start()
    try:
        assert started.wait(10)
        tr.pause()
        n_at_pause = len(steps)
        time.sleep(0.3)
        assert len(steps) <= n_at_pause + 1  # effective within one step
        n_paused = len(steps)
        time.sleep(0.2)
        assert len(steps) == n_paused and tr.paused
        tr.resume()
        deadline = time.time() + 10
        while len(steps) < n_paused + 3 and time.time() < deadline:
            time.sleep(0.01)
        assert len(steps) >= n_paused + 3
    finally:
        tr.cancel()
        worker.join(10)
    assert not worker.is_alive()
    assert tr.finished["reason"] == "cancelled"


def test_cancel_while_paused(probe):
    tr = Trainer(_cfg(epochs=1000), probe)
    tr.listener = lambda e: tr.pause() if e.get("step") == 2 else None
    worker = threading.Thread(target=tr.run)
    worker.start()
    time.sleep(0.3)
    assert tr.step == 2 and worker.is_alive()
    tr.cancel()
    worker.join(10)
    assert tr.finished["reason"] == "cancelled" and tr.step == 2


def test_evaluate_and_errors(probe):
    tr = Trainer(_cfg(), probe)
    for split in ("train", "val", "test"):
        m = tr.evaluate(split)
        assert 0.0 <= m["acc"] <= 1.0 and m["loss"] > 0
    assert tr.evaluate("train", max_images=20)["acc"] in {i / 20 for i in range(21)}
    with pytest.raises(ConfigError, match="does not match"):
        Trainer(_cfg(), probe, model=CNNRNN(channels=(2, 2), hidden_dim=4))
    with pytest.raises(ConfigError, match="lr"):
        Trainer(_cfg(lr=-1.0), probe)


def test_float64_run_keeps_dtype(probe):
    tr = Trainer(_cfg(dtype="float64", epochs=1), probe)
    assert tr.run()["reason"] == "completed"
    assert all(v.dtype == np.float64 for v in tr.model.params.values())


def test_two_workers_train_like_one(probe):
    """workers=2 splits each batch over two threads: the same run up to rounding (float64)."""
    one = Trainer(_cfg(dtype="float64", reg=1e-3), probe)
    two = Trainer(_cfg(dtype="float64", reg=1e-3, workers=2), probe)
    one.run()
    two.run()
    losses1 = [s["loss"] for s in one.history["steps"]]
    losses2 = [s["loss"] for s in two.history["steps"]]
    assert len(losses2) == len(losses1) == 10
    np.testing.assert_allclose(losses2, losses1, rtol=1e-9)
    for k, v in one.model.params.items():
        np.testing.assert_allclose(two.model.params[k], v, rtol=1e-8, atol=1e-10)
    assert two.history["config"]["workers"] == 2
    with pytest.raises(ConfigError, match="workers"):
        _cfg(workers=0).validate()


def test_stop_during_an_evaluation_abandons_it_and_resume_runs_it(probe, tmp_path):
    """Stop lands between evaluation batches; the evaluation stays due, so a resumed run
    evaluates first and ends with the uninterrupted run's history."""
    import core.trainer as trainer_module

    full = Trainer(_cfg(), probe, checkpoint_dir=tmp_path / "full")
    full.run()

    part = Trainer(_cfg(), probe, checkpoint_dir=tmp_path / "part")
    batches = []
    real = part._batch_metrics

    def one_batch_then_stop(images, labels):
        batches.append(len(labels))
        part.cancel()      # Stop pressed while the first evaluation batch runs
        return real(images, labels)

    part._batch_metrics = one_batch_then_stop
    old, trainer_module.EVAL_BATCH = trainer_module.EVAL_BATCH, 60
    try:
        events = list(part.events())
    finally:
        trainer_module.EVAL_BATCH = old
    assert events[-1]["reason"] == "cancelled" and part.step == part.steps_per_epoch
    assert batches == [60]                      # the 240 train-eval images: one batch of 4
    assert not any(e["type"] == "eval" for e in events)
    assert load_checkpoint(tmp_path / "part" / "last.npz").meta["eval_pending"] is True

    resumed = Trainer.resume_from(tmp_path / "part" / "last.npz", probe)
    events = list(resumed.events())
    assert events[0]["type"] == "eval" and events[0]["step"] == part.step
    assert _strip(resumed.history) == _strip(full.history)


def _strict_json(path):
    """Load with a parser that refuses NaN/Infinity literals (RFC 8259 JSON)."""
    def refuse(token):
        raise ValueError(f"non-finite literal {token} in {path}")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_a_finite_but_absurd_loss_is_divergence(probe, tmp_path):
    # lr 1e6 with Adam and no clipping: the loss stays finite (~1e6..1e7), far above ln 10
    tr = Trainer(_cfg(lr=1e6, clip="none", epochs=2), probe, checkpoint_dir=tmp_path)
    fin = tr.run()
    assert fin["reason"] == "diverged", fin["message"]
    assert fin["message"].startswith("diverged at step ") and "chance level" in fin["message"]
    X = tr.model.input_from_images(tr.normalizer.apply(probe.val.images))
    loss, _ = tr.model.loss(X, probe.val.labels)
    assert loss < 10 * np.log(10)  # the restored parameters give a sane loss


def test_overflow_to_inf_is_divergence_and_leaves_the_last_good_params(probe, tmp_path):
    # lr 1e30 plain SGD: float32 overflows within a step or two, before the first evaluation
    tr = Trainer(_cfg(lr=1e30, optimizer="sgd", clip="none", epochs=2), probe,
                 checkpoint_dir=tmp_path)
    fin = tr.run()
    assert fin["reason"] == "diverged"
    json.dumps(tr.history, allow_nan=False)
    ck = load_checkpoint(tmp_path / "last.npz")  # written although no evaluation ran
    for k, v in ck.model.params.items():
        assert np.all(np.isfinite(v))
        np.testing.assert_array_equal(v, tr.model.params[k])
    assert ck.meta["params_are"] == "last_good"
    with pytest.raises(CheckpointError, match="diverged, not a state to resume"):
        Trainer.resume_from(tmp_path / "last.npz", probe)


def test_history_and_checkpoint_meta_are_strict_json(probe, tmp_path):
    tr = Trainer(_cfg(lr=1e30, optimizer="sgd", clip="none", epochs=1), probe,
                 checkpoint_dir=tmp_path)
    tr.history["steps"].append({"step": 0, "loss": float("inf"), "acc": float("nan")})
    tr.run()

    def refuse(name):
        raise AssertionError(f"{name} in the checkpoint's JSON")

    with np.load(tmp_path / "last.npz") as z:  # the raw metadata, before the loader's checks
        meta = json.loads(z["meta_json"].tobytes().decode("utf-8"), parse_constant=refuse)
    assert meta["history"]["steps"][0]["loss"] is None


def test_nonfinite_eval_loss_is_divergence(probe, monkeypatch):
    tr = Trainer(_cfg(epochs=1), probe)
    monkeypatch.setattr(tr, "_metrics", lambda *a, **k: {"loss": None, "acc": 0.1})
    fin = tr.run()
    assert fin["reason"] == "diverged" and "loss became NaN or inf" in fin["message"]
    assert fin["message"].startswith("diverged at step 5 ")  # after the 5th update
