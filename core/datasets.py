"""Data sets for training: CIFAR-10 or the built-in memory probe, split into train/val/test.

Letters: N images, T = 32 rows (timesteps), D = 96 = 32 pixels x 3 channels per row.

``load_data`` is the one entry point for the CLI and the app. The pieces live in small modules
and are re-exported here: :class:`ImageSet` / :class:`DataSplits` (core.imageset),
:class:`Normalizer` (core.normalize), :func:`augment_batch` (core.augment), split rules
(core.splits), CIFAR-10 reading and caching (core.cifar10), the probe task (core.probe).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.augment import augment_batch, augment_batch_naive
from core.cifar10 import load_cifar10
from core.errors import ConfigError, DataError
from core.imageset import DataSplits, ImageSet
from core.names import SPLIT_SCHEMES
from core.normalize import Normalizer
from core.paths import DATA_ENV, cache_dir, find_cifar10
from core.probe import make_probe, make_probe_val
from core.splits import split_indices, stratified_choice, subset_size

__all__ = [
    "DataSplits", "ImageSet", "Normalizer", "augment_batch", "augment_batch_naive",
    "load_data", "to_row_sequences", "PROBE_DEFAULTS",
]

PROBE_DEFAULTS = {"n_train": 5000, "n_val": 1000, "n_test": 1000, "cue_row": 24,
                  "cue_height": 4, "noise": 0.5, "seed": 0}


def to_row_sequences(x: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> (N, T=32, D=96): row t = image row t's 32 pixels, R,G,B interleaved."""
    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise ValueError(f"expected images of shape (N, 32, 32, 3), got {x.shape}")
    return x.reshape(x.shape[0], 32, 96)


def _counts(splits_sizes) -> str:
    return "/".join(f"{n:,}" for n in splits_sizes)


def _idx_info(idx) -> str | int:
    return f"{idx.start}:{idx.stop}" if isinstance(idx, slice) else len(idx)


def load_data(spec: str | Path | None = None, *, scheme: str = "default", subset=None,
              seed: int = 0, probe_params: dict | None = None, progress=None) -> DataSplits:
    """Load a data set and split it -> DataSplits.

    ``spec``: 'probe' -> the memory-probe task (``probe_params`` overrides PROBE_DEFAULTS;
    ``scheme`` is ignored, ``subset`` subsamples its training split); a path, 'cifar10' or None
    -> CIFAR-10 (None / 'cifar10' = ``$RNNSCOPE_DATA`` or the cache folder). See core.splits for
    ``scheme``/``subset``/``seed``. ``progress(done, total)`` reports the one-time decoding.
    Raises DataError (missing/corrupt data) or ConfigError (bad option), one-line messages.
    """
    if scheme not in SPLIT_SCHEMES:
        raise ConfigError(f"scheme '{scheme}' is unknown; use one of "
                          f"{', '.join(SPLIT_SCHEMES)}")
    if isinstance(spec, str) and spec.strip().lower() == "probe":
        return _load_probe(probe_params or {}, subset, seed)
    if probe_params:
        raise ConfigError("probe_params are given but the data set is not 'probe'; "
                          "use --data probe or drop the probe options")
    if isinstance(spec, str) and spec.strip().lower() == "cifar10":
        spec = None
    source = find_cifar10(spec)
    if source is None:
        raise DataError(f"CIFAR-10 not found (no path given, ${DATA_ENV} unset, nothing in "
                        f"{cache_dir()}); run `python main.py download` or pass the path of "
                        f"cifar-10-python.tar.gz")
    arrays = load_cifar10(source, progress=progress)
    idx = split_indices(arrays.train_labels, len(arrays.test_labels), scheme, subset, seed)
    full_train = ImageSet(arrays.train_images, arrays.train_labels, arrays.class_names)
    full_test = ImageSet(arrays.test_images, arrays.test_labels, arrays.class_names)
    train, val = full_train.take(idx["train"]), full_train.take(idx["val"])
    test = full_test.take(idx["test"])
    sizes = (len(train), len(val), len(test))
    subset_txt = "" if subset is None else f", subset {subset}"
    description = (f"CIFAR-10 from {source} ({_counts(sizes)} train/val/test, "
                   f"scheme {scheme}{subset_txt}, seed {seed})")
    info = {
        "source": str(source),
        "cache_entry": None if arrays.cache_entry is None else str(arrays.cache_entry),
        "scheme": scheme, "subset": subset, "seed": int(seed),
        "sizes": {"train": sizes[0], "val": sizes[1], "test": sizes[2]},
        "indices": {k: _idx_info(v) for k, v in idx.items()},
    }
    return DataSplits(train, val, test, "cifar10", description, info)


def _load_probe(probe_params: dict, subset, seed: int) -> DataSplits:
    unknown = sorted(set(probe_params) - set(PROBE_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown probe option(s) {', '.join(unknown)}; "
                          f"known: {', '.join(PROBE_DEFAULTS)}")
    p = {**PROBE_DEFAULTS, **probe_params}
    n_val = p.pop("n_val")
    train, test = make_probe(**p)
    val = make_probe_val(n_val, p["cue_row"], p["cue_height"], p["noise"], p["seed"])
    if subset is not None:
        k = subset_size(subset, len(train))
        train = train.take(stratified_choice(train.labels, k, np.random.default_rng(seed)))
    first, last = p["cue_row"] + 1, p["cue_row"] + p["cue_height"]   # rows counted from 1
    sizes = (len(train), len(val), len(test))
    description = (f"memory probe: cue rows {first}-{last} of 32, noise {p['noise']:g}, "
                   f"seed {p['seed']} ({_counts(sizes)} train/val/test)")
    info = {"probe": {**p, "n_val": n_val}, "subset": subset, "seed": int(seed),
            "sizes": {"train": sizes[0], "val": sizes[1], "test": sizes[2]}}
    return DataSplits(train, val, test, "probe", description, info)
