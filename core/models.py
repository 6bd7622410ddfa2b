"""The two classifiers: a row-by-row RNN and a small CNN feeding an RNN.

Letters: N = images, T = timesteps, D = RNN input features, H = hidden units, K = classes,
C1 / C2 = channels of the two conv blocks.

Both models share the recurrent part and the head (parameter names and shapes):

    W_xh (D, H), W_hh (H, H), b_h (H,), W_hq (H, K), b_q (K,)
    h_t = act(x_t @ W_xh + h_{t-1} @ W_hh + b_h),  h_{-1} = 0,  act = tanh | relu
    scores = h_{T-1} @ W_hq + b_q  (the last state; 0-based steps t = 0..T-1)

``loss`` is the mean softmax cross-entropy plus ``reg / 2 * sum ||W||^2`` over the weights
(keys starting with ``W_``; biases are not regularised). ``bptt_window = k`` truncates BPTT:
only the last k steps get gradient (steps with index < T - k get none; the state they lead to
is treated as a constant).

RowRNN ('row-rnn'): input X (N, T=32, D=96), row t of the image = its 32 pixels with R, G, B
interleaved (``x.reshape(N, 32, 96)``).

CNNRNN ('cnn-rnn'): input images X (N, 32, 32, 3) NHWC. Two blocks of conv3x3 (pad 1) ->
ReLU -> maxpool2x2 (computed as conv -> pool -> +bias -> ReLU, which is equal) give an
(N, 8, 8, C2) map. Map row t (which sees image rows 4t..4t+3 plus the receptive-field halo)
is RNN input x_t of D = 8 * C2 features laid out (W, C): x_t[w * C2 + c] = map[t, w, c].
Extra parameters: W_conv1 (3, 3, 3, C1), b_conv1 (C1,), W_conv2 (3, 3, C1, C2), b_conv2 (C2,);
conv weights are (kernel row, kernel column, input channel, output channel), channels-last.
"""

import numpy as np

from core import init as inits
from core.conv import conv_stack_backward, conv_stack_block1, conv_stack_forward
from core.errors import ConfigError
from core.layers import softmax, softmax_cross_entropy_terms
from core.rnn_layers import check_activation, rnn_backward_tm, rnn_forward_tm
from core.trace import Trace

DTYPES = ("float32", "float64")


def _dtype_name(dtype):
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in DTYPES:
        raise ConfigError(f"dtype: unsupported {dtype!r}; choose float32 or float64")
    return name


def _check_window(bptt_window):
    if bptt_window is None:
        return None
    if isinstance(bptt_window, bool) or not isinstance(bptt_window, (int, np.integer)) \
            or bptt_window < 1:
        raise ConfigError(
            f"bptt_window: must be a positive number of steps or None (full BPTT), "
            f"got {bptt_window!r}"
        )
    return int(bptt_window)


def add_l2(params, grads, reg):
    """Add L2 on the weights (keys starting with ``W_``) to ``grads`` in place: g += reg * W.
    Returns the penalty reg / 2 * sum ||W||^2 (0.0 when reg is 0)."""
    penalty = 0.0
    if reg:
        for k, w in params.items():
            if k.startswith("W_"):
                penalty += 0.5 * reg * float(np.sum(w * w))
                grads[k] += reg * w
    return penalty


class _RNNClassifier:
    """Shared recurrent part + head; subclasses provide ``_encode`` / ``_encode_backward``."""

    kind = ""
    T = 0

    def _init_rnn(self, D, hidden_dim, num_classes, activation, init, gain, bptt_window,
                  dtype, seed, rng):
        check_activation(activation)
        if init not in inits.RNN_INITS:
            raise ConfigError(
                f"init: unknown scheme {init!r}; choose one of {', '.join(inits.RNN_INITS)}"
            )
        if int(hidden_dim) < 1 or int(num_classes) < 2:
            raise ConfigError("hidden_dim must be >= 1 and num_classes >= 2")
        self.activation = activation
        self.init = init
        self.gain = float(gain)
        self.bptt_window = _check_window(bptt_window)
        self.dtype = np.dtype(_dtype_name(dtype))
        self.seed = int(seed)
        H, K = int(hidden_dim), int(num_classes)
        dt = self.dtype
        self.params["W_xh"] = inits.xavier(rng, D, H, dt)
        self.params["W_hh"] = inits.recurrent_weights(rng, H, init, self.gain, dt)
        self.params["b_h"] = np.zeros(H, dtype=dt)
        self.params["W_hq"] = inits.xavier(rng, H, K, dt)
        self.params["b_q"] = np.zeros(K, dtype=dt)

    # --- subclass hooks ----------------------------------------------------------------------

    def input_from_images(self, x):
        raise NotImplementedError

    def _encode(self, X):
        """Model input -> RNN input time-major (T, N, D), encoder cache."""
        raise NotImplementedError

    def _encode_backward(self, dseq_tm, enc_cache, grads):
        """dseq_tm (T, N, D) -> adds the encoder's parameter gradients to ``grads``."""

    def _features(self, enc_cache, seq_tm):
        return None

    # --- shared ------------------------------------------------------------------------------

    @property
    def needs_input_grad(self):
        return False

    def bptt_cut(self, T=None):
        """First timestep that gets gradient for sequences of length T (0 = full BPTT)."""
        T = self.T if T is None else T
        return 0 if self.bptt_window is None else max(0, T - self.bptt_window)

    def _rnn_forward(self, X):
        p = self.params
        seq_tm, enc = self._encode(X)
        h, rcache = rnn_forward_tm(seq_tm, None, p["W_xh"], p["W_hh"], p["b_h"], self.activation)
        scores = h[-1] @ p["W_hq"]
        scores += p["b_q"]
        return seq_tm, enc, h, rcache, scores

    def scores(self, X):
        """Logits (N, K) for model input X (see ``input_from_images``)."""
        return self._rnn_forward(X)[4]

    def scores_and_hidden(self, X):
        """Logits (N, K) and the last hidden state h_{T-1} (N, H), forward only."""
        _, _, h, _, scores = self._rnn_forward(X)
        return scores, h[-1].copy()

    def trace(self, X, y):
        """The full Trace of one pass: ``loss(X, y, 0.0, trace=True)[2]``."""
        return self.loss(X, y, 0.0, trace=True)[2]

    def loss(self, X, y, reg=0.0, trace=False):
        """Mean cross-entropy + L2 and its gradients.

        X: model input (see ``input_from_images``); y int (N,) in 0..K-1.
        Returns (loss float, grads dict like ``params``), plus a ``Trace`` when ``trace`` is
        True (everything) or 'norms' (only ``dh_norm``, ``sample_losses``, ``probs``, ``bptt_cut``).
        """
        if trace not in (False, True, "norms"):
            raise ValueError(f"trace must be False, True or 'norms', got {trace!r}")
        p = self.params
        y = np.asarray(y)
        seq_tm, enc, h, rcache, scores = self._rnn_forward(X)
        T, N, H = h.shape
        sample_losses, probs = softmax_cross_entropy_terms(scores, y)
        data_loss = float(sample_losses.mean())
        dscores = probs.copy()
        dscores[np.arange(N), y] -= 1
        dscores /= N

        grads = {}
        h_last = h[-1]
        grads["W_hq"] = h_last.T @ dscores
        grads["b_q"] = dscores.sum(axis=0)
        dh_last = dscores @ p["W_hq"].T
        cut = self.bptt_cut(T)
        g = rnn_backward_tm(rcache, dh_last=dh_last, bptt_cut=cut,
                            need_dx=self.needs_input_grad)
        grads["W_xh"], grads["W_hh"], grads["b_h"] = g.dWx, g.dWh, g.db
        self._encode_backward(g.dx, enc, grads)

        grads = {k: grads[k] for k in p}  # same order as params
        loss = data_loss + add_l2(p, grads, reg)
        if not trace:
            return loss, grads

        # per-sample dl_i/dh_t = N * (gradient of the batch-mean loss)
        dh_sq = np.einsum("tnh,tnh->tn", g.dh, g.dh)
        dh_norm = (np.sqrt(dh_sq).mean(axis=1) * N).astype(self.dtype)
        tr = Trace(sample_losses=sample_losses, dh_norm=dh_norm, probs=probs,
                   bptt_cut=cut if cut > 0 else None)
        if trace == "norms":
            return loss, grads, tr
        tr.hidden = np.ascontiguousarray(h.transpose(1, 0, 2))
        tr.pre = np.ascontiguousarray(rcache["a"].transpose(1, 0, 2))
        step_scores = h @ p["W_hq"]
        step_scores += p["b_q"]
        tr.step_probs = np.ascontiguousarray(softmax(step_scores).transpose(1, 0, 2))
        tr.probs = probs
        tr.dh = np.ascontiguousarray(g.dh.transpose(1, 0, 2))
        tr.dh *= N
        whh = np.zeros(T, dtype=self.dtype)
        start = max(cut, 1)  # h_{-1} = 0: step 0 adds nothing to dW_hh
        if start < T:
            contrib = np.matmul(h[start - 1 : T - 1].transpose(0, 2, 1), g.da[start:])
            whh[start:] = np.sqrt(np.einsum("tij,tij->t", contrib, contrib))
        wxh = np.zeros(T, dtype=self.dtype)
        if cut < T:
            contrib = np.matmul(seq_tm[cut:].transpose(0, 2, 1), g.da[cut:])
            wxh[cut:] = np.sqrt(np.einsum("tij,tij->t", contrib, contrib))
        tr.dWhh_norm_t, tr.dWxh_norm_t = whh, wxh
        tr.features = self._features(enc, seq_tm)
        return loss, grads, tr


class RowRNN(_RNNClassifier):
    """Vanilla RNN reading an image row by row (T = 32 rows of D = 96 values).

    Input X (N, T, D) — usually ``input_from_images(x)`` = x.reshape(N, 32, 96); any T works.
    """

    kind = "row-rnn"
    T = 32

    def __init__(self, input_dim=96, hidden_dim=256, num_classes=10, activation="tanh",
                 init="xavier", gain=1.0, bptt_window=None, dtype=np.float32, seed=0):
        self.params = {}
        self.input_dim = int(input_dim)
        rng = np.random.default_rng(seed)
        self._init_rnn(self.input_dim, hidden_dim, num_classes, activation, init, gain,
                       bptt_window, dtype, seed, rng)

    @property
    def config(self):
        """JSON-able constructor arguments plus 'kind'; ``build_model(config)`` rebuilds."""
        return {"kind": self.kind, "input_dim": self.input_dim,
                "hidden_dim": int(self.params["W_hh"].shape[0]),
                "num_classes": int(self.params["b_q"].shape[0]),
                "activation": self.activation, "init": self.init, "gain": self.gain,
                "bptt_window": self.bptt_window, "dtype": self.dtype.name, "seed": self.seed}

    def input_from_images(self, x):
        """Images float (N, 32, 32, 3) -> row sequences (N, 32, 96) in the model dtype."""
        x = np.asarray(x)
        return x.reshape(x.shape[0], x.shape[1], -1).astype(self.dtype, copy=False)

    def _encode(self, X):
        X = np.asarray(X)
        if X.ndim == 4:
            X = self.input_from_images(X)
        if X.ndim != 3 or X.shape[2] != self.input_dim:
            raise ValueError(f"RowRNN expects (N, T, {self.input_dim}), got {X.shape}")
        return np.ascontiguousarray(X.transpose(1, 0, 2), dtype=self.dtype), None


class CNNRNN(_RNNClassifier):
    """conv3x3(3->C1)+ReLU+pool2 -> conv3x3(C1->C2)+ReLU+pool2 -> RNN over 8 map rows -> head.

    Input X (N, 32, 32, 3) images (any H, W divisible by 4 with W/4 * C2 = D also works).
    """

    kind = "cnn-rnn"
    T = 8

    def __init__(self, channels=(64, 64), hidden_dim=128, num_classes=10, activation="tanh",
                 init="xavier", gain=1.0, bptt_window=None, dtype=np.float32, seed=0):
        channels = tuple(int(c) for c in channels)
        if len(channels) != 2 or min(channels) < 1:
            raise ConfigError(f"channels: need two positive channel counts, got {channels!r}")
        self.channels = channels
        self.params = {}
        dt = np.dtype(_dtype_name(dtype))
        rng = np.random.default_rng(seed)
        C1, C2 = channels
        self.params["W_conv1"] = inits.he_conv(rng, 3, C1, dt)
        self.params["b_conv1"] = np.zeros(C1, dtype=dt)
        self.params["W_conv2"] = inits.he_conv(rng, C1, C2, dt)
        self.params["b_conv2"] = np.zeros(C2, dtype=dt)
        self._init_rnn(8 * C2, hidden_dim, num_classes, activation, init, gain,
                       bptt_window, dtype, seed, rng)

    @property
    def config(self):
        """JSON-able constructor arguments plus 'kind'; ``build_model(config)`` rebuilds."""
        return {"kind": self.kind, "channels": list(self.channels),
                "hidden_dim": int(self.params["W_hh"].shape[0]),
                "num_classes": int(self.params["b_q"].shape[0]),
                "activation": self.activation, "init": self.init, "gain": self.gain,
                "bptt_window": self.bptt_window, "dtype": self.dtype.name, "seed": self.seed}

    @property
    def needs_input_grad(self):
        return True

    def input_from_images(self, x):
        """Images float (N, 32, 32, 3) -> the same array in the model dtype."""
        return np.asarray(x).astype(self.dtype, copy=False)

    def _encode(self, X):
        p = self.params
        X = np.asarray(X)
        if X.ndim != 4 or X.shape[3] != 3:
            raise ValueError(f"CNNRNN expects images (N, H, W, 3), got {X.shape}")
        fmap, cache = conv_stack_forward(X, p["W_conv1"], p["b_conv1"], p["W_conv2"],
                                         p["b_conv2"])
        N, T, W4, C2 = fmap.shape
        seq_tm = np.ascontiguousarray(fmap.reshape(N, T, W4 * C2).transpose(1, 0, 2))
        return seq_tm, cache

    def _encode_backward(self, dseq_tm, enc_cache, grads):
        out = enc_cache["out"]
        N, T, W4, C2 = out.shape
        dmap = dseq_tm.transpose(1, 0, 2).reshape(N, T, W4, C2)
        (grads["W_conv1"], grads["b_conv1"],
         grads["W_conv2"], grads["b_conv2"]) = conv_stack_backward(dmap, enc_cache)

    def _features(self, enc_cache, seq_tm):
        return {"conv1": conv_stack_block1(enc_cache).copy(),
                "conv2": enc_cache["out"],
                "seq": np.ascontiguousarray(seq_tm.transpose(1, 0, 2))}


MODELS = {RowRNN.kind: RowRNN, CNNRNN.kind: CNNRNN}


def build_model(config):
    """Rebuild a model from its ``config`` dict (as produced by ``model.config``)."""
    cfg = dict(config)
    kind = cfg.pop("kind", None)
    if kind not in MODELS:
        raise ConfigError(f"model: unknown kind {kind!r}; choose one of {', '.join(MODELS)}")
    if "channels" in cfg:
        cfg["channels"] = tuple(cfg["channels"])
    try:
        return MODELS[kind](**cfg)
    except TypeError as exc:
        raise ConfigError(f"model config for {kind}: {exc}") from None
