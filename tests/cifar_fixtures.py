"""Small CIFAR-10 fixtures in the official python format, for tests (any module may use them).

``write_cifar_folder(d)`` writes ``d/cifar-10-batches-py/`` and ``write_cifar_tarball(d)`` writes
``d/cifar-10-python.tar.gz`` with the official layout: protocol-2 pickles with byte-string keys
``batch_label``, ``labels``, ``data`` (uint8 (n, 3072), R,G,B planes), ``filenames``; members
in the same (unsorted) order as the official archive. ``fixture_arrays`` returns the NHWC images
and labels the fixture holds, so tests can compare what a loader returns. Labels are balanced:
every batch holds n // 10 images of each class when n is a multiple of 10.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]
TRAIN_NAMES = [f"data_batch_{i}" for i in range(1, 6)]
# the order of the members in the official tarball
TAR_ORDER = ["batches.meta", "data_batch_4", "data_batch_2", "readme.html", "data_batch_5",
             "data_batch_1", "test_batch", "data_batch_3"]


def fixture_arrays(n_per_batch: int = 20, n_test: int | None = None, seed: int = 0):
    """Images and labels of a fixture -> {batch name: (uint8 (n,32,32,3), int64 (n,))}."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in TRAIN_NAMES + ["test_batch"]:
        n = n_per_batch if name != "test_batch" else (n_test or n_per_batch)
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
        out[name] = (images, labels)
    return out


def batch_dict(images: np.ndarray, labels, name: str = "batch", key_type: str = "bytes") -> dict:
    """The official batch dict for NHWC ``images``; ``key_type`` 'bytes' (official) or 'str'."""
    data = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), 3072)
    d = {
        b"batch_label": name.encode(),
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [f"{name}_{i}.png".encode() for i in range(len(images))],
    }
    if key_type == "str":
        d = {k.decode(): v for k, v in d.items()}
    return d


def meta_dict(n_per_batch: int, key_type: str = "bytes") -> dict:
    d = {b"num_cases_per_batch": n_per_batch,
         b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}
    if key_type == "str":
        d = {k.decode(): ([n.decode() for n in v] if isinstance(v, list) else v)
             for k, v in d.items()}
    return d


def _files(n_per_batch, n_test, seed, key_type) -> dict[str, bytes]:
    files = {"batches.meta": pickle.dumps(meta_dict(n_per_batch, key_type), protocol=2),
             "readme.html": b"<meta HTTP-EQUIV=\"REFRESH\" content=\"0; URL=...\">\n"}
    for name, (images, labels) in fixture_arrays(n_per_batch, n_test, seed).items():
        files[name] = pickle.dumps(batch_dict(images, labels, name, key_type), protocol=2)
    return files


def write_cifar_folder(directory: str | Path, n_per_batch: int = 20, n_test: int | None = None,
                       seed: int = 0, key_type: str = "bytes") -> Path:
    """Write ``directory/cifar-10-batches-py/`` -> its path."""
    folder = Path(directory) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in _files(n_per_batch, n_test, seed, key_type).items():
        (folder / name).write_bytes(raw)
    return folder


def cifar_tarball_bytes(n_per_batch: int = 20, n_test: int | None = None, seed: int = 0,
                        key_type: str = "bytes", omit: tuple[str, ...] = ()) -> bytes:
    """The bytes of a fixture ``cifar-10-python.tar.gz`` (members in ``omit`` left out)."""
    files = _files(n_per_batch, n_test, seed, key_type)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("cifar-10-batches-py")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tf.addfile(info)
        for name in TAR_ORDER:
            if name in omit:
                continue
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(files[name])
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def write_cifar_tarball(directory: str | Path, n_per_batch: int = 20, n_test: int | None = None,
                        seed: int = 0, key_type: str = "bytes", omit: tuple[str, ...] = (),
                        name: str = "cifar-10-python.tar.gz") -> Path:
    """Write ``directory/cifar-10-python.tar.gz`` -> its path."""
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cifar_tarball_bytes(n_per_batch, n_test, seed, key_type, omit))
    return path


def flip_byte_in_middle(path: str | Path) -> int:
    """Flip one bit of the byte in the middle of ``path`` in place -> its offset.

    On a fixture tarball (random pixels, stored deflate blocks) the flipped byte lands inside a
    member's data: tar and pickle still parse, only the gzip CRC of the whole stream differs.
    """
    path = Path(path)
    raw = bytearray(path.read_bytes())
    offset = len(raw) // 2
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))
    return offset
