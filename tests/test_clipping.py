"""Clipping records against hand-computed cases."""

import json
import math

import numpy as np
import pytest

from core.clipping import clip_gradients
from core.errors import ConfigError


def _grads():
    # a: norm 5 (3, 4); b: norm 12 (elements 12, 0, 0) -> global norm 13
    return {"a": np.array([3.0, -4.0]), "b": np.array([[12.0, 0.0, 0.0]])}


def test_value_clipping_hand_computed():
    g = _grads()
    rec = clip_gradients(g, "value", 3.5)
    # a -> (3, -3.5), b -> (3.5, 0, 0)
    np.testing.assert_array_equal(g["a"], [3.0, -3.5])
    np.testing.assert_array_equal(g["b"], [[3.5, 0.0, 0.0]])
    assert rec.fired
    assert rec.norm_before == pytest.approx(13.0)
    after = math.sqrt(9 + 3.5**2 + 3.5**2)
    assert rec.norm_after == pytest.approx(after)
    assert rec.per_param["a"] == pytest.approx(
        {"norm_before": 5.0, "norm_after": math.sqrt(9 + 12.25), "fraction_clipped": 0.5})
    assert rec.per_param["b"] == pytest.approx(
        {"norm_before": 12.0, "norm_after": 3.5, "fraction_clipped": 1 / 3})
    dot = 3 * 3 + 4 * 3.5 + 12 * 3.5
    assert rec.cosine == pytest.approx(dot / (13.0 * after))
    assert rec.cosine < 1.0


def test_value_clipping_not_fired_leaves_grads():
    g = _grads()
    rec = clip_gradients(g, "value", 12.0)
    assert not rec.fired
    np.testing.assert_array_equal(g["b"], [[12.0, 0.0, 0.0]])
    assert rec.norm_after == pytest.approx(13.0)
    assert rec.cosine == 1.0
    assert rec.per_param["b"]["fraction_clipped"] == 0.0


def test_norm_clipping_hand_computed():
    g = _grads()
    rec = clip_gradients(g, "norm", 6.5)  # scale 0.5
    np.testing.assert_allclose(g["a"], [1.5, -2.0])
    np.testing.assert_allclose(g["b"], [[6.0, 0.0, 0.0]])
    assert rec.fired and rec.norm_before == pytest.approx(13.0)
    assert rec.norm_after == pytest.approx(6.5)
    assert rec.per_param["a"]["norm_after"] == pytest.approx(2.5)
    assert rec.per_param["b"]["fraction_clipped"] == 1.0
    assert rec.cosine == pytest.approx(1.0)


def test_norm_clipping_below_threshold_does_nothing():
    g = _grads()
    rec = clip_gradients(g, "norm", 13.5)
    assert not rec.fired
    np.testing.assert_array_equal(g["a"], [3.0, -4.0])
    assert rec.norm_after == pytest.approx(13.0)
    assert rec.per_param["a"]["fraction_clipped"] == 0.0


def test_none_records_norms_and_float32_in_place():
    g = {k: v.astype(np.float32) for k, v in _grads().items()}
    ids = {k: id(v) for k, v in g.items()}
    rec = clip_gradients(g, "none", 1.0)
    assert not rec.fired and rec.norm_after == rec.norm_before == pytest.approx(13.0)
    g2 = {k: v.astype(np.float32) for k, v in _grads().items()}
    clip_gradients(g2, "norm", 1.0)
    assert g2["a"].dtype == np.float32 and {k: id(v) for k, v in g.items()} == ids
    assert np.linalg.norm(np.concatenate([v.ravel() for v in g2.values()])) == pytest.approx(
        1.0, rel=1e-6)


def test_record_is_json_able():
    rec = clip_gradients(_grads(), "value", 1.0)
    d = json.loads(json.dumps(rec.to_dict()))
    assert d["mode"] == "value" and d["fired"] is True
    assert set(d["per_param"]) == {"a", "b"}


def test_non_finite_gradient_shows_in_norm():
    g = {"a": np.array([np.nan, 1.0])}
    rec = clip_gradients(g, "norm", 5.0)
    assert math.isnan(rec.norm_before)
    g = {"a": np.array([np.inf, 1.0])}
    rec = clip_gradients(g, "value", 5.0)
    assert math.isinf(rec.norm_before)


def test_bad_mode_or_threshold():
    with pytest.raises(ConfigError, match="clip mode"):
        clip_gradients(_grads(), "global", 5.0)
    with pytest.raises(ConfigError, match="threshold"):
        clip_gradients(_grads(), "norm", 0.0)
