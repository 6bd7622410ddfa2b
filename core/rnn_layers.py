"""Vanilla RNN layers: one step, and whole sequences with (truncated) BPTT.

    a_t = x_t @ Wx + h_{t-1} @ Wh + b        h_t = act(a_t),   act = tanh | relu

Letters: N = batch size, T = timesteps, D = input features, H = hidden units.
Timesteps are 0-based: x[:, 0] is read first; h[:, t] is the state after reading x[:, t];
h0 (N, H) is the state before x[:, 0].

Truncation: ``bptt_cut = c`` means timesteps with index < c get no gradient: the state
h[:, c-1] (or h0 when c = 0) is treated as a constant. ``None`` or 0 is full BPTT.

The sequence functions come in two layouts:

- ``rnn_forward`` / ``rnn_backward``: batch-major arrays (N, T, ...), the cs231n interface;
- ``rnn_forward_tm`` / ``rnn_backward_tm``: the fast time-major path (T, N, ...) the models use
  (through the 'rnn' entry of ``core.cells.CELLS``, with ``rnn_init`` and ``rnn_trace``).
  The input projection for all steps is one (T*N, D) @ (D, H) matmul; the loop does only
  h @ Wh into preallocated buffers; act'(a) for all steps at once in backward; dWx, dWh and db
  are one matmul / sum each after the backward loop.

The naive loop twins are in ``core.naive``. The sequential loops run inside
``core.blas.loop_blas_limit()`` (see there for why their BLAS thread count can be set apart).
"""

import numpy as np

from core import init as inits
from core.blas import loop_blas_limit
from core.cells import SeqGrads
from core.errors import ConfigError
from core.names import ACTIVATIONS


def check_activation(activation):
    """Raise ConfigError unless ``activation`` is one of ``core.names.ACTIVATIONS``."""
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"activation: unknown {activation!r}; choose one of {', '.join(ACTIVATIONS)}"
        )


def _act_deriv_from_output(h, activation):
    """act'(a) written in terms of h = act(a): 1 - h^2 (tanh) or [h > 0] (relu); same shape."""
    if activation == "tanh":
        d = h * h
        np.subtract(1, d, out=d)
        return d
    return (h > 0).astype(h.dtype)


# ---------------------------------------------------------------------------------------------
# One step
# ---------------------------------------------------------------------------------------------


def rnn_step_forward(x, prev_h, Wx, Wh, b, activation="tanh"):
    """One step.  x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,) -> next_h (N, H), cache."""
    a = x @ Wx + prev_h @ Wh + b
    next_h = np.tanh(a) if activation == "tanh" else np.maximum(a, 0)
    return next_h, (x, prev_h, Wx, Wh, next_h, activation)


def rnn_step_backward(dnext_h, cache):
    """dnext_h (N, H) -> dx (N, D), dprev_h (N, H), dWx (D, H), dWh (H, H), db (H,)."""
    x, prev_h, Wx, Wh, next_h, activation = cache
    da = dnext_h * _act_deriv_from_output(next_h, activation)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


# ---------------------------------------------------------------------------------------------
# Whole sequence, time-major fast path
# ---------------------------------------------------------------------------------------------


def rnn_forward_tm(x, h0, Wx, Wh, b, activation="tanh"):
    """Whole sequence, time-major.

    x (T, N, D), h0 (N, H) or None (zeros), Wx (D, H), Wh (H, H), b (H,)
    -> h (T, N, H), cache. ``cache['a']`` (T, N, H) holds the pre-activations.
    """
    T, N, D = x.shape
    H = Wh.shape[0]
    a = np.matmul(x.reshape(T * N, D), Wx).reshape(T, N, H)  # input projection, all steps
    a += b
    h = np.empty_like(a)
    tmp = np.empty((N, H), dtype=a.dtype)
    act = np.tanh if activation == "tanh" else None
    with loop_blas_limit():
        for t in range(T):
            if t > 0 or h0 is not None:
                np.matmul(h[t - 1] if t > 0 else h0, Wh, out=tmp)
                a[t] += tmp
            if act is not None:
                act(a[t], out=h[t])
            else:
                np.maximum(a[t], 0, out=h[t])
    cache = {"x": x, "h0": h0, "Wx": Wx, "Wh": Wh, "a": a, "h": h, "activation": activation}
    return h, cache


def rnn_backward_tm(cache, dh_up=None, dh_last=None, bptt_cut=None, need_dx=True):
    """BPTT for ``rnn_forward_tm``.

    Upstream gradient either ``dh_up`` (T, N, H) (a loss on every step) or ``dh_last`` (N, H)
    (a loss on the last state only; the models' case, which skips the per-step additions).
    ``bptt_cut`` c: steps with index < c get no gradient (see the module docstring).
    Returns ``core.cells.SeqGrads`` with ``extra = {'da': (T, N, H)}``, dL/da_t (0 for t < cut),
    and ``dh0`` (N, H) when h0 was given and the cut is 0, else None.
    """
    x, h0, Wx, Wh = cache["x"], cache["h0"], cache["Wx"], cache["Wh"]
    h, activation = cache["h"], cache["activation"]
    T, N, H = h.shape
    D = x.shape[2]
    cut = 0 if bptt_cut is None else max(0, min(int(bptt_cut), T))

    if dh_up is not None:
        dh = np.array(dh_up, dtype=h.dtype, copy=True)
    else:
        dh = np.empty_like(h)  # steps >= cut are all written by the loop below
        if cut < T:
            dh[T - 1] = dh_last
    dh[:cut] = 0
    da = np.empty_like(h)
    da[:cut] = 0
    if cut < T:
        deriv = _act_deriv_from_output(h[cut:], activation)  # act'(a_t) for all steps at once
        tmp = np.empty((N, H), dtype=h.dtype)
        WhT = Wh.T
        with loop_blas_limit():
            for t in range(T - 1, cut - 1, -1):
                np.multiply(dh[t], deriv[t - cut], out=da[t])
                if t > cut:
                    if dh_up is None:
                        np.matmul(da[t], WhT, out=dh[t - 1])
                    else:
                        np.matmul(da[t], WhT, out=tmp)
                        dh[t - 1] += tmp

    da_flat = da[cut:].reshape(-1, H)
    dWx = x[cut:].reshape(-1, D).T @ da_flat
    start = max(cut, 1)  # h_{-1} = h0: the t = 0 term is added separately
    dWh = h[start - 1 : T - 1].reshape(-1, H).T @ da[start:].reshape(-1, H)
    dh0 = None
    if cut == 0 and T > 0:
        dh0 = da[0] @ WhT if h0 is not None else None
        if h0 is not None:
            dWh += h0.T @ da[0]
    db = da_flat.sum(axis=0)
    dx = None
    if need_dx:
        dx = np.matmul(da.reshape(T * N, H), Wx.T).reshape(T, N, D)
    return SeqGrads(dx=dx, dWx=dWx, dWh=dWh, db=db, dh=dh, cut=cut, extra={"da": da},
                    dh0=dh0)


def rnn_init(rng, D, H, dtype, init="xavier", gain=1.0, activation="tanh"):
    """The cell's parameters: W_xh (D, H) Xavier, W_hh (H, H) by ``init`` (one of
    ``core.names.INITS``, see ``core.init``) with ``gain``, b_h (H,) zeros.

    ``activation`` is checked here so a bad choice fails when the model is built.
    """
    check_activation(activation)
    return {"W_xh": inits.xavier(rng, D, H, dtype),
            "W_hh": inits.recurrent_weights(rng, H, init, gain, dtype),
            "b_h": np.zeros(H, dtype=dtype)}


def rnn_trace(cache, grads):
    """The cell's own arrays for a Trace: none (the vanilla cell has no gates or cell state)."""
    return {}


# ---------------------------------------------------------------------------------------------
# Whole sequence, batch-major (cs231n interface)
# ---------------------------------------------------------------------------------------------


def rnn_forward(x, h0, Wx, Wh, b, activation="tanh"):
    """x (N, T, D), h0 (N, H), Wx (D, H), Wh (H, H), b (H,) -> h (N, T, H), cache."""
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2))
    h_tm, cache = rnn_forward_tm(x_tm, h0, Wx, Wh, b, activation)
    return h_tm.transpose(1, 0, 2), cache


def rnn_backward(dh, cache, bptt_cut=None):
    """dh (N, T, H) upstream -> dx (N, T, D), dh0 (N, H), dWx (D, H), dWh (H, H), db (H,).

    dh0 is zeros when the cut is > 0 (h0 got no gradient).
    """
    g = rnn_backward_tm(cache, dh_up=dh.transpose(1, 0, 2), bptt_cut=bptt_cut)
    N, H = dh.shape[0], dh.shape[2]
    dh0 = g.dh0 if g.dh0 is not None else np.zeros((N, H), dtype=dh.dtype)
    return g.dx.transpose(1, 0, 2), dh0, g.dWx, g.dWh, g.db
