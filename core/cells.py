"""The recurrent-cell interface: what a model needs from its recurrent part, for any cell.

Letters: N = batch, T = timesteps, D = input features, H = hidden units, G = gate blocks
(1 for the vanilla RNN, 4 for the LSTM, 3 for the GRU). Time-major arrays are (T, N, ...).

Every cell has the parameters W_xh (D, G*H), W_hh (H, G*H), b_h (G*H,), whose gate blocks are
column blocks of width H in the order of ``Cell.blocks``. Its layer module
(``core.rnn_layers``, ``core.lstm_layers``, ``core.gru_layers``) provides the four functions a
``Cell`` names:

    forward(x_tm (T, N, D), h0 (N, H) or None, W_xh, W_hh, b_h, **options) -> h (T, N, H), cache
    backward(cache, dh_last=(N, H), bptt_cut=c, need_dx=bool) -> SeqGrads
    init(rng, D, H, dtype, init='xavier', gain=1.0, **options) -> {'W_xh', 'W_hh', 'b_h'}
    trace(cache, grads: SeqGrads) -> dict of batch-major (N, T, H) arrays for the explorer:
        'gates': {block: (N, T, H)}, and for a cell with a cell state 'cell' and 'dc';
        {} for the vanilla cell

``options`` are the model's cell options: a cell names the ones its ``init`` and its
``forward`` take (``init_options``, ``forward_options``); the vanilla cell takes ``activation``
('tanh' | 'relu') in both; the LSTM and the GRU take ``forget_bias`` (the bias of their
state-keeping gate, f and z) in their init only.
``SeqGrads.extra`` holds the per-step gradients at the cell's pre-activations that the
per-step weight-gradient norms need: 'da' (T, N, G*H) where a_t = x_t W_xh + h_{t-1} W_hh + b_h
(vanilla, LSTM), or 'du' (T, N, 3H) and 'dv' (T, N, 3H) for the GRU's u_t = x_t W_xh + b_h
and v_t = h_{t-1} W_hh; the LSTM adds 'dc' (T, N, H) = total dL/dc_t and 'dc0'.
Truncation means the same for every cell: steps with index < T - k get no gradient, and the
states that lead into the window are constants.

Adding a cell: its layer module, plus one entry in ``_registry`` below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError


@dataclass
class SeqGrads:
    """Gradients of one backward pass over a time-major sequence."""

    dx: np.ndarray | None  # (T, N, D) gradient wrt the input sequence (None unless need_dx)
    dWx: np.ndarray        # (D, G*H)
    dWh: np.ndarray        # (H, G*H)
    db: np.ndarray         # (G*H,)
    dh: np.ndarray         # (T, N, H) total dL/dh_t through every later path (0 for t < cut)
    cut: int               # first timestep that got gradient (0 = full BPTT)
    extra: dict            # cell-specific per-step arrays, e.g. {'da': (T, N, G*H)} (rnn),
                           # {'dc': (T, N, H), ...} (lstm); see the module doc
    dh0: np.ndarray | None = None  # (N, H) gradient wrt h0 when h0 was given and cut is 0


@dataclass(frozen=True)
class Cell:
    """One kind of recurrent cell: its name, gate blocks and layer functions (module doc)."""

    name: str                # 'rnn' | 'lstm' | 'gru'
    blocks: tuple[str, ...]  # gate block names, in column order
    forward: Callable
    backward: Callable
    init: Callable
    trace: Callable
    init_options: tuple[str, ...] = ()     # model options ``init`` takes, e.g. ('forget_bias',)
    forward_options: tuple[str, ...] = ()  # model options ``forward`` takes, e.g. ('activation',)


def _registry() -> dict[str, Cell]:
    # The layer modules import SeqGrads from this module, so they are imported here, on the
    # first use of CELLS, rather than at the top: either module may then be imported first.
    from core import gru_layers, lstm_layers, rnn_layers
    from core.init import gru_params, lstm_params

    return {
        "rnn": Cell(name="rnn", blocks=("a",), forward=rnn_layers.rnn_forward_tm,
                    backward=rnn_layers.rnn_backward_tm, init=rnn_layers.rnn_init,
                    trace=rnn_layers.rnn_trace, init_options=("activation",),
                    forward_options=("activation",)),
        "lstm": Cell(name="lstm", blocks=lstm_layers.BLOCKS, forward=lstm_layers.lstm_forward_tm,
                     backward=lstm_layers.lstm_backward_tm, init=lstm_params,
                     trace=lstm_layers.lstm_trace, init_options=("forget_bias",)),
        "gru": Cell(name="gru", blocks=gru_layers.BLOCKS, forward=gru_layers.gru_forward_tm,
                    backward=gru_layers.gru_backward_tm, init=gru_params,
                    trace=gru_layers.gru_trace, init_options=("forget_bias",)),
    }


CELLS: dict[str, Cell]  # name -> Cell, built on first access (``_cells``)


def _cells() -> dict[str, Cell]:
    cells = globals().get("CELLS")
    if cells is None:
        cells = globals()["CELLS"] = _registry()
    return cells


def __getattr__(name):  # module attribute hook (PEP 562): makes ``CELLS`` lazy
    if name == "CELLS":
        return _cells()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_cell(name) -> Cell:
    """The registered cell called ``name``; ConfigError naming the choices for any other."""
    cells = _cells()
    if name not in cells:
        raise ConfigError(f"cell: unknown {name!r}; choose one of {', '.join(cells)}")
    return cells[name]
