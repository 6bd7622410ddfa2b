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


def _shifted_exp(scores):
    """z = scores - row max, e = exp(z), and the row sums of e (..., 1).  scores (..., K).

    Subtracting the max keeps exp from overflowing; it changes neither softmax nor the loss.
    """
    scores = np.asarray(scores)
    z = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return z, e, e.sum(axis=-1, keepdims=True)


def softmax(scores):
    """Row-wise softmax.  scores (N, K) or (..., K) -> probs same shape and dtype."""
    _, e, total = _shifted_exp(scores)
    e /= total
    return e


def softmax_cross_entropy_terms(scores, y):
    """Per-sample losses and probabilities.

    scores (N, K), y int (N,) in 0..K-1 -> sample_losses (N,) = -log p_i[y_i], probs (N, K).
    The loss is log-sum-exp minus the true logit, so it stays finite where p_i[y_i] would
    round to 0.
    """
    z, e, total = _shifted_exp(scores)
    sample_losses = np.log(total[:, 0]) - z[np.arange(z.shape[0]), y]
    e /= total
    return sample_losses, e


def softmax_cross_entropy_backward(probs, y):
    """Gradient of the mean loss.  probs (N, K) from the forward, y (N,) -> dscores (N, K)
    = (probs - onehot(y)) / N (a new array)."""
    N = probs.shape[0]
    dscores = probs.copy()
    dscores[np.arange(N), y] -= 1
    dscores /= N
    return dscores


def softmax_cross_entropy(scores, y):
    """Mean softmax cross-entropy.  scores (N, K), y (N,) -> (loss float, dscores (N, K))."""
    sample_losses, probs = softmax_cross_entropy_terms(scores, y)
    return float(sample_losses.mean()), softmax_cross_entropy_backward(probs, y)
