"""LSTM layers: one step, and whole sequences with (truncated) BPTT.

    a_t = x_t @ Wx + h_{t-1} @ Wh + b, split into column blocks [i, f, o, g] of width H
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)        g = tanh(a_g)
    c_t = f * c_{t-1} + i * g                                  h_t = o * tanh(c_t)

Letters: N = batch size, T = timesteps, D = input features, H = hidden units.
Timesteps are 0-based; h[t], c[t] are the states after reading x[t]; h0, c0 (N, H) are the
states before x[0] (None = zeros).

Truncation: ``bptt_cut = c`` means timesteps with index < c get no gradient: the states
h[c-1] and c[c-1] (or h0, c0 when c = 0) are constants. ``None`` or 0 is full BPTT.

Fast path (``lstm_forward_tm`` / ``lstm_backward_tm``, time-major (T, N, ...)): the input
projection for all steps is one (T*N, D) @ (D, 4H) matmul; the loops do one (N, H) @ (H, 4H)
(forward) or (N, 4H) @ (4H, H) (backward) matmul per step into preallocated buffers and a few
elementwise ops on contiguous (N, H) gate blocks (the backward computes the gate derivatives
step by step, while that step's gates are in cache); dWx, dWh and db are one matmul / sum each
after the loop.
The sigmoid-as-tanh, the gate layout and the weight gradients are shared with the GRU
(``core.gated``). The naive loop twins are in ``core.naive``.
"""

import numpy as np

from core.blas import loop_blas_limit
from core.cells import SeqGrads
from core.gated import batch_major, forward_buffers, sigmoid, upstream, weight_grads

BLOCKS = ("i", "f", "o", "g")


# ---------------------------------------------------------------------------------------------
# One step
# ---------------------------------------------------------------------------------------------


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One step.

    x (N, D), prev_h (N, H), prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,)
    -> next_h (N, H), next_c (N, H), cache.
    """
    H = Wh.shape[0]
    a = x @ Wx + prev_h @ Wh + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H : 2 * H])
    o = sigmoid(a[:, 2 * H : 3 * H])
    g = np.tanh(a[:, 3 * H :])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    """dnext_h (N, H), dnext_c (N, H)
    -> dx (N, D), dprev_h (N, H), dprev_c (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,)."""
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)
    da = np.concatenate(
        [dc * g * i * (1 - i),
         dc * prev_c * f * (1 - f),
         dnext_h * tanh_c * o * (1 - o),
         dc * i * (1 - g * g)],
        axis=1,
    )
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


# ---------------------------------------------------------------------------------------------
# Whole sequence, time-major fast path
# ---------------------------------------------------------------------------------------------


def lstm_forward_tm(x, h0, Wx, Wh, b, c0=None):
    """Whole sequence, time-major.

    x (T, N, D), h0 (N, H) or None, Wx (D, 4H), Wh (H, 4H), b (4H,), c0 (N, H) or None
    -> h (T, N, H), cache. ``cache['gates']`` (T, 4, N, H) holds the gate values i, f, o, g
    (after their nonlinearities) block by block, ``cache['c']`` (T, N, H) the cell states c_t
    and ``cache['tanh_c']`` (T, N, H) tanh(c_t).
    """
    T = x.shape[0]
    # i, f, o as 0.5 tanh(a / 2) + 0.5: one tanh over a step's four blocks (core.gated)
    gates, Wh_s, h, rec, rec_blocks, tmp = forward_buffers(x, Wx, Wh, b, sigmoid_blocks=3)
    c = np.empty_like(h)
    tanh_c = np.empty_like(h)
    with loop_blas_limit():
        for t in range(T):
            prev_h = h[t - 1] if t > 0 else h0
            prev_c = c[t - 1] if t > 0 else c0
            gt = gates[t]
            if prev_h is not None:
                np.matmul(prev_h, Wh_s, out=rec)
                gt += rec_blocks
            np.tanh(gt, out=gt)
            ifo = gt[:3]
            ifo *= 0.5
            ifo += 0.5
            np.multiply(gt[0], gt[3], out=c[t])  # i * g
            if prev_c is not None:
                np.multiply(gt[1], prev_c, out=tmp)
                c[t] += tmp
            np.tanh(c[t], out=tanh_c[t])
            np.multiply(gt[2], tanh_c[t], out=h[t])
    cache = {"x": x, "h0": h0, "c0": c0, "Wx": Wx, "Wh": Wh, "gates": gates, "c": c,
             "tanh_c": tanh_c, "h": h}
    return h, cache


def lstm_backward_tm(cache, dh_up=None, dh_last=None, bptt_cut=None, need_dx=True):
    """BPTT for ``lstm_forward_tm``.

    Upstream gradient ``dh_up`` (T, N, H) (a loss on every step) and/or ``dh_last`` (N, H) (a
    loss on the last state only; the models' case, which skips the per-step additions).
    ``bptt_cut`` c: steps with index < c get no gradient (see the module docstring).
    Returns ``SeqGrads`` with dx (T, N, D) or None, dWx (D, 4H), dWh (H, 4H), db (4H,),
    dh (T, N, H) = total dL/dh_t, dh0 (N, H) (None unless h0 was given and the cut is 0), and
    ``extra``: 'dc' (T, N, H) = total dL/dc_t, 'da' (T, N, 4H) = dL/da_t (both 0 for t < cut),
    'dc0' (N, H) (None unless c0 was given and the cut is 0).
    """
    x, h0, c0, Wx, Wh = cache["x"], cache["h0"], cache["c0"], cache["Wx"], cache["Wh"]
    gates, c, tanh_c, h = cache["gates"], cache["c"], cache["tanh_c"], cache["h"]
    T, N, H = h.shape
    G = 4 * H
    cut = 0 if bptt_cut is None else max(0, min(int(bptt_cut), T))

    dh = upstream(h, dh_up, dh_last, cut)
    dc = np.empty_like(h)  # steps >= cut are all written by the loop below
    dc[:cut] = 0
    da = np.empty((T, N, G), dtype=h.dtype)  # row-major for the matmuls
    da[:cut] = 0
    if cut < T:
        # Per step, on contiguous (N, H) blocks while the step's gates are in cache:
        # dc_t = f_{t+1} dc_{t+1} + dh_t o (1 - tanh^2 c_t),
        # da_t = [dc g i(1-i), dc c_{t-1} f(1-f), dh tanh(c_t) o(1-o), dc i (1-g^2)]
        dblk = np.empty((4, N, H), dtype=h.dtype)
        s1 = np.empty((N, H), dtype=h.dtype)
        tmp = np.empty((N, H), dtype=h.dtype)
        WhT = Wh.T
        with loop_blas_limit():
            for t in range(T - 1, cut - 1, -1):
                gt, dht, dct, tct = gates[t], dh[t], dc[t], tanh_c[t]
                i, f, o, g = gt
                prev_c = c[t - 1] if t > 0 else c0
                np.multiply(tct, tct, out=s1)
                np.subtract(1, s1, out=s1)
                s1 *= o
                if t == T - 1:
                    np.multiply(dht, s1, out=dct)
                else:  # dc[t] already holds f_{t+1} * dc_{t+1}
                    s1 *= dht
                    dct += s1
                d_ifo = dblk[:3]
                np.subtract(1, gt[:3], out=d_ifo)
                d_ifo *= gt[:3]
                dblk[0] *= g
                dblk[0] *= dct
                if prev_c is None:
                    dblk[1] = 0
                else:
                    dblk[1] *= prev_c
                    dblk[1] *= dct
                dblk[2] *= tct
                dblk[2] *= dht
                np.multiply(g, g, out=dblk[3])
                np.subtract(1, dblk[3], out=dblk[3])
                dblk[3] *= i
                dblk[3] *= dct
                dat = da[t]
                np.copyto(dat.reshape(N, 4, H), dblk.transpose(1, 0, 2))
                if t > cut:
                    if dh_up is None:
                        np.matmul(dat, WhT, out=dh[t - 1])
                    else:
                        np.matmul(dat, WhT, out=tmp)
                        dh[t - 1] += tmp
                    np.multiply(dct, f, out=dc[t - 1])

    dWx, dWh, db, dx = weight_grads(x, h, h0, da, da, cut, Wx, need_dx)
    dh0 = dc0 = None
    if cut == 0 and T > 0:
        if h0 is not None:
            dh0 = da[0] @ Wh.T
        if c0 is not None:
            dc0 = dc[0] * gates[0, 1]
    return SeqGrads(dx=dx, dWx=dWx, dWh=dWh, db=db, dh=dh, cut=cut,
                    extra={"dc": dc, "da": da, "dc0": dc0}, dh0=dh0)


def lstm_trace(cache, grads):
    """Batch-major copies for the explorer: {'gates': {'i', 'f', 'o', 'g': (N, T, H)},
    'cell': c_t (N, T, H), 'dc': total dL/dc_t (N, T, H)}."""
    gates = cache["gates"]
    return {
        "gates": {name: batch_major(gates[:, k]) for k, name in enumerate(BLOCKS)},
        "cell": batch_major(cache["c"]),
        "dc": batch_major(grads.extra["dc"]),
    }
