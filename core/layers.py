"""Elementwise and dense layers in the cs231n style.

``*_forward(...) -> (out, cache)`` and ``*_backward(dout, cache) -> (dx, dparams...)``.

Letters: N = batch size, D = input features, M = output features, K = number of classes.
A leading ``...`` means any number of extra axes (the layer acts on the last axis).
"""

import numpy as np


def affine_forward(x, w, b):
    """out = x @ w + b.  x (..., D), w (D, M), b (M,) -> out (..., M)."""
    out = x @ w
    out += b
    return out, (x, w)


def affine_backward(dout, cache):
    """dout (..., M) -> dx (..., D), dw (D, M), db (M,)."""
    x, w = cache
    M = w.shape[1]
    d2 = dout.reshape(-1, M)
    dx = dout @ w.T
    dw = x.reshape(-1, w.shape[0]).T @ d2
    db = d2.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """out = max(x, 0).  x (...) -> out (...) same shape."""
    out = np.maximum(x, 0)
    return out, out


def relu_backward(dout, cache):
    """dout (...) -> dx (...): dout where the output was positive, else 0."""
    out = cache
    return dout * (out > 0)


def tanh_forward(x):
    """out = tanh(x).  x (...) -> out (...)."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    """dout (...) -> dx (...) = dout * (1 - out^2)."""
    out = cache
    return dout * (1 - out * out)


def softmax(scores):
    """Row-wise softmax, max-subtracted.  scores (N, K) or (..., K) -> probs same shape."""
    z = scores - scores.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def softmax_cross_entropy_terms(scores, y):
    """Per-sample losses and probabilities.

    scores (N, K), y int (N,) in 0..K-1 -> sample_losses (N,) = -log p_i[y_i], probs (N, K).
    Uses log-sum-exp with the row max subtracted, so large logits do not overflow.
    """
    N = scores.shape[0]
    z = scores - scores.max(axis=1, keepdims=True)
    ez = np.exp(z)
    sum_ez = ez.sum(axis=1)
    log_norm = np.log(sum_ez)
    sample_losses = log_norm - z[np.arange(N), y]
    probs = ez / sum_ez[:, None]
    return sample_losses, probs


def softmax_cross_entropy(scores, y):
    """Mean softmax cross-entropy.  scores (N, K), y (N,) -> (loss float, dscores (N, K))."""
    N = scores.shape[0]
    sample_losses, probs = softmax_cross_entropy_terms(scores, y)
    dscores = probs
    dscores[np.arange(N), y] -= 1
    dscores /= N
    return float(sample_losses.mean()), dscores
