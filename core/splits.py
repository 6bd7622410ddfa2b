"""Train/val/test splits and stratified subsets (index arithmetic only, no image copies).

Letters: N training images (50,000 for CIFAR-10), M test images (10,000), K classes.

Schemes (exact figures for full CIFAR-10; smaller sets get the same fractions, see below):
- 'seed000': train = the first 98 % of the training images (49,000), val = the next 2 % (1,000),
  test = the first 10 % of the test images (1,000). On a smaller set (test fixtures) the same
  fractions are used, with at least one image in each split.
- 'seed001': a stratified random ``subset`` of the training images (default 40 %), split 9:1
  into train/val (stratified), full test set.
- 'default': without ``subset``, the first 49,000 (98 %) train, the last 1,000 (2 %) val, full
  test; with ``subset`` (an int N or a fraction in (0, 1]), a stratified random subset split 9:1
  as in seed001.
Random choices use ``np.random.default_rng(seed)``: the same seed gives the same split.
"""

from __future__ import annotations

import numbers

import numpy as np

from core.errors import ConfigError
from core.names import SPLIT_SCHEMES

SEED001_FRACTION = 0.4
VAL_FRACTION = 0.1


def _allocate(counts: np.ndarray, k: int) -> np.ndarray:
    """Split ``k`` over classes in proportion to ``counts`` (largest remainder) -> int (K,)."""
    n = counts.sum()
    quota = counts * (k / n)
    alloc = np.minimum(np.floor(quota).astype(np.int64), counts)
    short = k - alloc.sum()
    order = np.argsort(-(quota - alloc), kind="stable")
    for c in order:
        if short <= 0:
            break
        if alloc[c] < counts[c]:
            alloc[c] += 1
            short -= 1
    return alloc


def stratified_choice(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices (sorted, int64 (k,)) of a class-stratified random subset of size ``k``."""
    labels = np.asarray(labels)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    alloc = _allocate(counts, k)
    picked = []
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        picked.append(rng.permutation(members)[: alloc[c]])
    return np.sort(np.concatenate(picked)).astype(np.int64)


def subset_size(subset, n: int) -> int:
    """``subset`` (int N or fraction in (0, 1]) -> number of images out of ``n``."""
    if isinstance(subset, bool) or not isinstance(subset, numbers.Real):
        raise ConfigError(f"subset {subset!r} is not a number; give an image count or a "
                          f"fraction in (0, 1]")
    if isinstance(subset, numbers.Integral) or (float(subset).is_integer() and subset > 1):
        k = int(subset)
        if not 2 <= k <= n:
            raise ConfigError(f"subset {k} is out of range; give 2..{n} images or a fraction")
        return k
    f = float(subset)
    if not 0.0 < f <= 1.0:
        raise ConfigError(f"subset fraction {f} is out of range; give a fraction in (0, 1]")
    k = int(round(f * n))
    if k < 2:
        raise ConfigError(f"subset fraction {f} of {n} images leaves {k}; use a larger one")
    return k


def stratified_train_val(labels: np.ndarray, size: int, rng: np.random.Generator):
    """Stratified subset of ``size`` training images split 9:1 -> (train idx, val idx)."""
    pool = stratified_choice(labels, size, rng) if size < len(labels) else np.arange(len(labels))
    n_val = max(1, int(round(len(pool) * VAL_FRACTION)))
    val_local = stratified_choice(labels[pool], n_val, rng)
    mask = np.zeros(len(pool), dtype=bool)
    mask[val_local] = True
    return pool[~mask], pool[mask]


def split_indices(train_labels: np.ndarray, n_test: int, scheme: str = "default", subset=None,
                  seed: int = 0) -> dict:
    """-> {'train': idx, 'val': idx, 'test': idx}; each a slice or an int64 index array."""
    n = len(train_labels)
    if scheme not in SPLIT_SCHEMES:
        raise ConfigError(f"scheme '{scheme}' is unknown; use one of "
                          f"{', '.join(SPLIT_SCHEMES)}")
    if scheme == "seed000" or (scheme == "default" and subset is None):
        if scheme == "seed000" and subset is not None:
            raise ConfigError("scheme seed000 uses fixed slices (49,000/1,000/1,000) and takes "
                              "no subset; drop the subset or use scheme default")
        if n < 2:
            raise ConfigError(f"{n} training image(s) cannot be split into train and val")
        n_val = min(n - 1, max(1, int(round(n * 0.02))))
        n_tr = n - n_val
        test = slice(0, max(1, int(round(n_test * 0.1)))) if scheme == "seed000" \
            else slice(0, n_test)
        return {"train": slice(0, n_tr), "val": slice(n_tr, n), "test": test}
    rng = np.random.default_rng(seed)
    size = subset_size(SEED001_FRACTION if subset is None else subset, n)
    train, val = stratified_train_val(np.asarray(train_labels), size, rng)
    return {"train": train, "val": val, "test": slice(0, n_test)}
