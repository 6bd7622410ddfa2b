"""The memory bench: distances, variants, sizes, the memory.json schema, reproducibility
whatever the number of worker processes, stopping, and `python main.py memory` end to end
(tiny runs: H <= 8, a few hundred images, one epoch)."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import main as cli
from core import memory_bench as mb
from core.cells import CELLS, Cell
from core.errors import ConfigError
from core.models import RowRNN

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(hidden=6, epochs=1, n_train=120, n_val=40, n_test=40, gradient_images=20,
            batch_size=40)
TINY_ARGS = ["--hidden", "6", "--epochs", "1", "--train-images", "120", "--seeds", "1"]
RESULT_KEYS = {"cell", "variant", "activation", "init", "hidden", "lr", "distance", "seed",
               "cue_row", "test_acc", "val_acc", "g_first_over_last", "dh_norm", "dc_norm",
               "cue_mass", "connectivity_rows", "params", "epochs", "steps", "seconds",
               "diverged", "finish", "message"}
DOC_KEYS = {"cells", "distances", "seeds", "results", "variants", "connectivity", "chance",
            "cue_height", "uniform_mass", "settings", "complete", "seconds", "workers"}


def need(cell):
    if cell not in CELLS:
        pytest.skip(f"cell {cell!r} is not registered in core.cells.CELLS on this branch")


def tiny(**kw) -> mb.BenchConfig:
    return mb.BenchConfig(**{**TINY, **kw})


def numbers(doc):
    """The results without their wall times (everything that must reproduce)."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in doc["results"]]


# -- distances, variants, sizes ------------------------------------------------------------------
def test_distance_counts_steps_from_the_last_cue_row_to_the_last_row_read():
    runs = {r["distance"]: r for r in tiny(cells=("rnn",), distances=(0, 4, 28), seeds=1).runs()}
    assert runs[4]["cue_row"] == 24   # 0-based 24..27 = rows 25-28
    assert runs[28]["cue_row"] == 0   # rows 1-4
    assert runs[0]["cue_row"] == 28   # the cue ends on the last row
    r = tiny(cells=("rnn",), distances=(4,), cue_height=3, seeds=1).runs()[0]
    assert r["cue_row"] + r["cue_height"] - 1 == 31 - 4


def test_variant_specs_and_labels():
    vs = mb.parse_variants("rnn,rnn:tanh:orthogonal,rnn:identity:relu")
    assert [v.label for v in vs] == ["rnn-tanh-xavier", "rnn-tanh-orthogonal",
                                     "rnn-relu-identity"]
    assert mb.parse_variant("rnn", activation="relu", init="identity").label == \
        "rnn-relu-identity"


@pytest.mark.parametrize("spec, fragment", [
    ("rnn,rnn:tanh:xavier", "listed twice"),
    ("rnn:sigmoid", "not an activation"),
    ("rnn:relu:relu", "given twice"),
    ("transformer", "unknown cell"),
    ("rnn,,lstm", "no empty entries"),
])
def test_bad_variant_specs(spec, fragment):
    with pytest.raises(ConfigError, match=fragment):
        mb.parse_variants(spec)


def test_gated_variant_labels_and_the_activation_refusal():
    need("lstm")
    assert mb.parse_variant("lstm").label == "lstm"
    assert mb.parse_variant("lstm:orthogonal").label == "lstm-orthogonal"
    with pytest.raises(ConfigError, match="vanilla cell"):
        mb.parse_variant("lstm:relu")


@pytest.mark.parametrize("cell", sorted(set(CELLS) | {"lstm", "gru"}))
def test_param_count_is_the_models(cell):
    need(cell)
    for H in (1, 7, 33):
        model = RowRNN(hidden_dim=H, cell=cell)
        assert mb.param_count(cell, H) == sum(p.size for p in model.params.values())


def test_hidden_for_params_picks_the_closest_size(monkeypatch):
    from core import cells

    four = Cell(name="four", blocks=("i", "f", "o", "g"), forward=None, backward=None,
                init=None, trace=None)
    monkeypatch.setitem(cells._cells(), "four", four)
    budget = mb.param_count("rnn", 64)
    H = mb.hidden_for_params("four", budget)
    best = min(range(1, 200), key=lambda h: abs(mb.param_count("four", h) - budget))
    assert H == best and H < 64
    assert mb.hidden_for_params("rnn", mb.param_count("rnn", 50) + 3) == 50
    assert mb.hidden_for_params("rnn", 1) == 1


def test_match_params_gives_every_cell_about_the_first_cells_count():
    need("lstm")
    need("gru")
    vs = tiny(cells=("rnn", "lstm", "gru"), hidden=64, match="params").variants()
    assert vs[0]["hidden"] == 64
    for v in vs[1:]:
        assert abs(v["params"] - vs[0]["params"]) / vs[0]["params"] < 0.05
        assert v["hidden"] < 64


def test_learning_rates_defaults_and_overrides():
    cfg = tiny(cells=("rnn", "rnn:relu:identity"))
    assert [v["lr"] for v in cfg.variants()] == [mb.BENCH_LR["rnn"], mb.BENCH_RELU_LR]
    cfg = tiny(cells=("rnn", "rnn:relu:identity"), lr=mb.parse_lr(["rnn=1e-2"]))
    assert [v["lr"] for v in cfg.variants()] == [1e-2, 1e-2]
    cfg = tiny(cells=("rnn", "rnn:relu:identity"),
               lr=mb.parse_lr(["rnn=1e-2,rnn:relu:identity=1e-4"]))
    assert [v["lr"] for v in cfg.validate().variants()] == [1e-2, 1e-4]
    cfg = tiny(cells=("rnn", "rnn:relu:identity"), lr={"rnn-relu-identity": 3e-4})
    assert [v["lr"] for v in cfg.validate().variants()] == [mb.BENCH_LR["rnn"], 3e-4]


@pytest.mark.parametrize("kw, fragment", [
    (dict(distances=(4, 29)), "from 0 to 28"),
    (dict(distances=(4, 4)), "listed twice"),
    (dict(distances=()), "--distances"),
    (dict(distances=(26,), cue_height=8), "from 0 to 24"),
    (dict(lr={"gru2": 1e-3}), "none of the benched cells"),
    (dict(noise=2.0), "--noise"),
    (dict(match="flops"), "--match"),
    (dict(seeds=0), "--seeds"),
    (dict(init="spiral"), "--init"),
])
def test_bad_configurations(kw, fragment):
    with pytest.raises(ConfigError, match=fragment):
        tiny(cells=("rnn",), **kw).validate()


@pytest.mark.parametrize("text", ["lstm", "rnn=", "=1e-3", "rnn=-1", "rnn=fast", "rnn=nan"])
def test_bad_learning_rate_items(text):
    with pytest.raises(ConfigError, match="CELL=RATE"):
        mb.parse_lr([text])


# -- one run -------------------------------------------------------------------------------------
def test_gradient_profile_is_the_traces_per_image_dh_norm():
    rng = np.random.default_rng(0)
    model = RowRNN(hidden_dim=5, dtype=np.float64, seed=1)
    X = rng.standard_normal((6, 32, 96))
    y = rng.integers(0, 10, 6)
    prof = mb.gradient_profile(model, X, y)
    trace = model.loss(X, y, 0.0, trace="norms")[2]
    np.testing.assert_allclose(prof["dh_norm"], trace.dh_norm, rtol=1e-10)
    assert prof["dc_norm"] is None


def test_the_lstm_reports_its_cell_state_gradient():
    need("lstm")
    rng = np.random.default_rng(0)
    model = RowRNN(hidden_dim=5, cell="lstm", dtype=np.float64, seed=1)
    X, y = rng.standard_normal((4, 32, 96)), rng.integers(0, 10, 4)
    prof = mb.gradient_profile(model, X, y)
    assert prof["dc_norm"] is not None and prof["dc_norm"].shape == (32,)
    trace = model.trace(X, y)
    per_image = np.sqrt((trace.dc ** 2).sum(axis=2)).mean(axis=0)
    np.testing.assert_allclose(prof["dc_norm"], per_image, rtol=1e-8)


def test_one_run_result():
    spec = tiny(cells=("rnn",), distances=(2,), seeds=1).runs()[0]
    steps = []
    r = mb.run_one(spec, on_step=lambda *a: steps.append(a))
    assert set(r) == RESULT_KEYS
    assert r["variant"] == "rnn-tanh-xavier" and r["cell"] == "rnn"
    assert 0.0 <= r["test_acc"] <= 1.0 and 0.0 <= r["val_acc"] <= 1.0
    assert len(r["dh_norm"]) == 32 and r["dc_norm"] is None
    assert r["g_first_over_last"] == pytest.approx(r["dh_norm"][0] / r["dh_norm"][-1])
    assert r["params"] == mb.param_count("rnn", 6)
    assert r["epochs"] == 1.0 and r["steps"] == 3 and not r["diverged"]
    assert 0.0 <= r["cue_mass"] <= 1.0 and sum(r["connectivity_rows"]) == pytest.approx(1.0)
    assert [s[0] for s in steps] == [1, 2, 3] and all(s[1] == 3 for s in steps)


def test_a_diverging_run_is_recorded():
    spec = tiny(cells=("rnn:relu:identity",), distances=(4,), seeds=1, epochs=2,
                lr={"rnn": 50.0}).runs()[0]
    r = mb.run_one(spec)
    assert r["diverged"] is True and r["finish"] == "diverged"
    assert "diverged" in r["message"]
    assert 0.0 <= r["test_acc"] <= 1.0  # measured on the restored last good parameters


def test_stop_before_the_next_step():
    spec = tiny(cells=("rnn",), distances=(2,), seeds=1, epochs=5).runs()[0]
    steps = []
    r = mb.run_one(spec, on_step=lambda *a: steps.append(a), should_stop=lambda: bool(steps))
    assert r["cancelled"] is True and len(steps) == 1


# -- the bench -----------------------------------------------------------------------------------
def test_same_seeds_same_numbers_with_any_number_of_workers():
    cfg = tiny(cells=("rnn", "rnn:relu:identity"), distances=(2, 20), seeds=2)
    here = mb.run_bench(cfg, workers=1)
    events = []
    pooled = mb.run_bench(cfg, workers=2, progress=events.append)
    assert here["complete"] and pooled["complete"] and pooled["workers"] == 2
    assert numbers(here) == numbers(pooled)
    assert numbers(mb.run_bench(cfg, workers=1)) == numbers(here)
    assert [(r["variant"], r["distance"], r["seed"]) for r in pooled["results"]] == [
        (v, d, s) for v in ("rnn-tanh-xavier", "rnn-relu-identity") for d in (2, 20)
        for s in (0, 1)]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "bench_start" and kinds.count("run_done") == 8
    assert kinds.count("run_start") == 8 and "run_step" in kinds
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("workers", [1, 2])
def test_should_stop_ends_the_bench_and_its_processes(workers):
    cfg = tiny(cells=("rnn",), distances=(2, 6, 10, 14), seeds=2, epochs=50)
    seen = []

    def progress(ev):
        seen.append(ev["type"])

    t0 = time.monotonic()
    doc = mb.run_bench(cfg, workers=workers, progress=progress,
                       should_stop=lambda: "run_step" in seen)
    assert time.monotonic() - t0 < 60
    assert doc["complete"] is False and doc["results"] == []  # nothing finished its 50 epochs
    assert multiprocessing.active_children() == []


def test_bench_document_schema_and_summary():
    cfg = tiny(cells=("rnn",), distances=(2, 20), seeds=2)
    doc = mb.run_bench(cfg, workers=1)
    assert set(doc) == DOC_KEYS
    assert doc["cells"] == ["rnn-tanh-xavier"] and doc["distances"] == [2, 20]
    assert doc["seeds"] == 2 and len(doc["results"]) == 4
    assert doc["variants"][0]["params"] == doc["results"][0]["params"]
    summary = doc["connectivity"]["rnn-tanh-xavier"]
    masses = [r["cue_mass"] for r in doc["results"] if r["distance"] == 20]
    assert summary["20"]["cue_mass_mean"] == pytest.approx(np.mean(masses))
    assert summary["20"]["runs"] == 2
    table = mb.accuracy_table(doc)
    assert table[0][1] == pytest.approx(np.mean([r["test_acc"] for r in doc["results"]
                                                 if r["distance"] == 2]))


# -- the command line ----------------------------------------------------------------------------
def test_memory_command_end_to_end(tmp_path, capsys):
    out = tmp_path / "bench"
    code = cli.main(["memory", "--cells", "rnn,rnn:relu:identity", "--distances", "2,20",
                     *TINY_ARGS, "--workers", "2", "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    doc = json.loads((out / "memory.json").read_text())
    assert set(doc) == DOC_KEYS and doc["complete"] is True
    assert doc["cells"] == ["rnn-tanh-xavier", "rnn-relu-identity"]
    assert doc["distances"] == [2, 20] and doc["seeds"] == 1 and len(doc["results"]) == 4
    for r in doc["results"]:
        assert set(r) == RESULT_KEYS
        assert isinstance(r["test_acc"], float) and 0.0 <= r["test_acc"] <= 1.0
        assert isinstance(r["params"], int) and isinstance(r["diverged"], bool)
    for name in ("memory.png", "gradients.png", "connectivity.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "rnn-relu-identity" in stdout and "d=20" in stdout
    assert stderr.count("[4/4]") == 1  # a line per finished run
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("argv, fragment", [
    (["--distances", "4,x"], "--distances"),
    (["--distances", "40"], "from 0 to 28"),
    (["--cells", "rnn,transformer"], "unknown cell"),
    (["--lr", "rnn"], "CELL=RATE"),
    (["--lr", "gru7=1e-3"], "none of the benched cells"),
    (["--workers", "0"], "--workers"),
    (["--hidden", "0"], "--hidden"),
    (["--init", "spiral"], "--init"),
])
def test_bad_input_is_one_error_line(tmp_path, capsys, argv, fragment):
    code = cli.main(["memory", "--cells", "rnn", *TINY_ARGS, *argv,
                     "--out", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and fragment in lines[0], err
    assert not (tmp_path / "o" / "memory.json").exists()


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert cli.main(["memory", "--cells", "rnn", *TINY_ARGS, "--out", str(f)]) == 1
    assert "is a file" in capsys.readouterr().err


def test_a_locked_out_folder_is_refused(tmp_path, capsys):
    from filelock import FileLock

    from cli.commands import LOCK_NAME

    out = tmp_path / "busy"
    out.mkdir()
    with FileLock(str(out / LOCK_NAME)):
        code = cli.main(["memory", "--cells", "rnn", "--distances", "2", *TINY_ARGS,
                         "--out", str(out)])
    assert code == 1 and "another run" in capsys.readouterr().err


def test_help_does_not_load_numpy():
    code = "import sys, cli.main as m; m.build_parser(); print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ctrl_c_keeps_the_finished_runs_and_ends_the_workers(tmp_path):
    """A real Ctrl-C (SIGINT to the process group) while worker processes train."""
    out = tmp_path / "stopped"
    proc = subprocess.Popen(
        [sys.executable, "main.py", "memory", "--cells", "rnn", "--distances", "2,6,10,14",
         "--seeds", "2", "--hidden", "6", "--epochs", "400", "--train-images", "120",
         "--workers", "2", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        # the first finished run (about 5 s each): the others are under way, most still to come
        for line in proc.stderr:
            if line.startswith("[1/"):
                break
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    doc = json.loads((out / "memory.json").read_text())
    assert doc["complete"] is False
    # every process of the session (the workers; multiprocessing's resource tracker ends
    # on its own once the parent has gone) has ended: none left, or only zombies not yet reaped
    deadline = time.monotonic() + 10.0
    while True:
        ps = subprocess.run(["ps", "-o", "stat=,args=", "-s", str(proc.pid)],
                            capture_output=True, text=True).stdout
        alive = [ln for ln in ps.splitlines() if ln.strip() and not ln.lstrip().startswith("Z")]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert alive == []


def test_gated_cells_bench():
    need("lstm")
    need("gru")
    doc = mb.run_bench(tiny(cells=("lstm", "gru"), distances=(4,), seeds=1), workers=1)
    lstm, gru = doc["results"]
    assert lstm["cell"] == "lstm" and len(lstm["dc_norm"]) == 32
    assert gru["cell"] == "gru" and gru["dc_norm"] is None
    assert dataclasses.is_dataclass(mb.BenchConfig)


def test_progress_bars_on_a_terminal():
    """One bar per running run (two at once here), a line per finished run, none left open."""
    import io

    from cli.commands import MemoryProgress

    stream = io.StringIO()
    cfg = tiny(cells=("rnn",), distances=(2, 20), seeds=1)
    progress = MemoryProgress(stream=stream, tty=True)
    open_bars = []

    def watch(ev):
        progress(ev)
        open_bars.append(len(progress.bars))

    mb.run_bench(cfg, workers=2, progress=watch)
    progress.close()
    text = stream.getvalue()
    assert "[1/2] rnn-tanh-xavier" in text and "[2/2]" in text
    assert max(open_bars) >= 1 and progress.bars == {}
