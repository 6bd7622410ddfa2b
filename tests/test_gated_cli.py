"""The command line with gated cells and the CNN+RNN's position layout: train through
main.main on the probe task, the checkpoint's config, and resume refusing another cell."""

from __future__ import annotations

import json

import pytest

from core.checkpoint import load_checkpoint
from tests.test_cli_errors import expect_error, run

BASE = ["train", "--data", "probe", "--subset", "300", "--seed", "1", "--hidden", "8",
        "--workers", "1", "--epochs", "1"]


def test_train_an_lstm_on_the_probe_task(tmp_path, capsys):
    d = tmp_path / "lstm"
    code, out, err = run(capsys, *BASE, "--model", "row-rnn", "--cell", "lstm",
                         "--forget-bias", "2.0", "--out", d)
    assert code == 0, err
    assert "training row-rnn (lstm, H=8" in err
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["config"]["cell"] == "lstm" and metrics["config"]["forget_bias"] == 2.0
    assert 0.0 <= metrics["test_acc"] <= 1.0
    ck = load_checkpoint(d / "best.npz", expect_data="probe")
    assert ck.model.config["cell"] == "lstm" and ck.model.params["W_hh"].shape == (8, 32)
    assert ck.model.params["b_h"][8:16].tolist() != [2.0] * 8  # trained, from 2.0
    assert ck.meta["train_config"]["cell"] == "lstm"
    code, out, err = run(capsys, "evaluate", "--checkpoint", d / "best.npz", "--data", "probe",
                         "--json")
    assert code == 0 and json.loads(out)["accuracy"] == pytest.approx(metrics["test_acc"])


def test_train_a_gru_cnn_rnn_over_positions_and_resume_it(tmp_path, capsys):
    d = tmp_path / "gru"
    argv = [*BASE, "--model", "cnn-rnn", "--cell", "gru", "--sequence", "positions",
            "--bptt-window", "40"]
    code, _, err = run(capsys, *argv, "--out", d)
    assert code == 0, err
    ck = load_checkpoint(d / "last.npz")
    assert ck.model.config["sequence"] == "positions" and ck.model.T == 64
    assert ck.model.params["W_xh"].shape == (64, 24)  # D = C2 = 64 per position
    argv[argv.index("--epochs") + 1] = "2"
    code, _, err = run(capsys, *argv, "--resume", d / "last.npz", "--out", d)
    assert code == 0, err
    assert json.loads((d / "metrics.json").read_text())["resumed_from_step"] is not None


@pytest.mark.parametrize("flag, value, message", [
    ("--cell", "gru", "--cell: the checkpoint {ck} was trained with cell lstm, you asked for "
                      "gru"),
    ("--forget-bias", "3", "--forget-bias: the checkpoint {ck} was trained with forget bias "
                           "1.0, you asked for 3.0"),
])
def test_resume_refuses_another_cell(tmp_path, capsys, flag, value, message):
    d = tmp_path / "d"
    argv = [*BASE, "--model", "row-rnn", "--cell", "lstm"]
    assert run(capsys, *argv, "--out", d)[0] == 0
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    ck = d / "last.npz"
    line = expect_error(capsys, [*argv, "--resume", ck, "--out", d])
    assert line.startswith(f"error: {message.format(ck=ck)}"), line


def test_resume_refuses_a_cell_or_layout_a_vanilla_checkpoint_predates(tmp_path, capsys):
    """A checkpoint whose train_config has no 'cell'/'sequence' (written before they existed)
    was a vanilla row-layout run: asking for another cell or layout is refused, asking for
    the defaults is not."""
    import io
    import zipfile

    import numpy as np

    d = tmp_path / "d"
    argv = [*BASE, "--model", "cnn-rnn"]
    assert run(capsys, *argv, "--out", d)[0] == 0
    ck = d / "last.npz"
    with zipfile.ZipFile(ck) as zf:
        entries = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    raw = np.load(io.BytesIO(entries["meta_json.npy"]))
    meta = json.loads(raw.tobytes().decode("utf-8"))
    for key in ("cell", "sequence", "forget_bias"):
        meta["train_config"].pop(key)
        meta["model_config"].pop(key)
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=raw.dtype))
    entries["meta_json.npy"] = buf.getvalue()
    with zipfile.ZipFile(ck, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    line = expect_error(capsys, [*argv, "--sequence", "positions", "--resume", ck, "--out", d])
    assert "--sequence: the checkpoint" in line and "sequence rows" in line
    line = expect_error(capsys, [*argv, "--cell", "lstm", "--resume", ck, "--out", d])
    assert "--cell: the checkpoint" in line and "cell rnn" in line
    argv[argv.index("--epochs") + 1] = "2"
    code, _, err = run(capsys, *argv, "--cell", "rnn", "--sequence", "rows", "--resume", ck,
                       "--out", d)
    assert code == 0, err


def test_bad_cell_combinations_are_one_line_errors(tmp_path, capsys):
    expect_error(capsys, [*BASE, "--model", "row-rnn", "--cell", "gru", "--activation", "relu",
                          "--out", tmp_path / "a"], "activation", "vanilla cell")
    expect_error(capsys, [*BASE, "--model", "row-rnn", "--sequence", "positions",
                          "--out", tmp_path / "b"], "sequence", "cnn-rnn")
    expect_error(capsys, [*BASE, "--model", "row-rnn", "--cell", "lstm", "--init", "identity",
                          "--out", tmp_path / "c"], "init", "identity")
