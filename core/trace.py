"""What one forward + backward pass computed, for the explainer to animate.

Letters: N = images, T = timesteps, H = hidden units, K = classes, D = RNN input features,
C1 / C2 = channels of the CNNRNN's two conv blocks.
Timesteps are 0-based: t = 0 is the first row read; ``hidden[:, t]`` is the state after it.

All arrays are taken from the buffers of the pass itself (not recomputed) except the per-step
weight-gradient norms, which need the per-step outer products the fast path never forms.
"""

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class Trace:
    """One traced pass; fields a pass did not fill are None.

    hidden (N, T, H): h_t after each step.  pre (N, T, H): pre-activations a_t.
    step_probs (N, T, K): softmax(h_t @ W_hq + b_q), the prediction if the sequence stopped at t.
    probs (N, K): the model's output probabilities (= step_probs[:, -1]).
    sample_losses (N,): each image's own cross-entropy l_i (no regularisation).
    dh (N, T, H): dl_i/dh_t, the gradient of the sample's own loss l_i (independent of N);
        zeros for t < bptt_cut.
    dh_norm (T,): mean over samples of ||dl_i/dh_t||_2.
    dWhh_norm_t (T,), dWxh_norm_t (T,): Frobenius norm of step t's contribution to the
        batch gradient of the mean loss (h_{t-1}^T da_t / x_t^T da_t); they sum to dW_hh / dW_xh.
    bptt_cut: number of leading timesteps that got no gradient (truncated BPTT), None = full.
    features: CNNRNN only — 'conv1' (N, 16, 16, C1) and 'conv2' (N, 8, 8, C2), the block
        outputs after conv -> pool -> bias -> ReLU (NHWC), and 'seq' (N, T, D) the RNN input.
    """

    hidden: np.ndarray | None = None
    pre: np.ndarray | None = None
    step_probs: np.ndarray | None = None
    probs: np.ndarray | None = None
    sample_losses: np.ndarray | None = None
    dh: np.ndarray | None = None
    dh_norm: np.ndarray | None = None
    dWhh_norm_t: np.ndarray | None = None
    dWxh_norm_t: np.ndarray | None = None
    bptt_cut: int | None = None
    features: dict[str, np.ndarray] | None = None

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
