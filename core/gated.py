"""What the gated cells' layer modules (``core.lstm_layers``, ``core.gru_layers``) share.

Letters: N = batch size, T = timesteps, D = input features, H = hidden units, G = gate blocks
(4 LSTM, 3 GRU), S = the leading blocks that are sigmoids (3 LSTM: i, f, o; 2 GRU: z, r).

Both forwards compute sigmoid(a) = 0.5 tanh(a / 2) + 0.5 with the sigmoid blocks of the
weights halved (exact in binary floating point), so one tanh over a step's blocks gives every
gate after a scale and shift of the first S; both keep the gates block by block, (T, G, N, H),
because NumPy's elementwise loops run several times faster on contiguous (N, H) blocks than on
(N, H) column slices of (N, G*H) rows. Both backwards end with the same weight gradients.
"""

from typing import NamedTuple

import numpy as np


def sigmoid(a, out=None):
    """1 / (1 + exp(-a)) computed as 0.5 * (1 + tanh(a / 2)), same shape as ``a``.

    tanh saturates instead of overflowing, so large |a| gives exactly 0 or 1 with no warning
    in float32 or float64; ``out`` may be ``a`` itself.
    """
    out = np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


class ForwardBuffers(NamedTuple):
    """What a gated forward starts from (see ``forward_buffers``)."""

    gates: np.ndarray       # (T, G, N, H) the input projection x_t @ Wx + b, sigmoid blocks halved
    Wh_half: np.ndarray     # (H, G*H) Wh with the sigmoid blocks' columns halved
    h: np.ndarray           # (T, N, H) for the states h_t
    rec: np.ndarray         # (N, G*H) for one step's recurrent product h_{t-1} @ Wh_half
    rec_blocks: np.ndarray  # (G, N, H) view of ``rec``, block by block
    tmp: np.ndarray         # (N, H) scratch


def forward_buffers(x, Wx, Wh, b, sigmoid_blocks):
    """The input projection of every step, block by block, with the sigmoid blocks halved,
    and the buffers of the step loop.

    x (T, N, D), Wx (D, G*H), Wh (H, G*H), b (G*H,), sigmoid_blocks = S -> ForwardBuffers;
    'half' is 0.5 on the first S blocks' columns and 1 elsewhere.
    """
    T, N, D = x.shape
    H = Wh.shape[0]
    G = Wh.shape[1] // H
    half = np.ones(G * H, dtype=Wh.dtype)
    half[: sigmoid_blocks * H] = 0.5
    proj = np.matmul(x.reshape(T * N, D), Wx * half)  # input projection, all steps
    gates = np.empty((T, G, N, H), dtype=proj.dtype)
    np.add(proj.reshape(T, N, G, H).transpose(0, 2, 1, 3), (b * half).reshape(G, 1, H),
           out=gates)
    rec = np.empty((N, G * H), dtype=gates.dtype)
    return ForwardBuffers(gates=gates, Wh_half=Wh * half,
                          h=np.empty((T, N, H), dtype=gates.dtype), rec=rec,
                          rec_blocks=rec.reshape(N, G, H).transpose(1, 0, 2),
                          tmp=np.empty((N, H), dtype=gates.dtype))


def upstream(h, dh_up, dh_last, cut):
    """dh (T, N, H) holding the upstream gradient at steps >= cut and 0 before.

    h (T, N, H) the states (for shape and dtype); dh_up (T, N, H) and/or dh_last (N, H).
    With ``dh_last`` only, the rows cut..T-2 are left for the backward loop to write."""
    T = h.shape[0]
    if dh_up is None and dh_last is None:
        raise ValueError("give the upstream gradient as dh_up (T, N, H) or dh_last (N, H)")
    if dh_up is not None:
        dh = np.array(dh_up, dtype=h.dtype, copy=True)
        if dh_last is not None and cut < T:
            dh[T - 1] += dh_last
    else:
        dh = np.empty_like(h)
        if cut < T:
            dh[T - 1] = dh_last
    dh[:cut] = 0
    return dh


def weight_grads(x, h, h0, d_in, d_rec, cut, Wx, need_dx):
    """The weight gradients after the backward loop, one matmul / sum each.

    x (T, N, D), h (T, N, H), h0 (N, H) or None; d_in (T, N, G*H) the gradient at the input
    projection x_t @ Wx + b, d_rec (T, N, G*H) the gradient at the recurrent product
    h_{t-1} @ Wh (the same array for a cell that adds the two), both 0 before ``cut``
    -> dWx (D, G*H), dWh (H, G*H) in d_rec's column order, db (G*H,), dx (T, N, D) or None.
    """
    T, N, D = x.shape
    H = h.shape[2]
    G = d_in.shape[2]
    d_flat = d_in[cut:].reshape(-1, G)
    dWx = x[cut:].reshape(-1, D).T @ d_flat
    start = max(cut, 1)  # h_{-1} = h0: the t = 0 term is added separately
    dWh = h[start - 1 : T - 1].reshape(-1, H).T @ d_rec[start:].reshape(-1, G)
    if cut == 0 and T > 0 and h0 is not None:
        dWh += h0.T @ d_rec[0]
    db = d_flat.sum(axis=0)
    dx = None
    if need_dx:
        dx = np.zeros(x.shape, dtype=d_in.dtype)
        np.matmul(d_flat, Wx.T, out=dx[cut:].reshape(-1, D))
    return dWx, dWh, db, dx


def batch_major(a):
    """(T, N, ...) -> a contiguous (N, T, ...) copy."""
    return np.ascontiguousarray(a.swapaxes(0, 1))
