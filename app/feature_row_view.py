"""CNN+RNN only: the 8x8 feature map the RNN reads (mean over the conv channels), row t marked.

Feature-map row t is one RNN input x_t: 8 columns x C2 channels. It summarises the 4-row image
band highlighted in the image (two 2x2 poolings shrink 32 rows to 8).
"""

from __future__ import annotations

import numpy as np

from app.row_image_view import RowImageView


class FeatureRowView(RowImageView):
    """``set_sequence(seq (T, D), width)`` shows mean over channels as a (T, width) map."""

    def __init__(self, parent=None):
        super().__init__(object_name="featureView", title_rows="feature row", parent=parent)
        self.setMinimumSize(120, 120)
        self.image_item.export_name = "feature_map_mean"

    def set_sequence(self, seq: np.ndarray, width: int = 8):
        """``seq``: float (T, D) with D = width * C (channels last), the RNN's input sequence."""
        T, D = seq.shape
        fmap = np.asarray(seq, dtype=np.float32).reshape(T, width, D // width).mean(axis=2)
        self.set_image(fmap, rows_per_step=1)

    def _hover(self, col, row, value):
        return f"feature row {row + 1}, column {col + 1}: mean activation {float(value):.3g}"
