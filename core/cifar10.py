"""Read CIFAR-10 (python version) from the official tarball or its extracted folder.

The first load of a source decodes it once into uint8 ``.npy`` files in the cache
(``cache_dir()/decoded/cifar10-<fingerprint>/``); later loads memory-map them. The fingerprint
is a hash of the source's resolved path, sizes and modification times (the 170 MB tarball is
never hashed on a load), so an edited or replaced source gets a fresh entry. A cache entry is
written to a temporary folder, completed with a marker file written last and moved into place
with ``os.replace``: a failed or interrupted load leaves no entry that a later run would trust;
the temporary folder of a killed process is removed by the next load once that process is gone.

Nothing read is trusted blindly. The whole gzip stream of a tarball is read, so its CRC is
checked (tar alone stops at the end-of-archive blocks and never looks at it). A cache entry
records the CRC-32 of each array's bytes when it is built; opening it recomputes them (zlib's
CRC-32 reads the memory map at memory speed, far cheaper than a cryptographic hash, and catches
disk damage and hand edits; it is no defence against deliberate forgery) and checks the labels
are in 0..9. A damaged entry is rebuilt from the source with a one-line warning, or is an
error if the source cannot rebuild it.

Letters: N images in a split, K = 10 classes.
Official format: protocol-2 pickles with byte-string keys; ``data`` uint8 (N, 3072) holding the
R, G and B planes of 32x32 images one after the other, ``labels`` N ints in 0..9.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import os
import pickle
import shutil
import tarfile
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import DataError
from core.fileio import pid_after, remove_orphans
from core.paths import BATCH_FILES, META_FILE, cache_dir

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]
NUM_CLASSES = 10
PIXELS = 32 * 32 * 3
CACHE_FORMAT = 2  # bump when the layout of a cache entry changes (an old entry is rebuilt)
_FINGERPRINT_VERSION = 1  # bump when an entry must move to a new folder name
MARKER = "COMPLETE"
_TMP_PREFIX = ".tmp-"
_STALE_TMP_SECONDS = 3600.0
_REDOWNLOAD = "re-download it with `python main.py download` or point rnnscope at a good copy"

Progress = Callable[[int, int], None]


@dataclass
class Cifar10Arrays:
    """The decoded data set: uint8 NHWC images (read-only memmaps when cached), int64 labels."""

    train_images: np.ndarray  # uint8 (50000, 32, 32, 3)
    train_labels: np.ndarray  # int64 (50000,)
    test_images: np.ndarray   # uint8 (10000, 32, 32, 3)
    test_labels: np.ndarray   # int64 (10000,)
    class_names: list[str]
    source: Path
    cache_entry: Path | None  # None when the cache folder could not be written


# --------------------------------------------------------------------------- pickles

def _allowed_globals() -> dict[tuple[str, str], object]:
    """The only globals a CIFAR-10 pickle may reference: numpy array reconstruction."""
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # bytes written by Python 3 with protocol 2
    }
    for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
        for name in ("_reconstruct", "scalar"):
            allowed[(mod, name)] = _numpy_attr(("multiarray",), name)
    for mod in ("numpy._core.numeric", "numpy.core.numeric"):
        allowed[(mod, "_frombuffer")] = _numpy_attr(("numeric",), "_frombuffer")
    return {k: v for k, v in allowed.items() if v is not None}


def _numpy_attr(submodule: tuple[str, ...], name: str):
    import importlib

    for base in ("numpy._core", "numpy.core"):
        try:
            mod = importlib.import_module(".".join((base,) + submodule))
        except ImportError:
            continue
        if hasattr(mod, name):
            return getattr(mod, name)
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except numpy array reconstruction."""

    _allowed: dict[tuple[str, str], object] | None = None

    def find_class(self, module: str, name: str):
        if _RestrictedUnpickler._allowed is None:
            _RestrictedUnpickler._allowed = _allowed_globals()
        obj = _RestrictedUnpickler._allowed.get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(f"refused to load global {module}.{name}")
        return obj


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _unpickle(raw: bytes, where: str) -> dict:
    import io

    if not raw:
        raise DataError(f"{where} is empty (0 bytes); {_REDOWNLOAD}")
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # parsing untrusted bytes: every failure is a bad file
        if isinstance(exc, EOFError) or "truncated" in str(exc) or "ran out" in str(exc).lower():
            what = "is truncated (the pickle ends early)"
        else:
            what = f"is not a readable CIFAR-10 pickle ({_one_line(exc)})"
        raise DataError(f"{where} {what}; {_REDOWNLOAD}") from None
    if not isinstance(obj, dict):
        raise DataError(
            f"{where} holds a {type(obj).__name__}, not a CIFAR-10 batch dict; {_REDOWNLOAD}"
        )
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def parse_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one batch pickle -> (uint8 (N,32,32,3) NHWC, int64 (N,)); DataError if invalid.

    ``where`` names the file in error messages. Keys may be bytes or str.
    """
    d = _unpickle(raw, where)
    missing = [k for k in ("data", "labels") if k not in d]
    if missing:
        raise DataError(
            f"{where} lacks the key(s) {', '.join(missing)} "
            f"(has: {', '.join(sorted(d)) or 'none'}); "
            f"it is not a CIFAR-10 python batch; {_REDOWNLOAD}"
        )
    data = d["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != PIXELS or data.shape[0] == 0:
        desc = (f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray)
                else type(data).__name__)
        raise DataError(
            f"{where} has 'data' of {desc}, expected uint8 (N, {PIXELS}); {_REDOWNLOAD}"
        )
    try:
        labels = np.asarray(d["labels"])
    except Exception:  # ragged or odd objects
        labels = np.asarray([], dtype=object)
    if labels.ndim != 1 or labels.shape[0] != data.shape[0] or labels.dtype.kind not in "iu":
        raise DataError(
            f"{where} has {labels.shape[0] if labels.ndim == 1 else 'malformed'} labels "
            f"({labels.dtype}) for {data.shape[0]} images, expected {data.shape[0]} integers; "
            f"{_REDOWNLOAD}"
        )
    labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= NUM_CLASSES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where} has label {int(labels[i])} at index {i}, outside 0..{NUM_CLASSES - 1}; "
            f"{_REDOWNLOAD}"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def parse_meta(raw: bytes, where: str) -> list[str]:
    """Decode ``batches.meta`` -> the 10 class names; DataError if invalid."""
    d = _unpickle(raw, where)
    names = d.get("label_names")
    if not isinstance(names, (list, tuple)) or len(names) != NUM_CLASSES:
        raise DataError(f"{where} has no list of {NUM_CLASSES} 'label_names'; {_REDOWNLOAD}")
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


# --------------------------------------------------------------------------- reading sources

def _corrupt(path: Path, exc: BaseException) -> DataError:
    return DataError(f"{path} is corrupt (gzip {_one_line(exc)}: it was damaged while "
                     f"downloading or on disk); {_REDOWNLOAD}")


def _is_crc_error(exc: BaseException) -> bool:
    """gzip's end-of-stream checks: the CRC-32 or the length of the data differ."""
    return isinstance(exc, gzip.BadGzipFile) and ("CRC" in str(exc) or "length" in str(exc))


def _iter_tarball(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (basename, bytes) of the batch and meta members, streaming the tarball once.

    The gzip stream is read to its end after the last member, so its CRC is verified; a
    mismatch raises DataError (after the members were yielded: nothing may be kept before the
    generator is exhausted).
    """
    wanted = set(BATCH_FILES) | {META_FILE}
    seen: set[str] = set()
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path} is empty (0 bytes); {_REDOWNLOAD}")
        with gzip.open(path, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as tf:
            for member in tf:
                base = member.name.rstrip("/").rsplit("/", 1)[-1]
                if base not in wanted or base in seen:
                    continue
                if not member.isfile():
                    raise DataError(
                        f"{path}: member {member.name} is not a regular file; {_REDOWNLOAD}"
                    )
                f = tf.extractfile(member)
                raw = f.read() if f is not None else b""
                if len(raw) != member.size:
                    raise EOFError("member cut short")
                seen.add(base)
                yield base, raw
            while gz.read(1 << 20):  # the rest of the stream: gzip checks the CRC at its end
                pass
    except DataError:
        raise
    except PermissionError:
        raise DataError(
            f"{path} cannot be read (permission denied); fix its permissions or copy it "
            f"somewhere readable"
        ) from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a tarball; {_REDOWNLOAD}") from None
    except gzip.BadGzipFile as exc:
        if _is_crc_error(exc):
            raise _corrupt(path, exc) from None
        raise DataError(f"{path} is not a gzip-compressed tar archive ({_one_line(exc)}); "
                        f"{_REDOWNLOAD}") from None
    except (EOFError, zlib.error) as exc:
        raise DataError(
            f"{path} is truncated or corrupt ({_one_line(exc)}); {_REDOWNLOAD}"
        ) from None
    except tarfile.ReadError as exc:
        msg = _one_line(exc)
        if "truncated" in msg or "end of" in msg or "empty" in msg:
            what = f"is truncated ({msg})"
        elif "gzip" in msg:
            what = f"is not a gzip-compressed tar archive ({msg})"
        else:
            what = f"is not a readable tar.gz archive ({msg})"
        raise DataError(f"{path} {what}; {_REDOWNLOAD}") from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({_one_line(exc)}); {_REDOWNLOAD}") from None


def _check_gzip_stream(path: Path) -> None:
    """Raise the 'corrupt' DataError if the gzip stream of ``path`` fails its CRC check."""
    try:
        with gzip.open(path, "rb") as gz:
            while gz.read(1 << 20):
                pass
    except gzip.BadGzipFile as exc:
        if _is_crc_error(exc):
            raise _corrupt(path, exc) from None
    except (OSError, EOFError, zlib.error):
        pass  # another fault: the caller's own error says it


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise DataError(
            f"{path} cannot be read (permission denied); fix its permissions "
            f"(e.g. chmod u+r) or copy the folder somewhere readable"
        ) from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a CIFAR-10 batch file; {_REDOWNLOAD}") from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({_one_line(exc)}); {_REDOWNLOAD}") from None


def _iter_folder(folder: Path) -> Iterator[tuple[str, bytes]]:
    missing = [n for n in BATCH_FILES if not (folder / n).exists()]
    if missing:
        raise DataError(
            f"{folder} is missing {', '.join(missing)}; the extracted folder is incomplete, "
            f"{_REDOWNLOAD}"
        )
    if (folder / META_FILE).exists():
        yield META_FILE, _read_file(folder / META_FILE)
    for name in BATCH_FILES:
        yield name, _read_file(folder / name)


def decode_source(source: Path, progress: Progress | None = None):
    """Read and validate every batch -> (train_x, train_y, test_x, test_y, class_names).

    Images uint8 NHWC in memory; ``progress(done, total)`` after each batch file (total 6).
    """
    source = Path(source)
    items = _iter_folder(source) if source.is_dir() else _iter_tarball(source)
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    class_names = list(CIFAR10_CLASSES)
    for name, raw in items:
        where = f"{source}/{name}" if source.is_dir() else f"{source} (member {name})"
        try:
            if name == META_FILE:
                class_names = parse_meta(raw, where)
                continue
            batches[name] = parse_batch(raw, where)
        except DataError:
            if not source.is_dir():  # a damaged download, not a wrong file: say so
                _check_gzip_stream(source)
            raise
        del raw
        if progress is not None:
            progress(len(batches), len(BATCH_FILES))
    missing = [n for n in BATCH_FILES if n not in batches]
    if missing:
        raise DataError(
            f"{source} lacks {', '.join(missing)} (archive incomplete or cut short); "
            f"{_REDOWNLOAD}"
        )
    train = [batches.pop(n) for n in BATCH_FILES[:5]]
    train_x = np.concatenate([b[0] for b in train])
    train_y = np.concatenate([b[1] for b in train])
    del train
    test_x, test_y = batches.pop("test_batch")
    return train_x, train_y, test_x, test_y, class_names


# --------------------------------------------------------------------------- cache

def fingerprint(source: Path) -> str:
    """Cheap identity of a source: hash of resolved path + size + mtime of its files."""
    source = Path(source).resolve()
    if source.is_dir():
        files = [source / n for n in BATCH_FILES + (META_FILE,)]
    else:
        files = [source]
    stats = []
    for f in files:
        try:
            st = f.stat()
            stats.append([f.name, st.st_size, st.st_mtime_ns])
        except OSError:
            stats.append([f.name, None, None])
    blob = json.dumps([_FINGERPRINT_VERSION, str(source), stats]).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def cache_entry_for(source: Path) -> Path:
    return cache_dir() / "decoded" / f"cifar10-{fingerprint(source)}"


_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


class _DamagedEntry(Exception):
    """A cache entry that does not hold what it recorded (message: what differs)."""


class _OutdatedEntry(_DamagedEntry):
    """A cache entry in the layout of an older rnnscope."""


def array_checksum(arr: np.ndarray) -> str:
    """CRC-32 of an array's bytes in C order, as 8 hex digits (no copy for a C-ordered array)."""
    return f"{zlib.crc32(memoryview(np.ascontiguousarray(arr)).cast('B')):08x}"


def _open_entry(entry: Path, source: Path) -> Cifar10Arrays:
    """Open a complete cache entry (images memory-mapped read-only), verified against the
    checksums and shapes it recorded; _DamagedEntry says what differs."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise _DamagedEntry(f"meta.json is unreadable: {_one_line(exc)}") from None
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        if isinstance(found, int) and 0 < found < CACHE_FORMAT:
            raise _OutdatedEntry(f"format {found}")
        raise _DamagedEntry(f"meta.json records format {found!r}, not {CACHE_FORMAT}")
    try:
        shapes, dtypes, sums = meta["shapes"], meta["dtypes"], meta["checksums"]
        class_names = [str(n) for n in meta["class_names"]]
        wanted = {n: (list(shapes[n]), str(dtypes[n]), str(sums[n])) for n in _ARRAYS}
    except (KeyError, TypeError) as exc:
        raise _DamagedEntry(f"meta.json lacks {_one_line(exc)}") from None
    if len(class_names) != NUM_CLASSES:
        raise _DamagedEntry(f"meta.json has {len(class_names)} class names")
    arrays = {}
    for name in _ARRAYS:
        shape, dtype, checksum = wanted[name]
        mmap = "r" if name.endswith("images") else None
        try:
            arr = np.load(entry / f"{name}.npy", mmap_mode=mmap, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise _DamagedEntry(f"{name}.npy is unreadable: {_one_line(exc)}") from None
        if list(arr.shape) != shape or str(arr.dtype) != dtype:
            raise _DamagedEntry(f"{name}.npy holds {arr.dtype} {tuple(arr.shape)}, "
                                f"meta.json records {dtype} {tuple(shape)}")
        if array_checksum(arr) != checksum:
            raise _DamagedEntry(f"{name}.npy does not match its recorded checksum")
        if name.endswith("labels"):
            bad = (arr < 0) | (arr >= NUM_CLASSES)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise _DamagedEntry(f"{name}.npy has label {int(arr[i])} at index {i}, "
                                    f"outside 0..{NUM_CLASSES - 1}")
        arrays[name] = arr
    return Cifar10Arrays(**arrays, class_names=class_names, source=source, cache_entry=entry)


def _write_entry(entry: Path, arrays: dict[str, np.ndarray], class_names: list[str],
                 source: Path) -> None:
    """Write a cache entry atomically: temp folder, marker last, os.replace into place."""
    parent = entry.parent
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(parent)
    tmp = parent / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name, arr in arrays.items():
            with open(tmp / f"{name}.npy", "wb") as f:
                np.save(f, arr, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
        meta = {
            "format": CACHE_FORMAT,
            "source": str(source),
            "class_names": class_names,
            "shapes": {k: list(v.shape) for k, v in arrays.items()},
            "dtypes": {k: str(v.dtype) for k, v in arrays.items()},
            "checksums": {k: array_checksum(v) for k, v in arrays.items()},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        (tmp / MARKER).write_text("ok\n")
        if entry.exists() and not (entry / MARKER).exists():
            shutil.rmtree(entry)  # an incomplete entry (not made by this code): never trusted
        try:
            os.replace(tmp, entry)
        except OSError:
            if not (entry / MARKER).exists():  # not a concurrent writer's finished entry
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_tmp(parent: Path) -> None:
    """Remove temp folders left by killed processes: their process is gone, or (a pid that
    may have been reused) they are over an hour old."""
    remove_orphans(parent, lambda name: pid_after(_TMP_PREFIX, name, "-"),  # .tmp-<pid>-<random>
                   max_age_s=_STALE_TMP_SECONDS)


def load_cifar10(source: str | Path, progress: Progress | None = None,
                 use_cache: bool = True) -> Cifar10Arrays:
    """Load a CIFAR-10 source (tarball or batches folder), decoding it into the cache once.

    ``progress(done, total)`` is called while decoding (not on a cached load). Raises DataError
    for any unreadable or invalid input; nothing is cached then. If the cache folder cannot be
    written, the decoded arrays are returned in memory (a warning says why).
    """
    source = Path(source).resolve()
    if not source.exists():
        raise DataError(f"{source} does not exist; point rnnscope at the CIFAR-10 tarball "
                        f"or run `python main.py download`")
    entry = cache_entry_for(source) if use_cache else None
    damage = None
    if entry is not None and (entry / MARKER).exists():
        try:
            return _open_entry(entry, source)
        except _DamagedEntry as exc:  # edited by hand, a disk error, an older format
            damage = str(exc)
            if isinstance(exc, _OutdatedEntry):
                what = f"was written by an older rnnscope ({damage})"
            else:
                what = f"is damaged ({damage})"
            warnings.warn(f"the CIFAR-10 cache {entry} {what}; rebuilding it from {source}",
                          stacklevel=2)
            shutil.rmtree(entry, ignore_errors=True)
    try:
        train_x, train_y, test_x, test_y, names = decode_source(source, progress)
    except DataError as exc:
        if damage is None:
            raise
        raise DataError(f"the CIFAR-10 cache {entry} is damaged or out of date ({damage}) "
                        f"and cannot be rebuilt: {exc}") from None
    arrays = {"train_images": train_x, "train_labels": train_y,
              "test_images": test_x, "test_labels": test_y}
    if entry is not None:
        try:
            _write_entry(entry, arrays, names, source)
        except OSError as exc:
            warnings.warn(f"could not write the CIFAR-10 cache in {entry.parent} "
                          f"({_one_line(exc)}); using the data in memory", stacklevel=2)
        else:
            del arrays, train_x, test_x
            return _open_entry(entry, source)
    return Cifar10Arrays(train_x, train_y, test_x, test_y, names, source, None)
