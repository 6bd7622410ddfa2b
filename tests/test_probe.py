"""The memory-probe task: shapes, determinism, cue encoding, matched noise, learnability."""

import numpy as np
import pytest

from core.errors import ConfigError
from core.probe import BRIGHT, CLASS_NAMES, DARK, class_patterns, make_probe


def test_shapes_dtypes_names_balance():
    train, test = make_probe(n_train=200, n_test=50, seed=0)
    assert train.images.shape == (200, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (50, 32, 32, 3) and test.labels.dtype == np.int64
    assert np.bincount(train.labels).tolist() == [20] * 10
    assert len(set(CLASS_NAMES)) == 10 and "red stripes" in CLASS_NAMES
    assert train.class_names == CLASS_NAMES and "cyan checks" in CLASS_NAMES


def test_deterministic_per_seed():
    a_train, a_test = make_probe(n_train=100, n_test=30, seed=5)
    b_train, b_test = make_probe(n_train=100, n_test=30, seed=5)
    np.testing.assert_array_equal(a_train.images, b_train.images)
    np.testing.assert_array_equal(a_test.labels, b_test.labels)
    c_train, _ = make_probe(n_train=100, n_test=30, seed=6)
    assert not np.array_equal(a_train.images, c_train.images)
    assert not np.array_equal(a_train.images[:30], a_test.images)  # independent streams


def test_cue_band_shows_the_class_pattern():
    train, _ = make_probe(n_train=100, n_test=10, cue_row=10, cue_height=3, noise=0.0, seed=1)
    patterns = class_patterns(10, 3)
    band = train.images[:, 10:13]
    expected = np.where(patterns[train.labels], BRIGHT, DARK).astype(np.uint8)
    np.testing.assert_array_equal(band, expected)
    # each class's band differs from every other class's band
    flat = patterns.reshape(10, -1)
    assert all(not np.array_equal(flat[i], flat[j]) for i in range(10) for j in range(i))
    # and every single row of it, too (the cue is readable one row at a time)
    rows = patterns[:, 0].reshape(10, -1)
    assert len({r.tobytes() for r in rows}) == 10


def test_noise_rows_match_cue_statistics_and_carry_no_label():
    train, _ = make_probe(n_train=1500, n_test=10, cue_row=20, cue_height=4, noise=0.5, seed=2)
    x = train.images.astype(np.float64)
    band, rest = x[:, 20:24], np.concatenate([x[:, :20], x[:, 24:]], axis=1)
    # same per-channel mean and spread in and outside the cue band: intensity gives nothing away
    np.testing.assert_allclose(rest.mean(axis=(0, 1, 2)), band.mean(axis=(0, 1, 2)), atol=1.5)
    np.testing.assert_allclose(rest.std(axis=(0, 1, 2)), band.std(axis=(0, 1, 2)), rtol=0.02)
    # the noise rows' mean colour does not depend on the class, the band's does
    rest_means = np.array([rest[train.labels == k].mean(axis=(0, 1, 2)) for k in range(10)])
    band_means = np.array([band[train.labels == k].mean(axis=(0, 1, 2)) for k in range(10)])
    assert np.ptp(rest_means, axis=0).max() < 1.0
    assert np.ptp(band_means, axis=0).min() > 40.0


@pytest.mark.parametrize("kwargs, match", [
    ({"cue_row": 30, "cue_height": 4}, "cue_row"),
    ({"cue_row": -1}, "cue_row"),
    ({"cue_height": 0}, "cue_height"),
    ({"noise": 1.5}, "noise"),
    ({"n_train": 0}, "n_train"),
    ({"n_test": 2.5}, "n_test"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_probe(**kwargs)


def _train_row_rnn(cue_row, steps=150, seed=0):
    """Adam-train a small tanh RowRNN (xavier) on the probe; -> test accuracy."""
    from core.datasets import Normalizer, to_row_sequences
    from core.models import RowRNN
    from core.optim import Adam

    train, test = make_probe(n_train=2000, n_test=500, cue_row=cue_row, seed=seed)
    norm = Normalizer().fit(train.images)
    model = RowRNN(hidden_dim=64, activation="tanh", init="xavier", seed=seed)
    opt = Adam(1e-3)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        idx = rng.integers(0, len(train), 64)
        _, grads = model.loss(to_row_sequences(norm.apply(train.images[idx])), train.labels[idx])
        opt.step(model.params, grads)
    scores = model.scores(to_row_sequences(norm.apply(test.images)))
    return float((scores.argmax(axis=1) == test.labels).mean())


def test_cue_near_the_bottom_is_learned_at_the_top_it_is_not():
    assert _train_row_rnn(cue_row=26) > 0.9
    assert _train_row_rnn(cue_row=0) < 0.2  # chance is 0.1
