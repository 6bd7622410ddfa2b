"""CIFAR-10 reading: formats, decode-once cache, and every kind of bad input."""

import gzip
import io
import os
import pickle
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from core.cifar10 import MARKER, cache_entry_for, load_cifar10, parse_batch
from core.errors import DataError
from core.paths import cache_dir
from tests.cifar_fixtures import (
    TRAIN_NAMES,
    batch_dict,
    cifar_tarball_bytes,
    fixture_arrays,
    flip_byte_in_middle,
    write_cifar_folder,
    write_cifar_tarball,
)

# ../shared/cifar10 from the project root, or from a folder above it (a git worktree in wt/)
_SHARED_NAME = "shared/cifar10/cifar-10-python.tar.gz"
SHARED = next((p / _SHARED_NAME for p in Path(__file__).resolve().parents[1:]
               if (p / _SHARED_NAME).exists()),
              Path(__file__).resolve().parents[2] / _SHARED_NAME)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNSCOPE_DATA", raising=False)


def _expected(n_per_batch=20, seed=0):
    arrays = fixture_arrays(n_per_batch, seed=seed)
    train_x = np.concatenate([arrays[n][0] for n in TRAIN_NAMES])
    train_y = np.concatenate([arrays[n][1] for n in TRAIN_NAMES])
    return train_x, train_y, arrays["test_batch"][0], arrays["test_batch"][1]


def _cache_contents():
    decoded = cache_dir() / "decoded"
    return sorted(p.name for p in decoded.iterdir()) if decoded.exists() else []


def _check_matches(a, seed):
    train_x, train_y, test_x, test_y = _expected(seed=seed)
    assert a.train_images.dtype == np.uint8 and a.train_images.shape == (100, 32, 32, 3)
    assert a.train_labels.dtype == np.int64
    np.testing.assert_array_equal(a.train_images, train_x)
    np.testing.assert_array_equal(a.train_labels, train_y)
    np.testing.assert_array_equal(a.test_images, test_x)
    np.testing.assert_array_equal(a.test_labels, test_y)
    assert a.class_names[0] == "airplane" and len(a.class_names) == 10


@pytest.mark.parametrize("key_type", ["bytes", "str"])
def test_tarball_round_trip(tmp_path, key_type):
    tar = write_cifar_tarball(tmp_path, seed=1, key_type=key_type)
    _check_matches(load_cifar10(tar), seed=1)


@pytest.mark.parametrize("key_type", ["bytes", "str"])
def test_folder_round_trip(tmp_path, key_type):
    folder = write_cifar_folder(tmp_path, seed=2, key_type=key_type)
    _check_matches(load_cifar10(folder), seed=2)


def test_pixel_layout_is_rgb_planes_to_nhwc():
    images = np.zeros((1, 32, 32, 3), np.uint8)
    images[0, 5, 7] = (10, 20, 30)  # row 5, column 7
    raw = pickle.dumps(batch_dict(images, [3]), protocol=2)
    data = pickle.loads(raw, encoding="bytes")[b"data"][0]
    assert (data[5 * 32 + 7], data[1024 + 5 * 32 + 7], data[2048 + 5 * 32 + 7]) == (10, 20, 30)
    x, y = parse_batch(raw, "batch")
    assert tuple(x[0, 5, 7]) == (10, 20, 30) and x.sum() == 60 and y.tolist() == [3]


def test_latin1_style_pickle_with_str_keys_and_numpy_labels():
    images = np.full((2, 32, 32, 3), 7, np.uint8)
    d = {"data": images.transpose(0, 3, 1, 2).reshape(2, 3072), "labels": np.array([0, 9])}
    x, y = parse_batch(pickle.dumps(d, protocol=4), "b")
    assert x.shape == (2, 32, 32, 3) and y.tolist() == [0, 9]


def test_decode_once_then_memmap(tmp_path):
    tar = write_cifar_tarball(tmp_path)
    calls = []
    first = load_cifar10(tar, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (6, 6)
    entry = cache_entry_for(tar)
    assert first.cache_entry == entry and (entry / MARKER).exists()
    calls.clear()
    second = load_cifar10(tar, progress=lambda d, t: calls.append((d, t)))
    assert calls == []  # nothing decoded
    assert isinstance(second.train_images, np.memmap) and not second.train_images.flags.writeable
    np.testing.assert_array_equal(second.train_images, first.train_images)
    assert _cache_contents() == [entry.name]


def test_changed_source_gets_a_new_entry(tmp_path):
    tar = write_cifar_tarball(tmp_path, seed=1)
    load_cifar10(tar)
    write_cifar_tarball(tmp_path, seed=2)  # same path, new content (size or mtime differ)
    os.utime(tar, ns=(1, 1))
    _check_matches(load_cifar10(tar), seed=2)
    assert len(_cache_contents()) == 2


def test_damaged_or_incomplete_cache_entry_is_rebuilt(tmp_path):
    tar = write_cifar_tarball(tmp_path, seed=4)
    entry = load_cifar10(tar).cache_entry
    with open(entry / "train_images.npy", "r+b") as f:  # damage it behind our back
        f.truncate(1000)
    with pytest.warns(UserWarning, match="is damaged"):
        _check_matches(load_cifar10(tar), seed=4)
    # an entry without the completion marker (e.g. copied in half) is never trusted
    (entry / MARKER).unlink()
    (entry / "test_labels.npy").write_bytes(b"garbage")
    a = load_cifar10(tar)
    _check_matches(a, seed=4)
    assert (entry / MARKER).exists()


def test_unwritable_cache_falls_back_to_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    monkeypatch.setenv("RNNSCOPE_CACHE", str(blocker))  # mkdir below a file fails
    tar = write_cifar_tarball(tmp_path, seed=5)
    with pytest.warns(UserWarning, match="could not write the CIFAR-10 cache"):
        a = load_cifar10(tar)
    assert a.cache_entry is None
    _check_matches(a, seed=5)


def test_restricted_unpickler_refuses_arbitrary_globals(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    raw = pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=2)
    with pytest.raises(DataError, match="refused to load global"):
        parse_batch(raw, "evil_batch")
    assert not marker.exists()


@pytest.mark.skipif(not SHARED.exists(), reason="shared CIFAR-10 tarball not on this machine")
def test_real_cifar10_shapes_balance_and_means():
    a = load_cifar10(SHARED)
    assert a.train_images.shape == (50000, 32, 32, 3) and a.test_images.shape == (10000, 32, 32, 3)
    assert np.bincount(a.train_labels).tolist() == [5000] * 10
    assert np.bincount(a.test_labels).tolist() == [1000] * 10
    means = [a.train_images[..., c].mean(dtype=np.float64) / 255 for c in range(3)]
    np.testing.assert_allclose(means, [0.4913, 0.4821, 0.4465], atol=2e-4)  # shared README
    assert a.class_names == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                             "horse", "ship", "truck"]
    assert isinstance(load_cifar10(SHARED).train_images, np.memmap)  # second load: cached


# --------------------------------------------------------------------------- bad input

def _expect_data_error(source, *fragments):
    with pytest.raises(DataError) as err:
        load_cifar10(source)
    msg = str(err.value)
    assert "\n" not in msg, msg
    for frag in fragments:
        assert frag in msg, msg
    assert _cache_contents() == [], "a failed load left a cache entry or temp folder"
    return msg


def _rewrite_batch(folder, name, d, protocol=2):
    (folder / name).write_bytes(pickle.dumps(d, protocol=protocol))


def test_truncated_batch_file_cut_at_2mb(tmp_path):
    folder = write_cifar_folder(tmp_path, n_per_batch=700)  # 2.15 MB per batch
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[: 2 * 1024 * 1024])
    msg = _expect_data_error(folder, str(path), "truncated", "download")
    assert len(msg) < 300


def test_tarball_cut_short(tmp_path):
    raw = cifar_tarball_bytes()
    for cut in (len(raw) * 2 // 3, 300):
        path = tmp_path / f"cut{cut}.tar.gz"
        path.write_bytes(raw[:cut])
        _expect_data_error(path, str(path), "truncated")


def test_tarball_not_gzip(tmp_path):
    text = tmp_path / "page.tar.gz"  # e.g. an HTML error page saved under the tarball's name
    text.write_bytes(b"<html><body>502 Bad Gateway</body></html>\n" * 50)
    _expect_data_error(text, str(text), "not a gzip")
    plain = tmp_path / "plain.tar.gz"  # an uncompressed tar
    with tarfile.open(plain, "w") as tf:
        tf.add(write_cifar_folder(tmp_path / "src", n_per_batch=10), arcname="cifar-10-batches-py")
    _expect_data_error(plain, "not a gzip")
    gz_not_tar = tmp_path / "gz.tar.gz"
    gz_not_tar.write_bytes(gzip.compress(b"hello" * 1000))
    _expect_data_error(gz_not_tar, str(gz_not_tar), "not a readable tar.gz")
    empty = tmp_path / "empty.tar.gz"
    empty.write_bytes(b"")
    _expect_data_error(empty, "empty")


def test_tarball_missing_member(tmp_path):
    tar = write_cifar_tarball(tmp_path, omit=("data_batch_5",))
    _expect_data_error(tar, str(tar), "lacks data_batch_5")


def test_folder_with_missing_batches(tmp_path):
    folder = write_cifar_folder(tmp_path)
    (folder / "data_batch_2").unlink()
    (folder / "test_batch").unlink()
    _expect_data_error(folder, str(folder), "data_batch_2, test_batch", "incomplete")


def test_pickle_with_wrong_keys(tmp_path):
    folder = write_cifar_folder(tmp_path)
    _rewrite_batch(folder, "data_batch_1", {b"pixels": np.zeros((10, 3072), np.uint8),
                                            b"labels": [0] * 10})
    _expect_data_error(folder, str(folder / "data_batch_1"), "lacks the key(s) data")


def test_empty_batch_file(tmp_path):
    folder = write_cifar_folder(tmp_path)
    (folder / "test_batch").write_bytes(b"")
    _expect_data_error(folder, str(folder / "test_batch"), "is empty (0 bytes)", "download")


def test_pickle_that_is_not_a_dict(tmp_path):
    folder = write_cifar_folder(tmp_path)
    _rewrite_batch(folder, "test_batch", [1, 2, 3])
    _expect_data_error(folder, "test_batch", "holds a list")


@pytest.mark.parametrize("data", [np.zeros((10, 1024), np.uint8),       # wrong width
                                  np.zeros((10, 3072), np.float32),     # wrong dtype
                                  np.zeros((10, 3, 32, 32), np.uint8),  # wrong rank
                                  [[0] * 3072] * 10])                   # not an array
def test_pickle_with_wrong_data_shape(tmp_path, data):
    folder = write_cifar_folder(tmp_path)
    _rewrite_batch(folder, "data_batch_4", {b"data": data, b"labels": [0] * 10})
    _expect_data_error(folder, "data_batch_4", "expected uint8 (N, 3072)")


def test_pickle_with_wrong_label_count(tmp_path):
    folder = write_cifar_folder(tmp_path)
    _rewrite_batch(folder, "data_batch_4", {b"data": np.zeros((10, 3072), np.uint8),
                                            b"labels": [0] * 9})
    _expect_data_error(folder, "data_batch_4", "9 labels", "for 10 images")


@pytest.mark.parametrize("bad", [10, -1])
def test_labels_outside_range(tmp_path, bad):
    folder = write_cifar_folder(tmp_path)
    images, labels = fixture_arrays(20)["data_batch_2"]
    labels = labels.copy()
    labels[7] = bad
    _rewrite_batch(folder, "data_batch_2", batch_dict(images, labels))
    _expect_data_error(folder, "data_batch_2", f"label {bad} at index 7", "outside 0..9")


def test_labels_outside_range_inside_tarball(tmp_path):
    images, labels = fixture_arrays(20)["test_batch"]
    raw = pickle.dumps(batch_dict(images, np.where(labels == 3, 12, labels)), protocol=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        src = write_cifar_folder(tmp_path / "src")
        for name in TRAIN_NAMES + ["batches.meta"]:
            tf.add(src / name, arcname=f"cifar-10-batches-py/{name}")
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = len(raw)
        tf.addfile(info, io.BytesIO(raw))
    tar = tmp_path / "bad-labels.tar.gz"
    tar.write_bytes(buf.getvalue())
    _expect_data_error(tar, str(tar), "member test_batch", "label 12")


def test_bad_meta(tmp_path):
    folder = write_cifar_folder(tmp_path)
    _rewrite_batch(folder, "batches.meta", {b"label_names": [b"a", b"b"]})
    _expect_data_error(folder, "batches.meta", "label_names")


def test_unreadable_file_directory_in_place(tmp_path):
    folder = write_cifar_folder(tmp_path)
    (folder / "data_batch_1").unlink()
    (folder / "data_batch_1").mkdir()  # blocks reading even for root
    _expect_data_error(folder, str(folder / "data_batch_1"), "is a folder")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root reads files whatever their mode")
def test_unreadable_file_permission(tmp_path):
    folder = write_cifar_folder(tmp_path)
    (folder / "test_batch").chmod(0)
    try:
        _expect_data_error(folder, str(folder / "test_batch"), "permission denied")
    finally:
        (folder / "test_batch").chmod(0o644)
    tar = write_cifar_tarball(tmp_path / "t")
    tar.chmod(0)
    try:
        _expect_data_error(tar, str(tar), "permission denied")
    finally:
        tar.chmod(0o644)


def test_missing_source(tmp_path):
    _expect_data_error(tmp_path / "nope.tar.gz", "does not exist")


def test_interrupted_cache_write_leaves_nothing(tmp_path, monkeypatch):
    tar = write_cifar_tarball(tmp_path, seed=6)
    real_save, calls = np.save, []

    def save_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second array of the entry: the user hits Ctrl+C
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    monkeypatch.setattr(np, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_cifar10(tar)
    assert _cache_contents() == []  # neither the entry nor its temp folder
    monkeypatch.setattr(np, "save", real_save)
    _check_matches(load_cifar10(tar), seed=6)
    assert _cache_contents() == [cache_entry_for(tar).name]


# --------------------------------------------------------------------------- corrupt data

def test_tarball_with_one_flipped_byte_is_refused(tmp_path):
    tar = write_cifar_tarball(tmp_path)
    flip_byte_in_middle(tar)
    with pytest.raises(gzip.BadGzipFile, match="CRC"):  # what `gzip -t` reports
        gzip.decompress(tar.read_bytes())
    with tarfile.open(tar, "r:gz") as tf:  # tar alone does not notice: every member is there
        assert len(tf.getnames()) == 9
    msg = _expect_data_error(tar, str(tar), "corrupt", "CRC", "download")
    assert len(msg) < 300


def test_flipped_byte_that_breaks_a_pickle_is_reported_as_corruption(tmp_path):
    # a damaged download whose damage lands in a pickle's opcodes: the gzip trailer still holds
    # the CRC of the intact data, so the corruption, not a pickle error, is what to report
    with gzip.open(io.BytesIO(cifar_tarball_bytes())) as gz:
        plain = gz.read()
    broken = bytearray(plain)
    broken[plain.index(b"\x80\x02}") + 1] = 0x09  # the first pickle claims protocol 9
    body = gzip.compress(bytes(broken))
    tar = tmp_path / "bad-crc.tar.gz"
    tar.write_bytes(body[:-8] + zlib.crc32(plain).to_bytes(4, "little") + body[-4:])
    msg = _expect_data_error(tar, str(tar), "corrupt", "CRC")
    assert "pickle" not in msg


def _zero_pixels_in_place(entry):
    images = np.load(entry / "train_images.npy", mmap_mode="r+")
    images[3:5] = 0
    images.flush()
    del images


def _write_labels(entry, labels):
    np.save(entry / "train_labels.npy", labels, allow_pickle=False)


def test_cache_with_zeroed_pixels_is_rebuilt_with_a_warning(tmp_path):
    tar = write_cifar_tarball(tmp_path, seed=7)
    entry = load_cifar10(tar).cache_entry
    _zero_pixels_in_place(entry)
    with pytest.warns(UserWarning) as record:
        a = load_cifar10(tar)
    (w,) = record
    text = str(w.message)
    assert "\n" not in text and str(entry) in text and "train_images" in text
    assert "rebuild" in text and str(tar) in text
    _check_matches(a, seed=7)
    _check_matches(load_cifar10(tar), seed=7)  # rebuilt once; the next load is quiet again


def test_cache_with_labels_outside_0_to_9_is_rebuilt(tmp_path):
    tar = write_cifar_tarball(tmp_path, seed=8)
    entry = load_cifar10(tar).cache_entry
    labels = np.load(entry / "train_labels.npy")
    labels[11] = 12
    _write_labels(entry, labels)
    with pytest.warns(UserWarning, match="train_labels"):
        _check_matches(load_cifar10(tar), seed=8)


def test_cache_labels_are_range_checked_even_when_the_checksum_matches(tmp_path, monkeypatch):
    import json

    from core import cifar10

    tar = write_cifar_tarball(tmp_path, seed=9)
    entry = load_cifar10(tar).cache_entry
    labels = np.load(entry / "train_labels.npy")
    labels[0] = -3
    _write_labels(entry, labels)
    meta = json.loads((entry / "meta.json").read_text())
    meta["checksums"]["train_labels"] = cifar10.array_checksum(labels)
    (entry / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="label -3 .*outside 0..9"):
        _check_matches(load_cifar10(tar), seed=9)


def test_cache_entry_without_checksums_is_rebuilt(tmp_path):
    import json

    tar = write_cifar_tarball(tmp_path, seed=10)
    entry = load_cifar10(tar).cache_entry
    meta = json.loads((entry / "meta.json").read_text())
    del meta["checksums"]
    meta["format"] = 1  # an entry written before the checksums were recorded
    (entry / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"older rnnscope \(format 1\); rebuilding"):
        _check_matches(load_cifar10(tar), seed=10)
    assert _cache_contents() == [entry.name]


def test_damaged_cache_whose_source_cannot_be_decoded_is_an_error(tmp_path):
    tar = write_cifar_tarball(tmp_path, seed=11)
    entry = load_cifar10(tar).cache_entry
    _zero_pixels_in_place(entry)
    st = tar.stat()  # the source is overwritten with the same size and mtime: the entry still
    tar.write_bytes(b"\0" * st.st_size)  # belongs to it, but it cannot rebuild the entry
    os.utime(tar, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache_entry_for(tar) == entry
    with pytest.warns(UserWarning, match="is damaged"):
        msg = _expect_data_error(tar, str(entry), "damaged", "cannot be rebuilt", str(tar))
    assert len(msg.replace(str(entry), "").replace(str(tar), "")) < 300


def test_cache_of_a_deleted_source_is_not_used(tmp_path):
    tar = write_cifar_tarball(tmp_path, seed=12)
    load_cifar10(tar)
    tar.unlink()
    with pytest.raises(DataError, match="does not exist"):
        load_cifar10(tar)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_folder_of_a_killed_process_is_removed(tmp_path):
    decoded = cache_dir() / "decoded"
    dead = decoded / f".tmp-{_dead_pid()}-0badc0de"
    alive = decoded / f".tmp-{os.getpid()}-0fedcba9"  # a writer still running: left alone
    for d in (dead, alive):
        d.mkdir(parents=True)
        (d / "train_images.npy").write_bytes(b"\0" * 1000)
    tar = write_cifar_tarball(tmp_path, seed=13)
    _check_matches(load_cifar10(tar), seed=13)
    assert not dead.exists() and alive.exists()
    assert _cache_contents() == sorted([alive.name, cache_entry_for(tar).name])
