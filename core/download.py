"""Download the official CIFAR-10 tarball into the cache, verified, atomically (pooch).

pooch.retrieve streams the body into a temporary file, checks its hash and only then moves it
to its final name; on any exception (HTTP error, dropped connection, wrong hash, our
cancellation) the temporary file is deleted. pooch works in a per-process folder
``dest/.rnnscope-download/<pid>-<random>/``; the verified file is then moved to
``dest/cifar-10-python.tar.gz`` with ``os.replace``. A process killed mid-download leaves only
its part folder, which the next download deletes (its pid is gone); nothing reads it. Progress and
cancellation ride on pooch's custom-progressbar hook: pooch sets ``.total`` from the
Content-Length and calls ``.update(chunk_size)`` after every chunk written; our ``update``
reports the bytes and raises DownloadCancelled when ``cancel()`` returns True, which aborts the
download inside pooch, so its cleanup runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from core.errors import DownloadCancelled, DownloadError
from core.fileio import remove_orphans
from core.paths import TARBALL_NAME, cache_dir

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CHUNK_BYTES = 64 * 1024
TIMEOUT_S = 30
PARTS_DIR = ".rnnscope-download"  # per-process folders pooch streams into


class _ProgressHook:
    """pooch progressbar object: ``total`` set by pooch, ``update(n)`` after each chunk."""

    def __init__(self, progress: Callable[[int, int], None] | None,
                 cancel: Callable[[], bool] | None):
        self.progress = progress
        self.cancel = cancel
        self.total = 0  # Content-Length, 0 when the server sent none
        self.done = 0
        self.finished = False

    def update(self, n: int) -> None:
        if self.finished:
            return
        if self.cancel is not None and self.cancel():
            raise DownloadCancelled("download cancelled; nothing was kept")
        # pooch counts whole chunks, so the last one may overshoot the real size
        self.done = self.done + n if not self.total else min(self.done + n, self.total)
        if self.progress is not None:
            self.progress(self.done, self.total)

    def reset(self) -> None:
        # pooch calls reset() + update(total) + close() once the body is complete;
        # the final update is reported once, not counted twice
        self.done = 0

    def close(self) -> None:
        self.finished = True


@contextlib.contextmanager
def _quiet_pooch():
    """pooch logs 'Downloading ...' at INFO to stderr; the caller reports progress itself."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def download_cifar10(dest_dir: str | Path | None = None, url: str = CIFAR10_URL,
                     md5: str = CIFAR10_MD5, progress: Callable[[int, int], None] | None = None,
                     cancel: Callable[[], bool] | None = None) -> Path:
    """Fetch ``url`` into ``dest_dir`` (default: the cache folder) -> path of the tarball.

    ``progress(done_bytes, total_bytes)`` after each chunk (total 0 if the server sends no
    length); ``cancel()`` is polled before the request and after each chunk. An existing file
    with the right md5 is returned without downloading. Raises DownloadCancelled,
    DownloadError (HTTP status, network, wrong hash, disk); nothing partial is left behind.
    """
    import pooch
    import requests

    dest = Path(dest_dir) if dest_dir is not None else cache_dir()
    if cancel is not None and cancel():
        raise DownloadCancelled("download cancelled before it started; nothing was kept")
    target = dest / TARBALL_NAME
    if target.is_file() and pooch.file_hash(str(target), alg="md5") == md5.lower():
        return target
    hook = _ProgressHook(progress, cancel)
    downloader = pooch.HTTPDownloader(progressbar=hook, chunk_size=CHUNK_BYTES,
                                      timeout=TIMEOUT_S)
    parts = dest / PARTS_DIR
    part = parts / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        part.mkdir(parents=True)
        _remove_orphans(parts, keep=part)
        with _quiet_pooch():
            got = pooch.retrieve(url, known_hash=f"md5:{md5}", fname=TARBALL_NAME, path=part,
                                 downloader=downloader)
        os.replace(got, target)  # verified file moves into place in one step
    except DownloadCancelled:
        raise
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise DownloadError(f"{url} answered HTTP {status}; check the URL or try again "
                            f"later (nothing was kept)") from None
    except requests.exceptions.Timeout:
        raise DownloadError(f"{url} timed out after {TIMEOUT_S} s; check your connection "
                            f"and try again (nothing was kept)") from None
    except (requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError):
        raise DownloadError(f"the connection to {url} dropped after {hook.done:,} of "
                            f"{hook.total:,} bytes; try again (nothing was kept)") from None
    except requests.exceptions.ConnectionError:
        raise DownloadError(f"could not connect to {url}; check your connection or proxy and "
                            f"try again (nothing was kept)") from None
    except requests.exceptions.RequestException as exc:
        raise DownloadError(f"downloading {url} failed ({' '.join(str(exc).split())[:120]}); "
                            f"try again (nothing was kept)") from None
    except ValueError as exc:  # pooch: hash mismatch (the file was already deleted)
        if "hash" not in str(exc):
            raise
        raise DownloadError(f"{url} delivered a file whose md5 is not {md5} (corrupted or "
                            f"changed download); it was deleted, try again") from None
    except OSError as exc:
        raise DownloadError(f"cannot write the download to {dest} ({exc.strerror or exc}); "
                            f"free some space or choose another folder") from None
    finally:
        shutil.rmtree(part, ignore_errors=True)
        with contextlib.suppress(OSError):
            parts.rmdir()  # only if no other download is running
    return target


def _part_pid(name: str) -> int | None:
    """The pid of the download that made part folder ``name`` ('<pid>-<random>')."""
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _remove_orphans(parts: Path, keep: Path) -> None:
    """Delete part folders of downloads whose process died (killed mid-download) or that are
    older than a day; their temp files were never trusted, this only frees the space."""
    remove_orphans(parts, _part_pid, keep=(keep,))
