"""Shared pieces of the gated-cell layer tests (tests/test_lstm_layers.py and
tests/test_gru_layers.py): the sizes, random float64 inputs, the upstream gradients and the loss
they are the gradient of.

Letters: N = images, T = timesteps, D = input features, H = hidden units, G = gate blocks
(4 for the LSTM, 3 for the GRU). Sequences are time-major, (T, N, ...).
"""

import numpy as np

N, T, D, H = 3, 6, 4, 5


def gated_inputs(seed: int, gates: int, cell_state: bool = False):
    """x (T, N, D), h0 (N, H), [c0 (N, H) if ``cell_state``], Wx (D, GH), Wh (H, GH), b (GH,),
    and the rng that drew them (for the upstream gradients)."""
    rng = np.random.default_rng(seed)
    x, h0 = rng.standard_normal((T, N, D)), rng.standard_normal((N, H))
    c0 = (rng.standard_normal((N, H)),) if cell_state else ()
    return (x, h0, *c0, 0.5 * rng.standard_normal((D, gates * H)),
            0.5 * rng.standard_normal((H, gates * H)), 0.3 * rng.standard_normal(gates * H), rng)


def upstream(kind, rng):
    """(dh_up, dh_last) for a loss on every step or on the last state only."""
    if kind == "up":
        return rng.standard_normal((T, N, H)), None
    return None, rng.standard_normal((N, H))


def seq_loss(h, dh_up, dh_last):
    """sum_t <h_t, dh_up[t]> or <h_{T-1}, dh_last>: the loss whose gradient the backward gets."""
    return np.sum(h * dh_up) if dh_up is not None else np.sum(h[-1] * dh_last)


def batch_major_upstream(dh_up, dh_last):
    """The same upstream gradient as one batch-major (N, T, H) array, as the naive twins take."""
    up = np.zeros((N, T, H))
    if dh_up is not None:
        up[:] = dh_up.transpose(1, 0, 2)
    else:
        up[:, -1] = dh_last
    return up
