"""Where rnnscope keeps its files and where it looks for CIFAR-10.

Search order for CIFAR-10 (first hit wins): an explicit path (CLI/GUI), the environment
variable ``RNNSCOPE_DATA``, then the cache folder (``cache_dir()``, where ``download`` puts the
tarball). A *source* is either the official ``cifar-10-python.tar.gz`` or an extracted
``cifar-10-batches-py/`` folder; a folder that contains one of them is accepted too.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from core.errors import DataError

APP_NAME = "rnnscope"
CACHE_ENV = "RNNSCOPE_CACHE"
DATA_ENV = "RNNSCOPE_DATA"
TARBALL_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
BATCH_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
META_FILE = "batches.meta"


def cache_dir() -> Path:
    """The user cache folder: ``$RNNSCOPE_CACHE`` if set, else platformdirs' (not created)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def _is_batches_folder(folder: Path) -> bool:
    """True if ``folder`` holds at least one CIFAR-10 batch file (it is the extracted folder)."""
    return any((folder / name).exists() for name in BATCH_FILES + (META_FILE,))


def resolve_source(path: str | Path) -> Path | None:
    """Return the CIFAR-10 source at or inside ``path`` (tarball or batches folder), else None.

    A file is taken as the tarball whatever its name (it is validated when loaded). A folder is
    taken as the batches folder if it holds batch files, else its ``cifar-10-batches-py/``
    subfolder, else its ``cifar-10-python.tar.gz``.
    """
    p = Path(path).expanduser()
    if p.is_file():
        return p.resolve()
    if not p.is_dir():
        return None
    if _is_batches_folder(p):
        return p.resolve()
    sub = p / FOLDER_NAME
    if sub.is_dir() and _is_batches_folder(sub):
        return sub.resolve()
    tar = p / TARBALL_NAME
    if tar.is_file():
        return tar.resolve()
    return None


def _explain_missing(path: Path, origin: str) -> DataError:
    if not path.exists():
        what = "does not exist"
    else:
        what = f"holds neither {TARBALL_NAME} nor a {FOLDER_NAME}/ folder with the batch files"
    return DataError(
        f"{path} ({origin}) {what}; point it at the CIFAR-10 tarball or its extracted folder, "
        f"or run `python main.py download`"
    )


def find_cifar10(path: str | Path | None = None) -> Path | None:
    """Locate a CIFAR-10 source: ``path``, else ``$RNNSCOPE_DATA``, else the cache folder.

    Returns the tarball or batches folder, or None when no path was given, ``RNNSCOPE_DATA`` is
    unset and the cache holds nothing. A path the user gave explicitly (argument or
    ``RNNSCOPE_DATA``) that holds no CIFAR-10 raises DataError instead of being skipped silently.
    """
    if path is not None and str(path) != "":
        found = resolve_source(path)
        if found is None:
            raise _explain_missing(Path(path).expanduser(), "given path")
        return found
    env = os.environ.get(DATA_ENV)
    if env:
        found = resolve_source(env)
        if found is None:
            raise _explain_missing(Path(env).expanduser(), f"from ${DATA_ENV}")
        return found
    cache = cache_dir()
    for candidate in (cache / TARBALL_NAME, cache / FOLDER_NAME):
        if candidate.exists():
            found = resolve_source(candidate)
            if found is not None:
                return found
    return None
