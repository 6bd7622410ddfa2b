"""Convolution and pooling: fast (im2col, channels-last, fused) against naive loops, and
centred-difference gradient checks in float64."""

import numpy as np
import pytest
from gradcheck import assert_backward_matches, numeric_grad_array, random_indices, rel_error

from core import naive
from core.conv import (
    conv3x3_backward,
    conv3x3_forward,
    conv_stack_backward,
    conv_stack_block1,
    conv_stack_forward,
    im2col3x3,
    maxpool2x2_backward,
    maxpool2x2_forward,
    pad1,
)


def test_im2col_column_order_matches_weight_layout():
    x = np.arange(2 * 4 * 5 * 3, dtype=np.float64).reshape(2, 4, 5, 3)
    cols = im2col3x3(pad1(x))
    assert cols.shape == (2 * 4 * 5, 27)
    # output pixel (n=1, i=2, j=3): window rows 1..3, cols 2..4 of x, order (row, col, channel)
    np.testing.assert_array_equal(cols[1 * 20 + 2 * 5 + 3], x[1, 1:4, 2:5, :].ravel())
    # border pixel (0, 0): the top row and left column of the window are padding
    w = cols[0].reshape(3, 3, 3)
    assert np.all(w[0] == 0) and np.all(w[:, 0] == 0)
    np.testing.assert_array_equal(w[1:, 1:], x[0, :2, :2])


def test_conv_fast_matches_naive():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 6, 5, 3)), rng.standard_normal((3, 3, 3, 4)), \
        rng.standard_normal(4)
    out, cache = conv3x3_forward(x, w, b)
    out_n, cache_n = naive.conv3x3_forward_naive(x, w, b)
    np.testing.assert_allclose(out, out_n, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    slow_grads = naive.conv3x3_backward_naive(dout, cache_n)
    for fast, slow in zip(conv3x3_backward(dout, cache), slow_grads):
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)


def test_conv_gradients():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 5, 4, 3)), rng.standard_normal((3, 3, 3, 2)), \
        rng.standard_normal(2)
    assert_backward_matches(conv3x3_forward, conv3x3_backward, (x, w, b), rng)


def test_maxpool_fast_matches_naive_including_ties():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 4, 3))
    x[0, 0:2, 0:2, 0] = 1.5  # a window that is all ties: the first element wins
    x[1, 2, 1, 2] = x[1, 3, 0, 2] = 9.0  # a tie between the 2nd and 3rd elements
    out, cache = maxpool2x2_forward(x)
    out_n, cache_n = naive.maxpool2x2_forward_naive(x)
    np.testing.assert_array_equal(out, out_n)
    dout = rng.standard_normal(out.shape)
    dx = maxpool2x2_backward(dout, cache)
    np.testing.assert_array_equal(dx, naive.maxpool2x2_backward_naive(dout, cache_n))
    assert dx[0, 0, 0, 0] == dout[0, 0, 0, 0] and dx[0, 1, 1, 0] == 0
    assert dx[1, 2, 1, 2] == dout[1, 1, 0, 2] and dx[1, 3, 0, 2] == 0


def test_maxpool_gradient():
    rng = np.random.default_rng(3)
    x = rng.permutation(2 * 4 * 6 * 2).reshape(2, 4, 6, 2) * 0.1  # distinct: no ties
    out, cache = maxpool2x2_forward(x)
    dout = rng.standard_normal(out.shape)
    num = numeric_grad_array(lambda: maxpool2x2_forward(x)[0], x, dout)
    assert rel_error(maxpool2x2_backward(dout, cache), num) < 1e-6


def _naive_stack(x, w1, b1, w2, b2):
    z1, c1 = naive.conv_block_forward_naive(x, w1, b1)
    z2, c2 = naive.conv_block_forward_naive(z1, w2, b2)
    return z1, z2, c1, c2


@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_fused_conv_stack_matches_naive_blocks(chunk):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 8, 12, 3))
    w1, b1 = rng.standard_normal((3, 3, 3, 4)), 0.5 * rng.standard_normal(4)
    w2, b2 = 0.5 * rng.standard_normal((3, 3, 4, 5)), 0.5 * rng.standard_normal(5)
    out, cache = conv_stack_forward(x, w1, b1, w2, b2, chunk=chunk)
    z1, z2, c1, c2 = _naive_stack(x, w1, b1, w2, b2)
    np.testing.assert_allclose(conv_stack_block1(cache), z1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out, z2, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dz1, dw2, db2 = naive.conv_block_backward_naive(dout, c2)
    _, dw1, db1 = naive.conv_block_backward_naive(dz1, c1)
    for fast, slow in zip(conv_stack_backward(dout, cache), (dw1, db1, dw2, db2)):
        np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-12)


def test_fused_conv_stack_gradients():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 8, 8, 3))
    params = [rng.standard_normal((3, 3, 3, 3)), 0.3 * rng.standard_normal(3),
              0.5 * rng.standard_normal((3, 3, 3, 2)), 0.3 * rng.standard_normal(2)]
    out, cache = conv_stack_forward(x, *params)
    dout = rng.standard_normal(out.shape)
    grads = conv_stack_backward(dout, cache)
    f = lambda: conv_stack_forward(x, *params)[0]  # noqa: E731
    for p, g in zip(params, grads):
        idx = random_indices(p.shape, 15, rng)
        assert rel_error(g, numeric_grad_array(f, p, dout, idx=idx)) < 1e-6


def test_fused_conv_stack_keeps_float32():
    rng = np.random.default_rng(6)
    w1 = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    w2 = rng.standard_normal((3, 3, 4, 4)).astype(np.float32)
    b = np.zeros(4, np.float32)
    out, cache = conv_stack_forward(rng.standard_normal((3, 8, 8, 3)), w1, b, w2, b)
    assert out.dtype == np.float32 and out.shape == (3, 2, 2, 4)
    assert all(g.dtype == np.float32 for g in conv_stack_backward(np.ones_like(out), cache))


@pytest.mark.parametrize("workers", [2, 3])
def test_conv_stack_on_worker_threads_matches_one_thread(workers):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((11, 8, 8, 3))
    params = [rng.standard_normal((3, 3, 3, 4)), 0.3 * rng.standard_normal(4),
              0.5 * rng.standard_normal((3, 3, 4, 5)), 0.3 * rng.standard_normal(5)]
    out1, c1 = conv_stack_forward(x, *params, chunk=2, workers=1)
    dout = rng.standard_normal(out1.shape)
    g1 = conv_stack_backward(dout, c1)
    outw, cw = conv_stack_forward(x, *params, chunk=2, workers=workers)
    gw = conv_stack_backward(dout, cw)
    assert cw["parts"] == workers
    np.testing.assert_array_equal(outw, out1)  # each chunk is computed the same way
    for a, b in zip(gw, g1):  # only the order of the partial sums differs
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_set_conv_workers_drives_the_model():
    from core import conv
    from core.models import CNNRNN

    m = CNNRNN(channels=(3, 4), hidden_dim=5, dtype=np.float64, seed=3)
    rng = np.random.default_rng(8)
    X, y = rng.standard_normal((20, 32, 32, 3)), rng.integers(0, 10, 20)
    l1, g1 = m.loss(X, y)
    try:
        conv.set_conv_workers(2)
        l2, g2 = m.loss(X, y)
    finally:
        conv.set_conv_workers(1)
    assert l1 == l2
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError):
        conv.set_conv_workers(0)
