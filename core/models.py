"""The two classifiers: a row-by-row RNN and a small CNN feeding an RNN.

Letters: N = images, T = timesteps, D = RNN input features, H = hidden units, K = classes,
C1 / C2 = channels of the two conv blocks.

Both models share the recurrent part and the head, composed from the layers they teach:
the recurrent cell from ``core.cells.CELLS`` (``cell='rnn'``: ``core.rnn_layers``; 'lstm':
``core.lstm_layers``; 'gru': ``core.gru_layers``), the head ``affine_forward`` and the loss
``softmax_cross_entropy_terms`` from ``core.layers``. Parameter names and shapes (G = gate
blocks of the cell: 1 'rnn', 4 'lstm', 3 'gru'):

    W_xh (D, G*H), W_hh (H, G*H), b_h (G*H,), W_hq (H, K), b_q (K,)
    cell 'rnn': h_t = act(x_t @ W_xh + h_{t-1} @ W_hh + b_h),  h_{-1} = 0,  act = tanh | relu
    cell 'lstm' / 'gru': see their layer modules; h_{-1} = 0 (and c_{-1} = 0)
    scores = h_{T-1} @ W_hq + b_q  (the last state; 0-based steps t = 0..T-1)

Cell options: ``activation`` applies to 'rnn' only (gated cells keep 'tanh'); ``forget_bias``
(at init, default 1.0: the bias of the gate that keeps the state, the LSTM's forget block f and
the GRU's update block z) to the gated cells only. ``init`` 'identity' / 'normal'
(the IRNN and the exploding demo) are vanilla-cell schemes; gated cells take 'xavier' or
'orthogonal' per H x H block of W_hh (``core.init``).

``loss`` is the mean softmax cross-entropy plus ``reg / 2 * sum ||W||^2`` over the weights
(keys starting with ``W_``; biases are not regularised). ``bptt_window = k`` truncates BPTT:
only the last k steps get gradient (steps with index < T - k get none; the state they lead to
is treated as a constant).

RowRNN ('row-rnn'): input X (N, T=32, D=96), row t of the image = its 32 pixels with R, G, B
interleaved (``x.reshape(N, 32, 96)``).

CNNRNN ('cnn-rnn'): input images X (N, 32, 32, 3) NHWC. Two blocks of conv3x3 (pad 1) ->
ReLU -> maxpool2x2 (computed as conv -> pool -> +bias -> ReLU, which is equal) give an
(N, 8, 8, C2) map, read as a sequence in one of two layouts (``sequence``):
'rows' (default): T = 8, map row t (which sees image rows 4t..4t+3 plus the receptive-field
halo) is x_t of D = 8 * C2 features laid out (W, C): x_t[w * C2 + c] = map[t, w, c];
'positions': T = 64 map positions in raster order (row by row, left to right), x_t of
D = C2 features: x_t[c] = map[t // 8, t % 8, c] (core.timesteps gives each step's patch).
Extra parameters: W_conv1 (3, 3, 3, C1), b_conv1 (C1,), W_conv2 (3, 3, C1, C2), b_conv2 (C2,);
conv weights are (kernel row, kernel column, input channel, output channel), channels-last.
"""

import numpy as np

from core import init as inits
from core.cells import get_cell
from core.conv import conv_stack_backward, conv_stack_block1, conv_stack_forward
from core.errors import ConfigError
from core.gated import batch_major
from core.layers import (
    affine_backward,
    affine_forward,
    softmax,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_terms,
)
from core.names import DEFAULT_HIDDEN, DTYPES, SEQUENCES, TIMESTEPS, timesteps_of
from core.rnn_layers import check_activation
from core.trace import Trace


def _dtype_name(dtype):
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in DTYPES:
        raise ConfigError(f"dtype: unsupported {dtype!r}; choose one of {', '.join(DTYPES)}")
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


def _step_weight_grad_norms(seq_tm, h, d_rec, d_in, cut, dtype):
    """||h_{t-1}^T d_rec_t||_F and ||x_t^T d_in_t||_F per step t -> two (T,) arrays.

    seq_tm (T, N, D), h (T, N, H); d_rec (T, N, G*H) the gradient at h_{t-1} @ W_hh and d_in
    (T, N, G*H) the gradient at x_t @ W_xh (both the pre-activation gradient 'da' for the
    vanilla cell and the LSTM; the GRU's 'dv' and 'du'). Zeros for t < cut, and for W_hh at
    t = 0 (h_{-1} = 0 adds nothing). A permutation of the columns leaves the norms unchanged.
    """
    T = h.shape[0]
    whh = np.zeros(T, dtype=dtype)
    start = max(cut, 1)
    if start < T:
        contrib = np.matmul(h[start - 1 : T - 1].transpose(0, 2, 1), d_rec[start:])
        whh[start:] = np.sqrt(np.einsum("tij,tij->t", contrib, contrib))
    wxh = np.zeros(T, dtype=dtype)
    if cut < T:
        contrib = np.matmul(seq_tm[cut:].transpose(0, 2, 1), d_in[cut:])
        wxh[cut:] = np.sqrt(np.einsum("tij,tij->t", contrib, contrib))
    return whh, wxh


class _RNNClassifier:
    """Shared recurrent part + head; subclasses provide ``_encode`` / ``_encode_backward``."""

    kind = ""
    T = 0

    def _init_recurrent(self, D, hidden_dim, num_classes, cell, activation, forget_bias, init,
                        gain, bptt_window, dtype, seed, rng):
        if int(hidden_dim) < 1 or int(num_classes) < 2:
            raise ConfigError("hidden_dim must be >= 1 and num_classes >= 2")
        self.cell = get_cell(cell)
        check_activation(activation)
        if self.cell.name != "rnn" and activation != "tanh":
            raise ConfigError(f"activation {activation!r} applies to the vanilla cell only "
                              f"(cell 'rnn'); the {self.cell.name} cell has its own gate "
                              "nonlinearities: drop the activation or use cell 'rnn'")
        if isinstance(forget_bias, bool) or not isinstance(
                forget_bias, (int, float, np.integer, np.floating)) \
                or not np.isfinite(forget_bias):
            raise ConfigError(f"forget_bias: must be a finite number, got {forget_bias!r}")
        if self.cell.name == "rnn" and float(forget_bias) != 1.0:
            raise ConfigError("forget_bias applies to the gated cells (lstm, gru) only, not the "
                              "vanilla rnn")
        self.activation = activation
        self.forget_bias = float(forget_bias)
        self.init = init
        self.gain = float(gain)
        self.bptt_window = _check_window(bptt_window)
        self.dtype = np.dtype(_dtype_name(dtype))
        self.seed = int(seed)
        H, K = int(hidden_dim), int(num_classes)
        dt = self.dtype
        self.params.update(self.cell.init(rng, D, H, dt, init=init, gain=self.gain,
                                          **self._options(self.cell.init_options)))
        self.params["W_hq"] = inits.xavier(rng, H, K, dt)
        self.params["b_q"] = np.zeros(K, dtype=dt)

    def _options(self, names):
        """The model's values of the cell options ``names`` (``core.cells``), as keywords."""
        return {name: getattr(self, name) for name in names}

    @property
    def cell_options(self):
        """Keyword options for the cell's forward (``Cell.forward_options``)."""
        return self._options(self.cell.forward_options)

    def _config(self):
        """The constructor arguments both models share (JSON-able)."""
        return {"kind": self.kind, "cell": self.cell.name,
                "hidden_dim": int(self.params["W_hh"].shape[0]),
                "num_classes": int(self.params["b_q"].shape[0]),
                "activation": self.activation, "forget_bias": self.forget_bias,
                "init": self.init, "gain": self.gain, "bptt_window": self.bptt_window,
                "dtype": self.dtype.name, "seed": self.seed}

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

    def _forward(self, X):
        """-> seq_tm (T, N, D), encoder cache, h (T, N, H), cell cache, scores (N, K), head
        cache."""
        p = self.params
        seq_tm, enc = self._encode(X)
        h, cell_cache = self.cell.forward(seq_tm, None, p["W_xh"], p["W_hh"], p["b_h"],
                                          **self.cell_options)
        scores, head_cache = affine_forward(h[-1], p["W_hq"], p["b_q"])
        return seq_tm, enc, h, cell_cache, scores, head_cache

    def scores(self, X):
        """Logits (N, K) for model input X (see ``input_from_images``)."""
        return self._forward(X)[4]

    def scores_and_hidden(self, X):
        """Logits (N, K) and the last hidden state h_{T-1} (N, H), forward only."""
        _, _, h, _, scores, _ = self._forward(X)
        return scores, h[-1].copy()

    def trace(self, X, y):
        """The full Trace of one pass: ``loss(X, y, 0.0, trace=True)[2]``."""
        return self.loss(X, y, 0.0, trace=True)[2]

    def loss(self, X, y, reg=0.0, trace=False):
        """Mean cross-entropy + L2 and its gradients.

        X: model input (see ``input_from_images``); y int (N,) in 0..K-1.
        Returns (loss float, grads dict like ``params``), plus a ``Trace`` when ``trace`` is
        True (everything) or 'norms' (only ``dh_norm``, ``sample_losses``, ``probs``,
        ``bptt_cut``, and for the LSTM ``dc_norm``).
        """
        if trace not in (False, True, "norms"):
            raise ValueError(f"trace must be False, True or 'norms', got {trace!r}")
        p = self.params
        y = np.asarray(y)
        seq_tm, enc, h, cell_cache, scores, head_cache = self._forward(X)
        T, N, H = h.shape
        sample_losses, probs = softmax_cross_entropy_terms(scores, y)
        data_loss = float(sample_losses.mean())
        dscores = softmax_cross_entropy_backward(probs, y)

        grads = {}
        dh_last, grads["W_hq"], grads["b_q"] = affine_backward(dscores, head_cache)
        cut = self.bptt_cut(T)
        g = self.cell.backward(cell_cache, dh_last=dh_last, bptt_cut=cut,
                               need_dx=self.needs_input_grad)
        grads["W_xh"], grads["W_hh"], grads["b_h"] = g.dWx, g.dWh, g.db
        self._encode_backward(g.dx, enc, grads)

        grads = {k: grads[k] for k in p}  # same order as params
        loss = data_loss + add_l2(p, grads, reg)
        if not trace:
            return loss, grads

        # per-sample dl_i/dh_t = N * (gradient of the batch-mean loss); likewise dl_i/dc_t
        dh_norm = self._mean_norm(g.dh, N)
        dc_tm = g.extra.get("dc")
        dc_norm = None if dc_tm is None else self._mean_norm(dc_tm, N)
        bptt_cut = cut if cut > 0 else None
        if trace == "norms":
            return loss, grads, Trace(sample_losses=sample_losses, dh_norm=dh_norm, probs=probs,
                                      bptt_cut=bptt_cut, dc_norm=dc_norm)
        step_scores, _ = affine_forward(h, p["W_hq"], p["b_q"])
        dh = batch_major(g.dh)
        dh *= N
        whh = wxh = None
        d_rec = g.extra.get("dv", g.extra.get("da"))
        d_in = g.extra.get("du", g.extra.get("da"))
        if d_rec is not None and d_in is not None:
            whh, wxh = _step_weight_grad_norms(seq_tm, h, d_rec, d_in, cut, self.dtype)
        cell_arrays = self.cell.trace(cell_cache, g)
        if "dc" in cell_arrays:
            cell_arrays["dc"] *= N
        tr = Trace(hidden=batch_major(h), step_probs=batch_major(softmax(step_scores)),
                   probs=probs, sample_losses=sample_losses, dh=dh, dh_norm=dh_norm,
                   dWhh_norm_t=whh, dWxh_norm_t=wxh, bptt_cut=bptt_cut,
                   features=self._features(enc, seq_tm), dc_norm=dc_norm, **cell_arrays)
        return loss, grads, tr

    def _mean_norm(self, d_tm, N):
        """N * mean over the batch of ||d_tm[t, n]||_2 -> (T,) in the model dtype.

        d_tm (T, N, H) a gradient of the batch-mean loss: N times it is the image's own."""
        sq = np.einsum("tnh,tnh->tn", d_tm, d_tm)
        return (np.sqrt(sq).mean(axis=1) * N).astype(self.dtype)

    def input_gradient(self, X, dscores):
        """Backward from an upstream gradient on the scores down to the RNN input, full BPTT.

        X: model input (see ``input_from_images``); dscores (N, K) the upstream gradient
        dF/dscores of any scalar F (e_k per image: F = sum of the class-k logits, so each
        image's rows get d logit_k / d x_t; probs - onehot: each image's own loss).
        Returns a dict: 'scores' (N, K); 'dseq' (N, T, D) = dF/dx_t of the RNN input
        sequence; 'cell' the cell's ``core.cells.SeqGrads`` (its dh (T, N, H) = dF/dh_t, and
        e.g. extra['dc'] for the LSTM); 'encoder' the encoder cache (None for the row-RNN;
        the CNN+RNN's ``conv_stack_forward`` cache, from which the image gradient follows).
        No parameter gradients are accumulated; ``bptt_window`` does not apply.
        """
        seq_tm, enc, h, cell_cache, scores, head_cache = self._forward(X)
        dh_last, _, _ = affine_backward(np.asarray(dscores, dtype=h.dtype), head_cache)
        g = self.cell.backward(cell_cache, dh_last=dh_last, bptt_cut=0, need_dx=True)
        return {"scores": scores, "dseq": np.ascontiguousarray(g.dx.transpose(1, 0, 2)),
                "cell": g, "encoder": enc}


class RowRNN(_RNNClassifier):
    """An RNN reading an image row by row (T = 32 rows of D = 96 values).

    Input X (N, T, D) — usually ``input_from_images(x)`` = x.reshape(N, 32, 96); any T works.
    """

    kind = "row-rnn"
    T = TIMESTEPS[kind]

    def __init__(self, input_dim=96, hidden_dim=DEFAULT_HIDDEN[kind], num_classes=10,
                 cell="rnn", activation="tanh", forget_bias=1.0, init="xavier", gain=1.0,
                 bptt_window=None, dtype=np.float32, seed=0):
        self.params = {}
        self.input_dim = int(input_dim)
        rng = np.random.default_rng(seed)
        self._init_recurrent(self.input_dim, hidden_dim, num_classes, cell, activation,
                             forget_bias, init, gain, bptt_window, dtype, seed, rng)

    @property
    def config(self):
        """JSON-able constructor arguments plus 'kind'; ``build_model(config)`` rebuilds."""
        return {**self._config(), "input_dim": self.input_dim}

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
    """conv3x3(3->C1)+ReLU+pool2 -> conv3x3(C1->C2)+ReLU+pool2 -> RNN over the 8 x 8 map
    (8 rows or 64 positions, ``sequence``) -> head.

    Input X (N, 32, 32, 3) images (any H, W divisible by 4 with W/4 * C2 = D also works for
    'rows'; 'positions' reads whatever number of positions the map has).
    """

    kind = "cnn-rnn"
    T = TIMESTEPS[kind]

    def __init__(self, channels=(64, 64), hidden_dim=DEFAULT_HIDDEN[kind], num_classes=10,
                 cell="rnn", activation="tanh", forget_bias=1.0, init="xavier", gain=1.0,
                 bptt_window=None, dtype=np.float32, seed=0, sequence="rows"):
        channels = tuple(int(c) for c in channels)
        if len(channels) != 2 or min(channels) < 1:
            raise ConfigError(f"channels: need two positive channel counts, got {channels!r}")
        if sequence not in SEQUENCES:
            raise ConfigError(f"sequence: unknown {sequence!r}; choose one of "
                              f"{', '.join(SEQUENCES)}")
        self.channels = channels
        self.sequence = sequence
        self.T = timesteps_of(self.kind, sequence)
        self.params = {}
        dt = np.dtype(_dtype_name(dtype))
        rng = np.random.default_rng(seed)
        C1, C2 = channels
        self.params["W_conv1"] = inits.he_conv(rng, 3, C1, dt)
        self.params["b_conv1"] = np.zeros(C1, dtype=dt)
        self.params["W_conv2"] = inits.he_conv(rng, C1, C2, dt)
        self.params["b_conv2"] = np.zeros(C2, dtype=dt)
        D = 8 * C2 if sequence == "rows" else C2
        self._init_recurrent(D, hidden_dim, num_classes, cell, activation, forget_bias, init,
                             gain, bptt_window, dtype, seed, rng)

    @property
    def config(self):
        """JSON-able constructor arguments plus 'kind'; ``build_model(config)`` rebuilds."""
        return {**self._config(), "channels": list(self.channels), "sequence": self.sequence}

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
        N, R4, W4, C2 = fmap.shape
        if self.sequence == "rows":
            seq = fmap.reshape(N, R4, W4 * C2)
        else:  # raster order: position t = (t // W4, t % W4)
            seq = fmap.reshape(N, R4 * W4, C2)
        return np.ascontiguousarray(seq.transpose(1, 0, 2)), cache

    def _encode_backward(self, dseq_tm, enc_cache, grads):
        out = enc_cache["out"]
        dmap = dseq_tm.transpose(1, 0, 2).reshape(out.shape)
        (grads["W_conv1"], grads["b_conv1"],
         grads["W_conv2"], grads["b_conv2"]) = conv_stack_backward(dmap, enc_cache)

    def _features(self, enc_cache, seq_tm):
        # views into the forward's buffers, which the backward only reads
        return {"conv1": conv_stack_block1(enc_cache),
                "conv2": enc_cache["out"],
                "seq": np.ascontiguousarray(seq_tm.transpose(1, 0, 2))}


MODELS = {cls.kind: cls for cls in (RowRNN, CNNRNN)}  # the kinds of core.names.MODEL_KINDS


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
