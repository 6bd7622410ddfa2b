"""Dense / elementwise layers and softmax cross-entropy: centred-difference checks in float64."""

import numpy as np
import pytest
from gradcheck import assert_backward_matches, numeric_grad, numeric_grad_array, rel_error

from core.layers import (
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_terms,
    tanh_backward,
    tanh_forward,
)


def test_affine_gradients():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 3, 5)), rng.standard_normal((5, 6)), rng.standard_normal(6)
    out = assert_backward_matches(affine_forward, affine_backward, (x, w, b), rng)
    assert out.shape == (4, 3, 6)
    np.testing.assert_allclose(out[2, 1], x[2, 1] @ w + b)


@pytest.mark.parametrize("fwd,bwd", [(relu_forward, relu_backward), (tanh_forward, tanh_backward)])
def test_elementwise_gradients(fwd, bwd):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 7))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the ReLU kink
    out, cache = fwd(x)
    dout = rng.standard_normal(out.shape)
    dx = bwd(dout, cache)
    assert rel_error(dx, numeric_grad_array(lambda: fwd(x)[0], x, dout)) < 1e-6


def test_relu_and_tanh_values():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(relu_forward(x)[0], [0, 0, 3])
    np.testing.assert_allclose(tanh_forward(x)[0], np.tanh(x))


def test_softmax_cross_entropy_gradient_and_value():
    rng = np.random.default_rng(2)
    scores, y = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    loss, dscores = softmax_cross_entropy(scores, y)
    p = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(6), y]).mean(), rel=1e-12)
    num = numeric_grad(lambda: softmax_cross_entropy(scores, y)[0], scores)
    assert rel_error(dscores, num) < 1e-6
    losses, probs = softmax_cross_entropy_terms(scores, y)
    np.testing.assert_allclose(probs, p, rtol=1e-12)
    assert losses.mean() == pytest.approx(loss, rel=1e-12)


def test_softmax_rows_sum_to_one_and_are_stable():
    p = softmax([[1000.0, 1000.0], [0.0, np.log(3.0)]])
    np.testing.assert_allclose(p, [[0.5, 0.5], [0.25, 0.75]])


def test_softmax_is_stable_for_huge_logits():
    scores = np.array([[1000.0, 0.0, -1000.0], [5e4, 5e4, 0.0]])
    loss, d = softmax_cross_entropy(scores, np.array([0, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(d))
    assert loss == pytest.approx(np.log(2) / 2, rel=1e-12)
    np.testing.assert_allclose(softmax(scores)[1], [0.5, 0.5, 0.0])
