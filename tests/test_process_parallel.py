"""The batch split over worker processes: equal to the one-pass model.loss (float64), shared
parameters, exact resume, and no worker or /dev/shm segment outliving a run however it ends."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.batch_parallel import parallel_loss
from core.config import TrainConfig
from core.datasets import load_data
from core.process_parallel import (
    SEGMENT_PREFIX,
    BatchLoss,
    ProcessPool,
    WorkerError,
    worker_processes,
)
from core.trainer import Trainer
from tests.tiny_models import assert_same_loss, random_batch, tiny_cnn_rnn, tiny_row_rnn

ROOT = Path(__file__).resolve().parents[1]
SHM = Path("/dev/shm")
pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="needs /dev/shm (Linux)")


def _segments(owner: int | None = None) -> set[str]:
    """This process's (or ``owner``'s) rnnscope segments in /dev/shm. Only its own: other runs
    on the machine (another test session, a developer's training run) come and go meanwhile."""
    prefix = f"{SEGMENT_PREFIX}{os.getpid() if owner is None else owner}_"
    return {p.name for p in SHM.iterdir() if p.name.startswith(prefix)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _worker_children(pid: int) -> list[int]:
    return worker_processes(pid)


def _tiny_positions(cell):
    """A CNN+RNN reading its 8x8 map as 64 positions: more timesteps (64) than X has rows."""
    from core.models import CNNRNN

    return CNNRNN(channels=(3, 4), hidden_dim=5, num_classes=4, dtype=np.float64, seed=2,
                  sequence="positions", cell=cell)


@pytest.mark.parametrize("make, workers, parent_part", [
    (lambda: tiny_row_rnn(window=3), 3, True), (tiny_cnn_rnn, 2, False),
    (lambda: _tiny_positions("rnn"), 2, True), (lambda: _tiny_positions("lstm"), 2, False),
])
def test_pool_loss_equals_one_pass_and_is_reproducible(make, workers, parent_part):
    model = make()
    before = _segments()
    with ProcessPool(model, workers, parent_part=parent_part) as pool:
        assert len(pool.pids) == (workers - 1 if parent_part else workers)
        assert set(pool.segments) <= _segments()
        for n, reg in [(10, 0.3), (7, 0.0), (2, 0.1), (13, 0.3)]:  # 2 < workers; 13 regrows
            X, y = random_batch(model, n, seed=n)
            ref = model.loss(X, y, reg, trace="norms")
            out = pool.loss(X, y, reg, trace="norms")
            assert_same_loss(out, ref)
            again = pool.loss(X, y, reg, trace="norms")
            assert again[0] == out[0]
            assert all(np.array_equal(again[1][k], out[1][k]) for k in out[1])
            assert np.array_equal(again[2].dh_norm, out[2].dh_norm)
            threads = parallel_loss(model, X, y, reg, trace="norms", workers=workers)
            assert_same_loss(out, threads)  # the thread split cuts and combines the same way
            loss2, grads2 = pool.loss(X, y, reg)
            assert loss2 == pytest.approx(out[0], rel=1e-12) and list(grads2) == list(out[1])
        full = pool.loss(X[:2], y[:2], 0.0, trace=True)[2]  # a full trace: one pass
        assert full.hidden is not None
        pids = pool.pids
    assert _segments() == before
    assert not any(_alive(p) for p in pids)


def test_parameters_are_shared_and_private_again_after_close():
    model = tiny_row_rnn()
    X, y = random_batch(model, 12, seed=4)
    pool = ProcessPool(model, 2).start()
    try:
        assert not model.params["W_hh"].flags.owndata  # a view on the shared block
        model.params["W_hh"] -= 0.2  # in place, like the optimizers: the worker sees it
        assert_same_loss(pool.loss(X, y, 0.1, "norms"), model.loss(X, y, 0.1, "norms"))
        model.params["W_xh"] = model.params["W_xh"] * 1.5  # replaced: adopted at the next call
        assert_same_loss(pool.loss(X, y, 0.1, "norms"), model.loss(X, y, 0.1, "norms"))
        shared = model.params["W_xh"]
    finally:
        pool.close()
    assert model.params["W_xh"] is not shared
    np.testing.assert_array_equal(model.params["W_xh"], tiny_row_rnn().params["W_xh"] * 1.5)
    model.params["W_hh"] += 1.0  # private memory: writable after the segments are gone
    pool.close()  # idempotent


def test_an_exception_in_a_worker_closes_the_pool_with_one_line():
    model = tiny_row_rnn()
    X, y = random_batch(model, 8, seed=5)
    y[6] = 9  # no such class: only the worker's half (images 4..7) fails
    before = _segments()
    pool = ProcessPool(model, 2).start()
    pids = pool.pids
    with pytest.raises(WorkerError, match=r"worker process 1 .* failed: IndexError") as info:
        pool.loss(X, y, 0.0, "norms")
    assert "\n" not in str(info.value) and "Traceback" in info.value.worker_traceback
    assert not pool.started and _segments() == before
    assert not any(_alive(p) for p in pids)
    assert isinstance(model.params["W_hh"], np.ndarray) and model.params["W_hh"].flags.owndata


def test_no_shared_memory_is_a_one_line_error_and_leaves_nothing(monkeypatch):
    from core import process_parallel

    model = tiny_row_rnn()
    X, y = random_batch(model, 6, seed=7)
    real = process_parallel.shared_memory.SharedMemory
    made = []

    def second_fails(*args, **kw):  # the parameters fit, the gradient block does not
        if made:
            raise OSError(28, "No space left on device")
        made.append(real(*args, **kw))
        return made[-1]

    before = _segments()
    monkeypatch.setattr(process_parallel.shared_memory, "SharedMemory", second_fails)
    loss = BatchLoss(model, 2)
    with pytest.raises(WorkerError, match=r"\(No space left on device\); train with workers = 1"):
        loss(X, y)
    assert loss.pool is None and _segments() == before and model.params["W_hh"].flags.owndata


@pytest.fixture(scope="module")
def probe():
    return load_data("probe", probe_params={"n_train": 240, "n_val": 60, "n_test": 60})


def _cfg(**kw):
    base = dict(model="row-rnn", hidden=16, optimizer="adam", lr=5e-3, batch_size=50,
                epochs=2, clip="norm", clip_threshold=5.0, seed=1, dtype="float64",
                augment=True, crop_pad=2, workers=2)
    base.update(kw)
    return TrainConfig(**base)


def test_trainer_on_processes_resumes_exactly(probe, tmp_path):
    before = _segments()
    full = Trainer(_cfg(), probe, checkpoint_dir=tmp_path / "full")
    full.run()
    part = Trainer(_cfg(), probe, checkpoint_dir=tmp_path / "part")
    part.listener = lambda e: part.cancel() if e.get("step") == 3 else None
    assert part.run()["reason"] == "cancelled" and part.step == 3
    resumed = Trainer.resume_from(tmp_path / "part" / "last.npz", probe)
    assert resumed.config.workers == 2 and resumed.pos > 0
    resumed.run()
    assert resumed.history["steps"] == full.history["steps"]
    assert resumed.history["evals"] == full.history["evals"]
    for k, v in full.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v)
    one = Trainer(_cfg(workers=1), probe)  # the same data and draws for every workers value
    one.run()
    np.testing.assert_allclose([s["loss"] for s in one.history["steps"]],
                               [s["loss"] for s in full.history["steps"]], rtol=1e-9)
    assert full._loss.pool is None and _segments() == before


def test_the_trainer_computes_a_part_in_the_parent_unless_told_not_to(probe):
    """train --workers 2: the parent and one worker process; the app (parent_part=False): two
    worker processes. The same parts are computed either way, so the runs are identical."""
    seen = {}
    for parent_part in (True, False):
        tr = Trainer(_cfg(epochs=1), probe, parent_part=parent_part)
        tr.listener = (lambda e, tr=tr, key=parent_part:
                       seen.setdefault(key, len(tr._loss.pool.pids)) if e["type"] == "step"
                       else None)
        tr.run()
        seen[(parent_part, "params")] = {k: v.copy() for k, v in tr.model.params.items()}
        seen[(parent_part, "losses")] = [s["loss"] for s in tr.history["steps"]]
    assert seen[True] == 1 and seen[False] == 2
    assert seen[(True, "losses")] == seen[(False, "losses")]
    for k, v in seen[(True, "params")].items():
        np.testing.assert_array_equal(seen[(False, "params")][k], v)


def test_divergence_ends_the_workers(probe):
    before = _segments()
    # a sane first step (so the pool has started), then the update blows the parameters up
    tr = Trainer(_cfg(optimizer="sgd", lr=1e4, clip="none", activation="relu", epochs=3,
                      dtype="float32"), probe)
    seen = []
    tr.listener = lambda e: seen.extend(tr._loss.pool.pids) if e["type"] == "step" else None
    assert tr.run()["reason"] == "diverged"
    assert seen and not any(_alive(p) for p in seen) and _segments() == before
    assert all(np.isfinite(v).all() for v in tr.model.params.values())


def test_batch_loss_with_one_worker_starts_no_process():
    model = tiny_row_rnn()
    X, y = random_batch(model, 6, seed=6)
    loss = BatchLoss(model, 1)
    assert loss(X, y, 0.1)[0] == model.loss(X, y, 0.1)[0]
    assert loss.pool is None
    loss.close()


def test_a_killed_worker_stops_train_with_one_line_error(tmp_path, capsys):
    from cli.main import main

    before = _segments()
    killed = []

    def kill_a_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            workers = _worker_children(os.getpid())
            if workers:
                time.sleep(0.5)  # mid-run: steps are being computed
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    rc = main(["train", "--data", "probe", "--model", "row-rnn", "--hidden", "16",
               "--batch-size", "50", "--epochs", "500", "--workers", "2",
               "--out", str(tmp_path / "run")])
    killer.join(5)
    err = capsys.readouterr().err.strip().splitlines()
    assert killed and rc == 1
    assert err[-1].startswith("error: training worker process 1") and "SIGKILL" in err[-1]
    assert not [line for line in err if "Traceback" in line]
    assert _segments() == before and not _worker_children(os.getpid())


def test_ctrl_c_ends_the_workers_and_saves(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: workers ignore it, the parent
    stops after the step, saves last.npz, and ends them."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "train", "--data", "probe", "--model",
         "row-rnn", "--hidden", "16", "--batch-size", "50", "--epochs", "500", "--workers",
         "2", "--out", str(tmp_path / "run")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        workers = []
        while not workers and time.monotonic() < deadline and proc.poll() is None:
            workers = _worker_children(proc.pid)
            time.sleep(0.05)
        assert workers, "no worker process appeared"
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert (tmp_path / "run" / "last.npz").exists()
    assert not any(_alive(p) for p in workers) and _segments(owner=proc.pid) == set()


def test_segments_a_killed_run_left_are_removed_by_the_next_pool():
    """A parent killed with SIGKILL cannot unlink its segments; the next pool does, and never
    touches those of a live process."""
    from multiprocessing import shared_memory

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = shared_memory.SharedMemory(name=f"{SEGMENT_PREFIX}{dead.pid}_{os.urandom(4).hex()}",
                                        create=True, size=16)
    live = shared_memory.SharedMemory(name=f"{SEGMENT_PREFIX}{os.getppid()}_{os.urandom(4).hex()}",
                                      create=True, size=16)
    orphan.close()
    try:
        model = tiny_row_rnn()
        with ProcessPool(model, 2):
            pass
        names = {p.name for p in SHM.iterdir()}
        assert orphan.name not in names and live.name in names
    finally:
        live.close()
        live.unlink()
        if orphan.name in {p.name for p in SHM.iterdir()}:
            orphan.unlink()
