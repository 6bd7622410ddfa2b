"""Naive loop twins of the fast ops, kept as the reference the tests compare against.

Slow on purpose: explicit loops over timesteps / pixels, written to be obviously correct.

Letters: N = batch size, T = timesteps, D = input features, H = hidden units,
R / S = image rows / columns (even where pooled), C / Cin / Cout = channels.
Images are (N, R, S, C) channels-last; conv weights are (3, 3, Cin, Cout); 3x3 convolutions
use zero padding 1 and stride 1.
"""

import numpy as np

from core.rnn_layers import rnn_step_backward, rnn_step_forward


def rnn_forward_naive(x, h0, Wx, Wh, b, activation="tanh"):
    """x (N, T, D), h0 (N, H) -> h (N, T, H), caches (list of step caches)."""
    N, T, _ = x.shape
    H = Wh.shape[0]
    h = np.zeros((N, T, H), dtype=x.dtype)
    prev = h0
    caches = []
    for t in range(T):
        prev, c = rnn_step_forward(x[:, t], prev, Wx, Wh, b, activation)
        h[:, t] = prev
        caches.append(c)
    return h, caches


def rnn_backward_naive(dh, caches, bptt_cut=None):
    """dh (N, T, H) upstream -> dx (N, T, D), dh0 (N, H), dWx, dWh, db.

    Steps with index < bptt_cut get no gradient (their state is treated as a constant).
    """
    N, T, H = dh.shape
    cut = 0 if bptt_cut is None else bptt_cut
    D = caches[0][0].shape[1]
    dx = np.zeros((N, T, D), dtype=dh.dtype)
    dWx = np.zeros_like(caches[0][2])
    dWh = np.zeros_like(caches[0][3])
    db = np.zeros(H, dtype=dh.dtype)
    dprev = np.zeros((N, H), dtype=dh.dtype)
    for t in range(T - 1, cut - 1, -1):
        dx_t, dprev, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev, caches[t])
        dx[:, t] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dh0 = dprev if cut == 0 else np.zeros((N, H), dtype=dh.dtype)
    return dx, dh0, dWx, dWh, db


def conv3x3_forward_naive(x, w, b):
    """x (N, R, S, Cin), w (3, 3, Cin, Cout), b (Cout,) -> out (N, R, S, Cout), cache."""
    N, R, S, _ = x.shape
    Cout = w.shape[3]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((N, R, S, Cout), dtype=x.dtype)
    for n in range(N):
        for i in range(R):
            for j in range(S):
                window = xp[n, i : i + 3, j : j + 3, :]  # (3, 3, Cin)
                out[n, i, j] = np.tensordot(window, w, axes=3) + b
    return out, (x, w)


def conv3x3_backward_naive(dout, cache):
    """dout (N, R, S, Cout) -> dx (N, R, S, Cin), dw (3, 3, Cin, Cout), db (Cout,)."""
    x, w = cache
    N, R, S, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for n in range(N):
        for i in range(R):
            for j in range(S):
                g = dout[n, i, j]  # (Cout,)
                dxp[n, i : i + 3, j : j + 3, :] += w @ g
                dw += xp[n, i : i + 3, j : j + 3, :, None] * g
    db = dout.sum(axis=(0, 1, 2))
    return dxp[:, 1:-1, 1:-1, :], dw, db


def maxpool2x2_forward_naive(x):
    """x (N, R, S, C), R and S even -> out (N, R/2, S/2, C), cache.

    Ties go to the first window element in row-major order (as in the fast version).
    """
    N, R, S, C = x.shape
    out = np.zeros((N, R // 2, S // 2, C), dtype=x.dtype)
    arg = np.zeros((N, R // 2, S // 2, C), dtype=np.int64)
    for n in range(N):
        for i in range(R // 2):
            for j in range(S // 2):
                for c in range(C):
                    window = x[n, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, c].ravel()
                    k = int(np.argmax(window))
                    arg[n, i, j, c] = k
                    out[n, i, j, c] = window[k]
    return out, (x.shape, arg)


def maxpool2x2_backward_naive(dout, cache):
    """dout (N, R/2, S/2, C) -> dx (N, R, S, C): each gradient goes to its window's max."""
    shape, arg = cache
    dx = np.zeros(shape, dtype=dout.dtype)
    N, Ho, Wo, C = dout.shape
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    k = arg[n, i, j, c]
                    dx[n, 2 * i + k // 2, 2 * j + k % 2, c] += dout[n, i, j, c]
    return dx


def conv_block_forward_naive(x, w, b):
    """conv3x3 -> +b -> ReLU -> maxpool2x2, in the textbook order.

    x (N, R, S, Cin) -> out (N, R/2, S/2, Cout), cache.
    """
    y, c_conv = conv3x3_forward_naive(x, w, b)
    r = np.maximum(y, 0)
    out, c_pool = maxpool2x2_forward_naive(r)
    return out, (c_conv, r, c_pool)


def conv_block_backward_naive(dout, cache):
    """dout (N, R/2, S/2, Cout) -> dx (N, R, S, Cin), dw (3, 3, Cin, Cout), db (Cout,)."""
    c_conv, r, c_pool = cache
    dr = maxpool2x2_backward_naive(dout, c_pool)
    dy = dr * (r > 0)
    return conv3x3_backward_naive(dy, c_conv)


# ---------------------------------------------------------------------------------------------
# Gated cells: loops over the step functions (batch-major, like the vanilla twins above)
# ---------------------------------------------------------------------------------------------


def lstm_forward_naive(x, h0, Wx, Wh, b, c0=None):
    """x (N, T, D), h0 (N, H) or None, Wx (D, 4H), Wh (H, 4H), b (4H,), c0 (N, H) or None
    -> h (N, T, H), c (N, T, H), caches (list of step caches)."""
    from core.lstm_layers import lstm_step_forward

    N, T, _ = x.shape
    H = Wh.shape[0]
    h = np.zeros((N, T, H), dtype=x.dtype)
    c = np.zeros((N, T, H), dtype=x.dtype)
    prev_h = np.zeros((N, H), dtype=x.dtype) if h0 is None else h0
    prev_c = np.zeros((N, H), dtype=x.dtype) if c0 is None else c0
    caches = []
    for t in range(T):
        prev_h, prev_c, cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t], c[:, t] = prev_h, prev_c
        caches.append(cache)
    return h, c, caches


def lstm_backward_naive(dh, caches, bptt_cut=None):
    """dh (N, T, H) upstream -> dx (N, T, D), dh0 (N, H), dc0 (N, H), dWx, dWh, db,
    dh_total (N, T, H), dc_total (N, T, H): the total dL/dh_t and dL/dc_t.

    Steps with index < bptt_cut get no gradient (their states are constants); dh0 and dc0
    are then zeros.
    """
    from core.lstm_layers import lstm_step_backward

    N, T, H = dh.shape
    cut = 0 if bptt_cut is None else bptt_cut
    D = caches[0][0].shape[1]
    dx = np.zeros((N, T, D), dtype=dh.dtype)
    dWx = np.zeros_like(caches[0][3])
    dWh = np.zeros_like(caches[0][4])
    db = np.zeros(4 * H, dtype=dh.dtype)
    dh_total = np.zeros((N, T, H), dtype=dh.dtype)
    dc_total = np.zeros((N, T, H), dtype=dh.dtype)
    dprev_h = np.zeros((N, H), dtype=dh.dtype)
    dprev_c = np.zeros((N, H), dtype=dh.dtype)
    for t in range(T - 1, cut - 1, -1):
        dh_total[:, t] = dh[:, t] + dprev_h
        o_t, tanh_c = caches[t][7], caches[t][9]
        dc_total[:, t] = dprev_c + dh_total[:, t] * o_t * (1 - tanh_c ** 2)
        dx_t, dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh_total[:, t], dprev_c, caches[t])
        dx[:, t] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    if cut > 0:
        dprev_h = np.zeros((N, H), dtype=dh.dtype)
        dprev_c = np.zeros((N, H), dtype=dh.dtype)
    return dx, dprev_h, dprev_c, dWx, dWh, db, dh_total, dc_total


def gru_forward_naive(x, h0, Wx, Wh, b):
    """x (N, T, D), h0 (N, H) or None, Wx (D, 3H), Wh (H, 3H), b (3H,)
    -> h (N, T, H), caches (list of step caches)."""
    from core.gru_layers import gru_step_forward

    N, T, _ = x.shape
    H = Wh.shape[0]
    h = np.zeros((N, T, H), dtype=x.dtype)
    prev = np.zeros((N, H), dtype=x.dtype) if h0 is None else h0
    caches = []
    for t in range(T):
        prev, cache = gru_step_forward(x[:, t], prev, Wx, Wh, b)
        h[:, t] = prev
        caches.append(cache)
    return h, caches


def gru_backward_naive(dh, caches, bptt_cut=None):
    """dh (N, T, H) upstream -> dx (N, T, D), dh0 (N, H), dWx, dWh, db, dh_total (N, T, H).

    Steps with index < bptt_cut get no gradient (their state is a constant); dh0 is then zeros.
    """
    from core.gru_layers import gru_step_backward

    N, T, H = dh.shape
    cut = 0 if bptt_cut is None else bptt_cut
    D = caches[0][0].shape[1]
    dx = np.zeros((N, T, D), dtype=dh.dtype)
    dWx = np.zeros_like(caches[0][2])
    dWh = np.zeros_like(caches[0][3])
    db = np.zeros(3 * H, dtype=dh.dtype)
    dh_total = np.zeros((N, T, H), dtype=dh.dtype)
    dprev = np.zeros((N, H), dtype=dh.dtype)
    for t in range(T - 1, cut - 1, -1):
        dh_total[:, t] = dh[:, t] + dprev
        dx_t, dprev, dWx_t, dWh_t, db_t = gru_step_backward(dh_total[:, t], caches[t])
        dx[:, t] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    if cut > 0:
        dprev = np.zeros((N, H), dtype=dh.dtype)
    return dx, dprev, dWx, dWh, db, dh_total
