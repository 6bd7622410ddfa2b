"""CNN+RNN only: the feature map the RNN reads, one row per timestep, with a colour scale.

Feature-map row t is one RNN input x_t: W/4 columns x C2 channels of the second conv block's
output (after max-pooling, bias and ReLU, so every value is >= 0). A picture can show one
number per cell, so each cell is the mean over the C2 channels: bright = the block's
filters respond strongly there on average. The image view shows which image rows a
feature-map row sees (core.timesteps). With ``sequence='positions'`` x_t is one map position
(its C2 channels), read in raster order, and the highlight is that one cell.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from app.plot_style import colorbar_beside
from app.row_image_view import RowImageView


class FeatureRowView(RowImageView):
    """``set_sequence(seq (T, D), width)`` shows the mean over channels as a (T, width) map."""

    def __init__(self, parent=None):
        super().__init__(object_name="featureView", title_rows="feature-map step t",
                         parent=parent)
        self.setMinimumSize(120, 120)
        self.image_item.export_name = "feature_map_mean"
        self.colorbar = colorbar_beside(self, self.image_item, values=(0, 1),
                                        colorMap=pg.colormap.get("viridis"),
                                        interactive=False, width=10,
                                        label="mean over channels")
        self.channels = 0
        self.positions = False
        self.map_width = 8

    def set_sequence(self, seq: np.ndarray, width: int = 8, sequence: str = "rows"):
        """``seq``: the RNN's input sequence, float (T, D): D = width * C (channels last) for
        ``sequence='rows'``, D = C for 'positions' (T = rows * width, raster order)."""
        T, D = seq.shape
        a = np.asarray(seq, dtype=np.float32)
        self.positions = sequence == "positions"
        if self.positions:
            self.channels = D
            fmap = a.mean(axis=1).reshape(T // width, width)
        else:
            self.channels = D // width
            fmap = a.reshape(T, width, self.channels).mean(axis=2)
        self.map_width = width
        self.getPlotItem().setLabel("left", "feature-map row" if self.positions
                                    else "feature-map step t")
        hi = float(fmap.max()) if fmap.size and fmap.max() > 0 else 1.0
        self.set_image(fmap, rows_per_step=1, levels=(0.0, hi))
        self.colorbar.setLevels((0.0, hi))

    def _hover(self, col, row, value):
        if self.positions:
            return (f"feature-map position {row + 1},{col + 1} (step "
                    f"{row * self.map_width + col + 1}): mean over {self.channels} channels "
                    f"{float(value):.3g}")
        return (f"feature-map step {row + 1}, column {col + 1}: mean over {self.channels} "
                f"channels {float(value):.3g}")
