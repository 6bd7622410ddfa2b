"""Containers for image data sets: one split (:class:`ImageSet`) and a train/val/test triple.

Letters: N images in a split, K classes. Images are uint8 (N, 32, 32, 3) NHWC (possibly a
read-only memmap of the cache), labels int64 (N,) in 0..K-1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ImageSet:
    """One split: uint8 images (N,32,32,3), int64 labels (N,), the K class names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def take(self, idx) -> ImageSet:
        """Sub-set by a slice (a view, stays memory-mapped) or an index array (a copy)."""
        return ImageSet(self.images[idx], np.asarray(self.labels[idx], dtype=np.int64),
                        list(self.class_names))


@dataclass
class DataSplits:
    """Train/val/test splits plus what they are: ``name`` 'cifar10' | 'probe'."""

    train: ImageSet
    val: ImageSet
    test: ImageSet
    name: str
    description: str  # one line for the GUI/CLI
    info: dict = field(default_factory=dict)  # JSON-able: source or probe params, scheme, ...

    @property
    def class_names(self) -> list[str]:
        return self.train.class_names
