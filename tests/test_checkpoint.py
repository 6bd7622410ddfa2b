"""Checkpoints: round trip, atomic writes, and one-line errors for bad files."""

import errno
import json
import os
import threading
import zipfile

import numpy as np
import pytest

from core.checkpoint import check_dataset, load_checkpoint, save_checkpoint
from core.datasets import Normalizer
from core.errors import CheckpointError, WriteError
from core.models import CNNRNN, RowRNN
from core.optim import Adam


def _saved(tmp_path, name="ck.npz"):
    rng = np.random.default_rng(0)
    model = RowRNN(hidden_dim=8, seed=3)
    norm = Normalizer("per-channel").fit(rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8))
    opt = Adam(1e-3)
    grads = {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in model.params.items()}
    opt.step(model.params, grads)
    path = save_checkpoint(tmp_path / name, model, norm, opt.state_dict(),
                           {"step": 7, "note": "hello"}, {"perm": np.arange(5)})
    return path, model, norm, opt


def _one_line_error(path, **kw):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_round_trip(tmp_path):
    path, model, norm, opt = _saved(tmp_path)
    ck = load_checkpoint(path, expect_kind="row-rnn")
    assert type(ck.model) is RowRNN and ck.model.config == model.config
    for k, v in model.params.items():
        np.testing.assert_array_equal(ck.model.params[k], v)
        assert ck.model.params[k].dtype == v.dtype
    np.testing.assert_array_equal(ck.normalizer.mean, norm.mean)
    np.testing.assert_array_equal(ck.normalizer.std, norm.std)
    opt2 = Adam(1e-3)
    opt2.load_state_dict(ck.optimizer_state)
    assert opt2.t == 1
    np.testing.assert_array_equal(opt2.slots["m"]["W_hh"], opt.slots["m"]["W_hh"])
    assert ck.meta["step"] == 7 and ck.meta["note"] == "hello"
    assert ck.meta["model_kind"] == "row-rnn"
    np.testing.assert_array_equal(ck.extra["perm"], np.arange(5))
    # no pickled objects inside: every entry loads with allow_pickle=False as numbers
    with np.load(path, allow_pickle=False) as z:
        assert "meta_json" in z.files and z["meta_json"].dtype == np.uint8
        assert all(z[k].dtype != object for k in z.files)


def test_wrong_kind_is_refused(tmp_path):
    path, *_ = _saved(tmp_path)
    msg = _one_line_error(path, expect_kind="cnn-rnn")
    assert "row-rnn" in msg and "cnn-rnn" in msg


def test_wrong_architecture_shapes(tmp_path):
    path, model, norm, opt = _saved(tmp_path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["meta_json"].tobytes())
    meta["model_config"]["hidden_dim"] = 16  # params are for H = 8
    arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    assert "wrong architecture" in _one_line_error(bad)


def test_missing_parameters(tmp_path):
    model = CNNRNN(channels=(2, 2), hidden_dim=4)
    path = save_checkpoint(tmp_path / "c.npz", model, None, None, {})
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "param/W_conv1"}
    np.savez(tmp_path / "d.npz", **arrays)
    assert "another architecture" in _one_line_error(tmp_path / "d.npz")
    assert load_checkpoint(path).normalizer is None


def test_truncated_file(tmp_path):
    path, *_ = _saved(tmp_path)
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    assert "corrupted or truncated" in _one_line_error(cut)


def test_random_bytes(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert "not an rnnscope checkpoint (not an .npz archive)" in _one_line_error(junk)


@pytest.mark.parametrize("content, fragment", [
    (b"", "is empty (0 bytes)"),
    (b"epoch,loss\n1,2.3\n", "(a text file, not an .npz archive)"),
    (b"\x80\x02}q\x00.", "(a Python pickle, not an .npz archive)"),
    (None, "(a single .npy array, not an .npz archive)"),
])
def test_files_that_are_not_npz_archives(tmp_path, content, fragment):
    path = tmp_path / "x.npz"
    if content is None:
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    else:
        path.write_bytes(content)
    msg = _one_line_error(path)
    assert fragment in msg and "allow_pickle" not in msg


def test_metadata_with_a_bad_version(tmp_path):
    for version in ("1", None, 1.5):
        bad = tmp_path / "v.npz"
        meta = {"format": "rnnscope-checkpoint", "version": version}
        np.savez(bad, meta_json=np.frombuffer(json.dumps(meta).encode(), np.uint8))
        assert "version" in _one_line_error(bad)


def test_checkpoint_of_another_data_set_is_refused(tmp_path):
    model = RowRNN(hidden_dim=4, seed=0)
    probe = save_checkpoint(tmp_path / "p.npz", model, None, None,
                            {"data": {"name": "probe", "description": "memory probe"}})
    cifar = save_checkpoint(tmp_path / "c.npz", model, None, None, {"data": {"name": "cifar10"}})
    bare = save_checkpoint(tmp_path / "b.npz", model, None, None, {})
    msg = _one_line_error(probe, expect_data="cifar10")
    assert "trained on the memory-probe task, not CIFAR-10" in msg and "--data probe" in msg
    msg = _one_line_error(cifar, expect_data="probe")
    assert "trained on CIFAR-10, not the memory-probe task" in msg and "--data PATH" in msg
    assert load_checkpoint(probe, expect_data="probe").meta["data"]["name"] == "probe"
    assert load_checkpoint(cifar, expect_data="cifar10").model.config == model.config
    assert load_checkpoint(bare, expect_data="probe").meta.get("data") is None  # not recorded
    meta = load_checkpoint(probe).meta
    check_dataset(meta, None, probe)  # nothing expected: passes
    with pytest.raises(CheckpointError):
        check_dataset(meta, "cifar10", probe)


def test_flipped_bytes_inside_archive(tmp_path):
    path, *_ = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    for i in range(200, len(data) - 200, 97):  # damage member data, keep the directory
        data[i] ^= 0xFF
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(data))
    msg = _one_line_error(bad)
    assert "checkpoint" in msg


def test_plain_npz_without_meta(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, W=np.zeros(3))
    assert "not an rnnscope checkpoint" in _one_line_error(plain)


def test_meta_not_json(tmp_path):
    bad = tmp_path / "meta.npz"
    np.savez(bad, meta_json=np.frombuffer(b"{not json", np.uint8))
    assert "metadata" in _one_line_error(bad)


def test_missing_path_and_folder(tmp_path):
    assert "does not exist" in _one_line_error(tmp_path / "nope.npz")
    assert "folder" in _one_line_error(tmp_path)


def test_failed_write_keeps_previous_file(tmp_path):
    path, model, norm, opt = _saved(tmp_path)
    before = path.read_bytes()
    def savez_then_disk_full(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.MonkeyPatch.context() as mp, pytest.raises(WriteError, match="previous"):
        mp.setattr(np, "savez", savez_then_disk_full)  # the write fails mid-way
        save_checkpoint(path, model, norm, opt.state_dict(), {"loss": 1.0})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]
    assert zipfile.is_zipfile(path)


def test_damaged_files_only_ever_raise_checkpoint_error(tmp_path):
    path, *_ = _saved(tmp_path)
    data = path.read_bytes()
    rng = np.random.default_rng(5)
    bad = tmp_path / "damaged.npz"
    refused = 0
    for trial in range(60):
        b = bytearray(data)
        if trial % 3 == 0:
            b[rng.integers(0, len(b))] ^= 1 << int(rng.integers(0, 8))
        elif trial % 3 == 1:
            b = b[: rng.integers(0, len(b))]
        else:
            pos = int(rng.integers(0, len(b) - 64))
            b[pos:pos + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
        bad.write_bytes(bytes(b))
        try:
            load_checkpoint(bad)
        except CheckpointError as exc:
            assert "\n" not in str(exc)
            refused += 1
    assert refused >= 50  # a few flips land in bytes the zip format does not check


# --------------------------------------------------------------------------- parts of a bad type

def _rewrite(path, out, meta_edit=None, arrays_edit=None):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("meta_json").tobytes())
    if meta_edit:
        meta_edit(meta)
    if arrays_edit:
        arrays_edit(arrays)
    np.savez(out, **arrays, meta_json=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    return out


def test_optimizer_state_of_the_wrong_shape_is_refused_not_reset(tmp_path):
    path, model, *_ = _saved(tmp_path)

    def shrink(arrays):
        arrays["opt/m/W_hh"] = np.zeros((2, 2), np.float32)

    bad = _rewrite(path, tmp_path / "bad.npz", arrays_edit=shrink)
    msg = _one_line_error(bad)
    assert "m/W_hh" in msg and "(2, 2)" in msg and "(8, 8)" in msg


def test_kept_best_parameters_are_checked(tmp_path):
    path, model, norm, opt = _saved(tmp_path)
    best = {f"best/{k}": v.copy() for k, v in model.params.items()}
    good = save_checkpoint(tmp_path / "good.npz", model, norm, opt.state_dict(), {}, best)
    assert set(load_checkpoint(good).extra) == set(best)
    for name, edit, fragment in [
        ("nan", lambda a: a["extra/best/W_hh"].__setitem__((0, 0), np.nan), "NaN"),
        ("shape", lambda a: a.__setitem__("extra/best/b_h", np.zeros(3, np.float32)), "shape"),
        ("missing", lambda a: a.pop("extra/best/W_xh"), "missing ['W_xh']"),
    ]:
        msg = _one_line_error(_rewrite(good, tmp_path / f"{name}.npz", arrays_edit=edit))
        assert "best parameter" in msg and fragment in msg


def test_zip_entry_declaring_a_huge_array_is_refused_without_allocating_it(tmp_path):
    import io

    path, *_ = _saved(tmp_path)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 7, 10 ** 7)})
    bad = tmp_path / "huge.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            body = buf.getvalue() + b"\0" * 64 if info.filename == "param/W_hh.npy" else \
                src.read(info)
            dst.writestr(info.filename, body)
    msg = _one_line_error(bad)
    assert "entry param/W_hh is not a valid .npy array" in msg and "header declares" in msg


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    done = []
    worker = threading.Thread(target=lambda: done.append(_one_line_error(fifo)), daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # blocked in open(): give it a writer so the thread can end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("load_checkpoint blocked on a FIFO")
    assert "is not a regular file (a FIFO" in done[0]


def _training_checkpoint(tmp_path):
    from core.config import TrainConfig
    from core.datasets import load_data
    from core.trainer import Trainer

    splits = load_data("probe", probe_params={"n_train": 100, "n_val": 20, "n_test": 20})
    cfg = TrainConfig(model="row-rnn", hidden=4, optimizer="momentum", lr=1e-2, batch_size=40,
                      epochs=1, eval_every=1, workers=1)
    trainer = Trainer(cfg, splits, checkpoint_dir=tmp_path)
    for ev in trainer.events():
        if ev["type"] == "step" and ev["step"] == 2:
            trainer.cancel()
    return tmp_path / "last.npz", splits


def test_validate_training_state(tmp_path):
    from core.checkpoint import validate_training_state

    path, splits = _training_checkpoint(tmp_path)
    ck = load_checkpoint(path)
    validate_training_state(ck, path)  # the trainer's own checkpoint resumes
    assert ck.meta["pos"] == 80 and ck.optimizer_state["name"] == "momentum"
    model_only = save_checkpoint(tmp_path / "model.npz", ck.model, ck.normalizer, None, {})
    with pytest.raises(CheckpointError, match="holds a model but no training state"):
        validate_training_state(load_checkpoint(model_only), model_only)

    def swap_two(arrays):
        perm = arrays["extra/perm"]
        perm[0] = perm[1]  # a duplicate: some image would never be seen, another twice

    bad = _rewrite(path, tmp_path / "perm.npz", arrays_edit=swap_two)
    with pytest.raises(CheckpointError, match="not a permutation"):
        validate_training_state(load_checkpoint(bad), bad)

    def moments_gone(arrays):
        for k in [k for k in arrays if k.startswith("opt/")]:
            del arrays[k]

    bad = _rewrite(path, tmp_path / "moments.npz", arrays_edit=moments_gone)
    with pytest.raises(CheckpointError, match="no optimizer moments after 2 steps"):
        validate_training_state(load_checkpoint(bad), bad)


def test_metadata_fields_are_checked_on_every_load(tmp_path):
    path, _ = _training_checkpoint(tmp_path)
    for key, value, fragment in [
        ("step", "2", "step is '2' (text)"),
        ("best_val_acc", 7, "best_val_acc is 7"),
        ("history", [], "history is a list of 0"),
        ("optimizer_scalars", {"name": "momentum", "lr": 0.01, "momentum": 2.0,
                               "nesterov": False}, "optimizer_scalars.momentum is 2.0"),
    ]:
        def edit(meta, key=key, value=value):
            meta[key] = value

        bad = _rewrite(path, tmp_path / "m.npz", meta_edit=edit)
        msg = _one_line_error(bad)
        assert "corrupted metadata" in msg and fragment in msg, msg
