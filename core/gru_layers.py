"""GRU layers: one step, and whole sequences with (truncated) BPTT.

    u_t = x_t @ Wx + b,  v_t = h_{t-1} @ Wh, each split into column blocks [z, r, n] of width H
    z = sigmoid(u_z + v_z)      r = sigmoid(u_r + v_r)      n = tanh(u_n + r * v_n)
    h_t = (1 - z) * n + z * h_{t-1}

Letters: N = batch size, T = timesteps, D = input features, H = hidden units.
Timesteps are 0-based; h[t] is the state after reading x[t]; h0 (N, H) is the state before
x[0] (None = zeros).

Truncation: ``bptt_cut = c`` means timesteps with index < c get no gradient: the state
h[c-1] (or h0 when c = 0) is a constant. ``None`` or 0 is full BPTT.

Fast path (``gru_forward_tm`` / ``gru_backward_tm``, time-major (T, N, ...)): the input
projection for all steps is one (T*N, D) @ (D, 3H) matmul; the loops do one recurrent matmul
per step into preallocated buffers; dWx, dWh and db are one matmul / sum each after the loop.
The gradients wrt u and v differ only in the n block (dv_n = r * du_n), so the backward keeps
them side by side in one (T, N, 4H) buffer laid out [dv_n, du_z, du_r, du_n]: du is its last
3H columns in the natural [z, r, n] order and dv its first 3H columns in the order [n, z, r]
(the recurrent matmul uses Wh's columns in that order; dWh's blocks are put back at the end).
The sigmoid-as-tanh, the gate layout and the weight gradients are shared with the LSTM
(``core.gated``). The naive loop twins are in ``core.naive``.
"""

import numpy as np

from core.blas import loop_blas_limit
from core.cells import SeqGrads
from core.gated import batch_major, forward_buffers, sigmoid, upstream, weight_grads

BLOCKS = ("z", "r", "n")


# ---------------------------------------------------------------------------------------------
# One step
# ---------------------------------------------------------------------------------------------


def gru_step_forward(x, prev_h, Wx, Wh, b):
    """One step.  x (N, D), prev_h (N, H), Wx (D, 3H), Wh (H, 3H), b (3H,)
    -> next_h (N, H), cache."""
    H = Wh.shape[0]
    u = x @ Wx + b
    v = prev_h @ Wh
    z = sigmoid(u[:, :H] + v[:, :H])
    r = sigmoid(u[:, H : 2 * H] + v[:, H : 2 * H])
    v_n = v[:, 2 * H :]
    n = np.tanh(u[:, 2 * H :] + r * v_n)
    next_h = (1 - z) * n + z * prev_h
    return next_h, (x, prev_h, Wx, Wh, z, r, n, v_n)


def gru_step_backward(dnext_h, cache):
    """dnext_h (N, H) -> dx (N, D), dprev_h (N, H), dWx (D, 3H), dWh (H, 3H), db (3H,)."""
    x, prev_h, Wx, Wh, z, r, n, v_n = cache
    da_n = dnext_h * (1 - z) * (1 - n * n)  # gradient wrt u_n + r * v_n
    da_z = dnext_h * (prev_h - n) * z * (1 - z)
    da_r = da_n * v_n * r * (1 - r)
    du = np.concatenate([da_z, da_r, da_n], axis=1)
    dv = np.concatenate([da_z, da_r, da_n * r], axis=1)
    dprev_h = dnext_h * z + dv @ Wh.T
    return du @ Wx.T, dprev_h, x.T @ du, prev_h.T @ dv, du.sum(axis=0)


# ---------------------------------------------------------------------------------------------
# Whole sequence, time-major fast path
# ---------------------------------------------------------------------------------------------


def gru_forward_tm(x, h0, Wx, Wh, b):
    """Whole sequence, time-major.

    x (T, N, D), h0 (N, H) or None, Wx (D, 3H), Wh (H, 3H), b (3H,) -> h (T, N, H), cache.
    ``cache['gates']`` (T, 3, N, H) holds the gate values z, r, n (after their
    nonlinearities) block by block; ``cache['v_n']`` (T, N, H) the n block of h_{t-1} @ Wh.
    """
    T = x.shape[0]
    # z, r as 0.5 tanh(a / 2) + 0.5: one tanh over both blocks (core.gated)
    gates, Wh_s, h, rec, rec_blocks, tmp = forward_buffers(x, Wx, Wh, b, sigmoid_blocks=2)
    v_n = np.empty_like(h)
    with loop_blas_limit():
        for t in range(T):
            prev = h[t - 1] if t > 0 else h0
            gt = gates[t]
            zr, z, r, n = gt[:2], gt[0], gt[1], gt[2]
            if prev is not None:
                np.matmul(prev, Wh_s, out=rec)
                zr += rec_blocks[:2]
            np.tanh(zr, out=zr)
            zr *= 0.5
            zr += 0.5
            if prev is not None:
                np.copyto(v_n[t], rec_blocks[2])
                np.multiply(r, v_n[t], out=tmp)
                n += tmp
            else:
                v_n[t] = 0
            np.tanh(n, out=n)
            # h = n + z * (prev - n)
            if prev is not None:
                np.subtract(prev, n, out=tmp)
                tmp *= z
            else:
                np.multiply(z, n, out=tmp)
                np.negative(tmp, out=tmp)
            np.add(n, tmp, out=h[t])
    cache = {"x": x, "h0": h0, "Wx": Wx, "Wh": Wh, "gates": gates, "v_n": v_n, "h": h}
    return h, cache


def gru_backward_tm(cache, dh_up=None, dh_last=None, bptt_cut=None, need_dx=True):
    """BPTT for ``gru_forward_tm``.

    Upstream gradient ``dh_up`` (T, N, H) (a loss on every step) and/or ``dh_last`` (N, H) (a
    loss on the last state only, the models' case). ``bptt_cut`` c: steps with index < c get no
    gradient (see the module docstring). Returns ``SeqGrads`` with dx (T, N, D) or None,
    dWx (D, 3H), dWh (H, 3H), db (3H,), dh (T, N, H) = total dL/dh_t (0 for t < cut), dh0 (N, H)
    (None unless h0 was given and the cut is 0), and ``extra``: 'du' (T, N, 3H) = dL/du_t in
    the block order [z, r, n] and 'dv' (T, N, 3H) = dL/dv_t in the block order [n, z, r] (see
    the module docstring; both 0 for t < cut).
    """
    x, h0, Wx, Wh = cache["x"], cache["h0"], cache["Wx"], cache["Wh"]
    gates, v_n, h = cache["gates"], cache["v_n"], cache["h"]
    T, N, H = h.shape
    H2, H3 = 2 * H, 3 * H
    cut = 0 if bptt_cut is None else max(0, min(int(bptt_cut), T))

    dh = upstream(h, dh_up, dh_last, cut)
    grad = np.empty((T, N, 4 * H), dtype=h.dtype)  # [dv_n, du_z, du_r, du_n]
    grad[:cut] = 0
    du, dv = grad[:, :, H:], grad[:, :, :H3]
    # Wh with its column blocks in dv's order [n, z, r]
    Wh_nzr = np.concatenate([Wh[:, H2:], Wh[:, :H2]], axis=1)
    if cut < T:
        # du_n = dh (1 - z)(1 - n^2), du_z = dh (h_{t-1} - n) z (1 - z), du_r = du_n v_n r (1 - r),
        # dv_n = r du_n; computed per step while the step's gates are in cache
        s1 = np.empty((N, H), dtype=h.dtype)
        s2 = np.empty((N, H), dtype=h.dtype)
        tmp = np.empty((N, H), dtype=h.dtype)
        WhT = Wh_nzr.T
        with loop_blas_limit():
            for t in range(T - 1, cut - 1, -1):
                gt, dht = grad[t], dh[t]
                zt, rt, nt = gates[t]
                prev = h[t - 1] if t > 0 else h0
                dun = gt[:, H3:]
                np.subtract(1, zt, out=s1)
                np.multiply(nt, nt, out=s2)
                np.subtract(1, s2, out=s2)
                s2 *= s1
                np.multiply(dht, s2, out=dun)
                s1 *= zt
                if prev is None:
                    np.negative(nt, out=s2)
                else:
                    np.subtract(prev, nt, out=s2)
                s2 *= dht
                np.multiply(s1, s2, out=gt[:, H:H2])
                np.subtract(1, rt, out=s1)
                s1 *= rt
                s1 *= v_n[t]
                np.multiply(dun, s1, out=gt[:, H2:H3])
                np.multiply(dun, rt, out=gt[:, :H])
                if t > cut:
                    np.multiply(dht, zt, out=tmp)  # the direct path z * h_{t-1}
                    if dh_up is None:
                        np.matmul(gt[:, :H3], WhT, out=dh[t - 1])
                    else:
                        dh[t - 1] += tmp
                        np.matmul(gt[:, :H3], WhT, out=tmp)
                    dh[t - 1] += tmp

    dWx, dWh_nzr, db, dx = weight_grads(x, h, h0, du, dv, cut, Wx, need_dx)
    dh0 = None
    if cut == 0 and T > 0 and h0 is not None:
        dh0 = dh[0] * gates[0, 0] + dv[0] @ Wh_nzr.T
    dWh = np.concatenate([dWh_nzr[:, H:], dWh_nzr[:, :H]], axis=1)
    return SeqGrads(dx=dx, dWx=dWx, dWh=dWh, db=db, dh=dh, cut=cut,
                    extra={"du": du, "dv": dv}, dh0=dh0)


def gru_trace(cache, grads):
    """Batch-major copies for the explorer: {'gates': {'z', 'r', 'n': (N, T, H)}}."""
    gates = cache["gates"]
    return {"gates": {name: batch_major(gates[:, k]) for k, name in enumerate(BLOCKS)}}
