"""load_data, splits/subsets, Normalizer, augmentation and row sequences."""

import json
import tracemalloc

import numpy as np
import pytest

from core.augment import augment_batch_naive, draw_augment_params
from core.datasets import Normalizer, augment_batch, load_data, to_row_sequences
from core.errors import ConfigError, DataError
from core.splits import split_indices, stratified_choice
from tests.cifar_fixtures import TRAIN_NAMES, fixture_arrays, write_cifar_tarball


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNSCOPE_DATA", raising=False)


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- rows

def test_row_sequences_layout():
    x = _images(3)
    seq = to_row_sequences(x)
    assert seq.shape == (3, 32, 96)
    for n, t, w, c in [(0, 0, 0, 0), (1, 5, 7, 2), (2, 31, 31, 1), (0, 12, 3, 1)]:
        assert seq[n, t, 3 * w + c] == x[n, t, w, c]  # row t, pixel w, channel c interleaved
    np.testing.assert_array_equal(seq[1, 9, 0:3], x[1, 9, 0])  # R,G,B of pixel 0
    with pytest.raises(ValueError):
        to_row_sequences(np.zeros((2, 32, 96)))


# --------------------------------------------------------------------------- splits

def _balanced_labels(n, seed=0):
    return np.random.default_rng(seed).permutation(np.arange(n) % 10)


def test_seed000_exact_on_full_size():
    idx = split_indices(np.zeros(50000, np.int64), 10000, "seed000")
    assert idx == {"train": slice(0, 49000), "val": slice(49000, 50000), "test": slice(0, 1000)}


def test_seed000_scales_on_small_sets():
    idx = split_indices(np.zeros(500, np.int64), 200, "seed000")
    assert idx == {"train": slice(0, 490), "val": slice(490, 500), "test": slice(0, 20)}
    idx = split_indices(np.zeros(10, np.int64), 5, "seed000")  # at least one image each
    assert idx == {"train": slice(0, 9), "val": slice(9, 10), "test": slice(0, 1)}
    with pytest.raises(ConfigError, match="takes no subset"):
        split_indices(np.zeros(500, np.int64), 200, "seed000", subset=100)


def test_default_without_subset_is_49k_1k_full_test():
    idx = split_indices(np.zeros(50000, np.int64), 10000, "default")
    assert idx == {"train": slice(0, 49000), "val": slice(49000, 50000), "test": slice(0, 10000)}


def test_seed001_stratified_40_percent_9_to_1():
    labels = _balanced_labels(50000)
    idx = split_indices(labels, 10000, "seed001", seed=3)
    tr, va = idx["train"], idx["val"]
    assert len(tr) == 18000 and len(va) == 2000 and idx["test"] == slice(0, 10000)
    assert np.bincount(labels[tr]).tolist() == [1800] * 10
    assert np.bincount(labels[va]).tolist() == [200] * 10
    assert len(np.intersect1d(tr, va)) == 0
    again = split_indices(labels, 10000, "seed001", seed=3)
    np.testing.assert_array_equal(again["train"], tr)   # reproducible
    other = split_indices(labels, 10000, "seed001", seed=4)
    assert not np.array_equal(other["train"], tr)       # the seed matters


@pytest.mark.parametrize("subset, n_total", [(1000, 1000), (0.1, 5000), (5000.0, 5000), (1.0,
                                                                                          50000)])
def test_subset_count_or_fraction(subset, n_total):
    labels = _balanced_labels(50000)
    idx = split_indices(labels, 10000, "default", subset=subset, seed=0)
    assert len(idx["train"]) + len(idx["val"]) == n_total
    assert len(idx["val"]) == round(n_total * 0.1)
    counts = np.bincount(labels[np.concatenate([idx["train"], idx["val"]])], minlength=10)
    assert counts.max() - counts.min() <= 1  # stratified


def test_stratified_choice_keeps_unbalanced_proportions():
    labels = np.repeat(np.arange(3), [600, 300, 100])
    pick = stratified_choice(labels, 100, np.random.default_rng(0))
    assert np.bincount(labels[pick]).tolist() == [60, 30, 10]
    assert len(np.unique(pick)) == 100 and np.all(np.diff(pick) > 0)


@pytest.mark.parametrize("bad", [0, 1, -5, 60001, 1.5, -0.2, 0.0, "half", True, None])
def test_bad_subsets_and_schemes(bad):
    labels = _balanced_labels(60000)
    if bad is None:
        with pytest.raises(ConfigError, match="scheme 'seed002' is unknown"):
            split_indices(labels, 100, "seed002")
        return
    with pytest.raises(ConfigError, match="subset"):
        split_indices(labels, 100, "default", subset=bad)


# --------------------------------------------------------------------------- normalizer

def test_per_channel_matches_float64_reference():
    x = _images(300, seed=1)
    norm = Normalizer().fit(x)
    ref = x.astype(np.float64)
    np.testing.assert_allclose(norm.mean, ref.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(norm.std, ref.std(axis=(0, 1, 2)), rtol=1e-9)
    out = norm.apply(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-4)
    assert norm.apply(x[:5], dtype=np.float64).dtype == np.float64


def test_per_pixel_and_unit():
    x = _images(200, seed=2)
    norm = Normalizer("per-pixel").fit(x)
    assert norm.mean.shape == (32, 32, 3)
    np.testing.assert_allclose(norm.mean, x.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.std, x.astype(np.float64).std(axis=0), rtol=1e-9)
    unit = Normalizer("unit").fit(x).apply(x)
    np.testing.assert_allclose(unit, x / 255.0, rtol=1e-6)
    assert unit.min() >= 0 and unit.max() <= 1


def test_constant_channel_is_only_centred():
    x = np.full((10, 32, 32, 3), 77, np.uint8)
    out = Normalizer().fit(x).apply(x)
    assert np.all(np.isfinite(out)) and np.all(out == 0)


@pytest.mark.parametrize("kind", ["per-channel", "per-pixel", "unit"])
def test_normalizer_json_round_trip(kind):
    x = _images(50, seed=3)
    norm = Normalizer(kind).fit(x[:40])
    back = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert back.kind == kind
    np.testing.assert_array_equal(back.apply(x[40:]), norm.apply(x[40:]))


def test_normalizer_errors():
    with pytest.raises(ConfigError, match="per-row"):
        Normalizer("per-row")
    with pytest.raises(RuntimeError):
        Normalizer().apply(_images(2))
    with pytest.raises(ConfigError):
        Normalizer.from_dict({"kind": "per-channel"})
    with pytest.raises(ConfigError):
        Normalizer.from_dict({"mean": [0, 0, 0]})


def test_fit_never_makes_a_float64_copy_of_the_set():
    x = _images(4000, seed=4)  # 12 MB uint8; a float64 copy would be 98 MB
    tracemalloc.start()
    Normalizer("per-pixel").fit(x)
    Normalizer("per-channel").fit(x)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 60e6, f"peak {peak / 1e6:.0f} MB"


# --------------------------------------------------------------------------- augmentation

def test_augment_fast_matches_naive_twin():
    x = _images(64, seed=5)
    fast = augment_batch(x, np.random.default_rng(11))
    naive = augment_batch_naive(x, np.random.default_rng(11))
    np.testing.assert_array_equal(fast, naive)
    assert fast.dtype == np.uint8 and fast.shape == x.shape


def test_augment_crop_semantics():
    x = _images(120, seed=6) | 1  # no zero pixels in the images themselves
    rng_params = np.random.default_rng(7)
    dy, dx, flips = draw_augment_params(len(x), rng_params, 4, True)
    out = augment_batch(x, np.random.default_rng(7))
    for i in range(len(x)):
        img = out[i][:, ::-1] if flips[i] else out[i]  # undo the flip
        sy, sx = 4 - dy[i], 4 - dx[i]  # the image moved down by sy, right by sx
        for r in range(32):
            for c in (0, 15, 31):
                r0, c0 = r - sy, c - sx
                inside = 0 <= r0 < 32 and 0 <= c0 < 32
                expect = x[i, r0, c0] if inside else np.zeros(3, np.uint8)
                np.testing.assert_array_equal(img[r, c], expect)
    assert {int(v) for v in dy} == set(range(9))  # every offset 0..2P occurs
    assert 30 < flips.sum() < 90


def test_augment_identity_without_pad_and_flip_and_seeding():
    x = _images(16, seed=8)
    np.testing.assert_array_equal(augment_batch(x, np.random.default_rng(0), 0, False), x)
    flipped = augment_batch(x, np.random.default_rng(0), crop_pad=0, flip=True)
    for i in range(16):
        assert np.array_equal(flipped[i], x[i]) or np.array_equal(flipped[i], x[i][:, ::-1])
    a = augment_batch(x, np.random.default_rng(3))
    assert np.array_equal(a, augment_batch(x, np.random.default_rng(3)))
    assert not np.array_equal(a, augment_batch(x, np.random.default_rng(4)))
    before = x.copy()
    augment_batch(x, np.random.default_rng(0))
    np.testing.assert_array_equal(x, before)  # input untouched


# --------------------------------------------------------------------------- load_data

def test_load_data_cifar_from_path_and_env(tmp_path, monkeypatch):
    tar = write_cifar_tarball(tmp_path, n_per_batch=100, n_test=200)
    splits = load_data(tar, scheme="seed000")
    assert splits.name == "cifar10"
    assert (len(splits.train), len(splits.val), len(splits.test)) == (490, 10, 20)
    arrays = fixture_arrays(100, 200)
    np.testing.assert_array_equal(splits.train.images[:100], arrays["data_batch_1"][0])
    np.testing.assert_array_equal(splits.val.images, arrays["data_batch_5"][0][90:])
    np.testing.assert_array_equal(splits.test.labels, arrays["test_batch"][1][:20])
    assert splits.train.labels.dtype == np.int64
    assert isinstance(splits.train.images, np.memmap)  # slices stay memory-mapped
    assert "490/10/20" in splits.description and str(tar) in splits.description
    json.dumps(splits.info)
    monkeypatch.setenv("RNNSCOPE_DATA", str(tmp_path))
    env = load_data(None, subset=200, seed=1)
    assert (len(env.train), len(env.val), len(env.test)) == (180, 20, 200)
    assert np.bincount(env.train.labels).tolist() == [18] * 10
    assert load_data("cifar10").info["source"] == str(tar.resolve())
    json.dumps(env.info)


def test_load_data_seed001_on_fixture(tmp_path):
    tar = write_cifar_tarball(tmp_path, n_per_batch=100)
    s = load_data(tar, scheme="seed001", seed=2)
    assert (len(s.train), len(s.val), len(s.test)) == (180, 20, 100)
    train_x = np.concatenate([fixture_arrays(100)[n][0] for n in TRAIN_NAMES])
    idx = s.info["indices"]
    assert idx == {"train": 180, "val": 20, "test": "0:100"}
    # every train image is one of the fixture's training images
    flat = {bytes(img) for img in train_x.reshape(500, -1)}
    assert all(bytes(img) in flat for img in s.train.images.reshape(180, -1))


def test_load_data_not_found_and_bad_options(tmp_path):
    with pytest.raises(DataError, match="CIFAR-10 not found.*download"):
        load_data()
    with pytest.raises(ConfigError, match="scheme"):
        load_data("probe", scheme="nope")
    with pytest.raises(ConfigError, match="unknown probe option"):
        load_data("probe", probe_params={"cue_rows": 3})
    with pytest.raises(ConfigError, match="not 'probe'"):
        load_data(tmp_path, probe_params={"cue_row": 3})
    with pytest.raises(DataError, match="does not exist"):
        load_data(tmp_path / "missing.tar.gz")


def test_load_data_probe():
    s = load_data("probe", probe_params={"n_train": 300, "n_val": 50, "n_test": 100,
                                         "cue_row": 28}, subset=100, seed=1)
    assert s.name == "probe" and (len(s.train), len(s.val), len(s.test)) == (100, 50, 100)
    assert np.bincount(s.train.labels).tolist() == [10] * 10
    assert "cue rows 29-32" in s.description and "100/50/100" in s.description  # rows from 1
    assert s.info["probe"]["cue_row"] == 28
    json.dumps(s.info)
    assert s.train.images.dtype == np.uint8 and s.val.images.shape == (50, 32, 32, 3)
    # val is drawn independently of train and test
    assert not np.array_equal(s.val.images, s.test.images[:50])
