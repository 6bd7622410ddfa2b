"""What one forward + backward pass computed, for the explainer to animate.

Letters: N = images, T = timesteps, H = hidden units, K = classes, D = RNN input features,
C1 / C2 = channels of the CNNRNN's two conv blocks.
Timesteps are 0-based: t = 0 is the first row read; ``hidden[:, t]`` is the state after it.

Produced by ``model.loss(X, y, reg, trace=True | 'norms')`` (core.models) and, for 'norms'
over a split batch, by ``core.batch_parallel.parallel_loss``. All arrays are taken from the
buffers of the pass itself (not recomputed) except the per-step weight-gradient norms, which
need the per-step outer products the fast path never forms.
"""

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class Trace:
    """One traced pass; a field the pass did not fill is None.

    trace='norms' fills sample_losses, probs, dh_norm and bptt_cut (and dc_norm for the LSTM);
    trace=True fills every field except the cell-specific ones its cell has not got (gates,
    cell, dc, dc_norm).
    """

    # h_t after each step, (N, T, H).
    hidden: np.ndarray | None = None
    # softmax(h_t @ W_hq + b_q), the prediction if the sequence stopped after step t, (N, T, K).
    step_probs: np.ndarray | None = None
    # the model's output probabilities, (N, K); equal to step_probs[:, -1].
    probs: np.ndarray | None = None
    # each image's own cross-entropy l_i, no regularisation, (N,).
    sample_losses: np.ndarray | None = None
    # dl_i/dh_t, the gradient of the image's own loss (so independent of N), (N, T, H);
    # zeros for t < bptt_cut.
    dh: np.ndarray | None = None
    # mean over the images of ||dl_i/dh_t||_2, (T,).
    dh_norm: np.ndarray | None = None
    # Frobenius norm of step t's contribution to the batch gradient of the mean loss,
    # h_{t-1}^T da_t for W_hh and x_t^T da_t for W_xh, (T,) each (for the GRU the gradients
    # at h_{t-1} W_hh and at x_t W_xh + b_h); the contributions sum to dW_hh / dW_xh.
    dWhh_norm_t: np.ndarray | None = None
    dWxh_norm_t: np.ndarray | None = None
    # number of leading timesteps that got no gradient (truncated BPTT); None = full BPTT.
    bptt_cut: int | None = None
    # CNNRNN only: 'conv1' (N, 16, 16, C1) and 'conv2' (N, 8, 8, C2), the block outputs after
    # conv -> pool -> bias -> ReLU (NHWC), and 'seq' (N, T, D), the RNN input.
    features: dict[str, np.ndarray] | None = None
    # Gated cells only (``Cell.trace``): each gate block's activation, {block: (N, T, H)};
    # the LSTM's cell state c_t (N, T, H) and dl_i/dc_t (N, T, H), the total gradient of the
    # image's own loss through every later path (zeros for t < bptt_cut), and the mean over
    # the images of ||dl_i/dc_t||_2 (T,), scaled like dh_norm.
    gates: dict[str, np.ndarray] | None = None
    cell: np.ndarray | None = None
    dc: np.ndarray | None = None
    dc_norm: np.ndarray | None = None

    def copy(self):
        """A deep copy (safe to hand to another thread)."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v = v.copy()
            elif isinstance(v, dict):
                v = {k: a.copy() for k, a in v.items()}
            kw[f.name] = v
        return Trace(**kw)
