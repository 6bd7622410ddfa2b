"""Which data a checkpoint belongs to, read from its metadata (no Qt, no arrays).

A trainer's checkpoint records its data as ``meta['data']``: the data set's name ('cifar10' |
'probe'), its description, and ``info`` (CIFAR-10: source file, scheme, subset, seed; the
probe: every generator parameter, subset, seed) plus the split sizes. The app shows a model
only on the data it was trained on, offers to load that data, and continues a run only when
the checkpoint holds its training state.
"""

from __future__ import annotations

from pathlib import Path

_SAME_KEYS = ("scheme", "subset", "seed")


def recorded_data(meta: dict) -> dict | None:
    """The checkpoint's data record, or None if it has none (an older or foreign file)."""
    data = (meta or {}).get("data")
    return data if isinstance(data, dict) and data.get("name") else None


def _sizes(info: dict) -> dict | None:
    sizes = (info or {}).get("sizes")
    return dict(sizes) if isinstance(sizes, dict) else None


def same_data(meta: dict, splits) -> bool:
    """True if ``splits`` is the data the checkpoint was trained on (or it does not say)."""
    data = recorded_data(meta)
    if data is None:
        return True
    if splits is None or data.get("name") != getattr(splits, "name", None):
        return False
    mine, theirs = getattr(splits, "info", None) or {}, data.get("info") or {}
    if data["name"] == "probe":
        if (theirs.get("probe") or {}) != (mine.get("probe") or {}):
            return False
    for key in _SAME_KEYS:
        if key in theirs and theirs.get(key) != mine.get(key):
            return False
    if _sizes(theirs) is not None and _sizes(theirs) != _sizes(mine):
        return False
    if data.get("n_train") not in (None, len(splits.train)):
        return False
    return True


def describe_data(data: dict) -> str:
    """The recorded data in words, e.g. 'CIFAR-10 from /x/cifar-10-python.tar.gz (subset
    10000, seed 0)' or 'the memory-probe task (cue rows 25-28, noise 0.5, seed 0)'."""
    info = data.get("info") or {}
    if data.get("name") == "probe":
        p = info.get("probe") or {}
        first = int(p.get("cue_row", 0)) + 1
        last = first + int(p.get("cue_height", 1)) - 1
        parts = [f"cue rows {first}-{last}", f"noise {p.get('noise', '?')}",
                 f"seed {p.get('seed', '?')}"]
        if info.get("subset") is not None:
            parts.append(f"subset {info['subset']}")
        return f"the memory-probe task ({', '.join(parts)})"
    subset = info.get("subset")
    parts = [f"subset {subset}" if subset is not None else "all training images",
             f"seed {info.get('seed', 0)}"]
    if info.get("scheme") not in (None, "default"):
        parts.append(f"scheme {info['scheme']}")
    source = info.get("source") or "an unknown file"
    return f"CIFAR-10 from {source} ({', '.join(parts)})"


def load_arguments(data: dict) -> tuple[str, dict] | None:
    """(spec, keyword arguments of ``MainWindow.load_data``) that load the recorded data again,
    or None if its file is not there any more."""
    info = data.get("info") or {}
    kw = {"subset": info.get("subset"), "seed": int(info.get("seed", 0) or 0)}
    if data.get("name") == "probe":
        probe = dict(info.get("probe") or {})
        return "probe", {**kw, "probe_params": probe}
    source = info.get("source")
    if not source or not Path(source).exists():
        return None
    return str(source), {**kw, "scheme": info.get("scheme") or "default"}


def resume_problem(meta: dict) -> str | None:
    """Why the checkpoint cannot be continued (view only), or None if it can."""
    meta = meta or {}
    if "train_config" not in meta or "rng_state" not in meta:
        return "it holds a model but no training state"
    if meta.get("params_are") == "best":
        return "it holds the best parameters, not the latest state (continue from last.npz)"
    return None
