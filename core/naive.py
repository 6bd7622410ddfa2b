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


def _forward_steps(step_forward, x, states, *weights):
    """Run ``step_forward(x_t, *states, *weights) -> (*next_states, cache)`` for t = 0..T-1.

    x (N, T, D), states: the initial states, each (N, H) -> (list of (N, T, H) arrays, one per
    state, holding the state after each step; list of step caches)."""
    N, T, _ = x.shape
    out = [np.zeros((N, T, s.shape[1]), dtype=x.dtype) for s in states]
    caches = []
    for t in range(T):
        *states, cache = step_forward(x[:, t], *states, *weights)
        for seq, state in zip(out, states):
            seq[:, t] = state
        caches.append(cache)
    return out, caches


def _backward_steps(step_backward, dh, caches, bptt_cut, n_states, Wx, Wh):
    """BPTT by ``step_backward(*dnext_states, cache) -> (dx, *dprev_states, dWx, dWh, db)``
    from the last step down to ``bptt_cut``; the first state is h, which also gets dh[:, t].

    dh (N, T, H) upstream -> dx (N, T, D), the initial states' gradients (zeros when cut),
    dWx, dWh, db, and per state the gradient arriving at it at step t (N, T, H) (for h the
    total dL/dh_t; zeros before the cut)."""
    N, T, H = dh.shape
    cut = 0 if bptt_cut is None else bptt_cut
    dx = np.zeros((N, T, Wx.shape[0]), dtype=dh.dtype)
    dWx, dWh = np.zeros_like(Wx), np.zeros_like(Wh)
    db = np.zeros(Wh.shape[1], dtype=dh.dtype)
    arriving = [np.zeros((N, T, H), dtype=dh.dtype) for _ in range(n_states)]
    dstates = [np.zeros((N, H), dtype=dh.dtype) for _ in range(n_states)]
    for t in range(T - 1, cut - 1, -1):
        dstates[0] = dh[:, t] + dstates[0]
        for seq, d in zip(arriving, dstates):
            seq[:, t] = d
        dx_t, *rest = step_backward(*dstates, caches[t])
        dstates, (dWx_t, dWh_t, db_t) = rest[:n_states], rest[n_states:]
        dx[:, t] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    if cut > 0:
        dstates = [np.zeros((N, H), dtype=dh.dtype) for _ in range(n_states)]
    return dx, dstates, dWx, dWh, db, arriving


def _zero_or(state, N, H, dtype):
    return np.zeros((N, H), dtype=dtype) if state is None else state


def lstm_forward_naive(x, h0, Wx, Wh, b, c0=None):
    """x (N, T, D), h0 (N, H) or None, Wx (D, 4H), Wh (H, 4H), b (4H,), c0 (N, H) or None
    -> h (N, T, H), c (N, T, H), caches (list of step caches)."""
    from core.lstm_layers import lstm_step_forward

    N, H = x.shape[0], Wh.shape[0]
    states = [_zero_or(h0, N, H, x.dtype), _zero_or(c0, N, H, x.dtype)]
    (h, c), caches = _forward_steps(lstm_step_forward, x, states, Wx, Wh, b)
    return h, c, caches


def lstm_backward_naive(dh, caches, bptt_cut=None):
    """dh (N, T, H) upstream -> dx (N, T, D), dh0 (N, H), dc0 (N, H), dWx, dWh, db,
    dh_total (N, T, H), dc_total (N, T, H): the total dL/dh_t and dL/dc_t.

    Steps with index < bptt_cut get no gradient (their states are constants); dh0 and dc0
    are then zeros.
    """
    from core.lstm_layers import lstm_step_backward

    Wx, Wh = caches[0][3], caches[0][4]
    dx, (dh0, dc0), dWx, dWh, db, (dh_total, dc_next) = _backward_steps(
        lstm_step_backward, dh, caches, bptt_cut, 2, Wx, Wh)
    # dL/dc_t = the part from c_{t+1} (what arrived) + the part through h_t = o tanh(c_t)
    o = np.stack([cache[7] for cache in caches], axis=1)
    tanh_c = np.stack([cache[9] for cache in caches], axis=1)
    dc_total = dc_next + dh_total * o * (1 - tanh_c ** 2)
    return dx, dh0, dc0, dWx, dWh, db, dh_total, dc_total


def gru_forward_naive(x, h0, Wx, Wh, b):
    """x (N, T, D), h0 (N, H) or None, Wx (D, 3H), Wh (H, 3H), b (3H,)
    -> h (N, T, H), caches (list of step caches)."""
    from core.gru_layers import gru_step_forward

    (h,), caches = _forward_steps(gru_step_forward, x,
                                  [_zero_or(h0, x.shape[0], Wh.shape[0], x.dtype)], Wx, Wh, b)
    return h, caches


def gru_backward_naive(dh, caches, bptt_cut=None):
    """dh (N, T, H) upstream -> dx (N, T, D), dh0 (N, H), dWx, dWh, db, dh_total (N, T, H).

    Steps with index < bptt_cut get no gradient (their state is a constant); dh0 is then zeros.
    """
    from core.gru_layers import gru_step_backward

    dx, (dh0,), dWx, dWh, db, (dh_total,) = _backward_steps(
        gru_step_backward, dh, caches, bptt_cut, 1, caches[0][2], caches[0][3])
    return dx, dh0, dWx, dWh, db, dh_total
