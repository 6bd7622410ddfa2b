"""The gradients of a whole-sequence backward, shared by every recurrent cell.

Temporary home: this dataclass belongs in ``core/cells.py`` (the cell interface) and moves
there when the cell registry is merged; the fields are exactly the interface's.

Letters: N = batch, T = timesteps, D = input features, H = hidden units, G = gate blocks
(1 for the vanilla RNN, 4 for the LSTM, 3 for the GRU). Time-major arrays are (T, N, ...).
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class SeqGrads:
    dx: np.ndarray | None      # (T, N, D) gradient wrt the input sequence (None unless need_dx)
    dWx: np.ndarray            # (D, G*H)
    dWh: np.ndarray            # (H, G*H)
    db: np.ndarray             # (G*H,)
    dh: np.ndarray             # (T, N, H) total dL/dh_t through every later path (0 for t < cut)
    cut: int                   # first timestep that got gradient (0 = full BPTT)
    extra: dict                # cell-specific per-step arrays, e.g. {'da': (T,N,G*H)} (rnn),
                               # {'dc': (T,N,H)} (lstm: total dL/dc_t)
