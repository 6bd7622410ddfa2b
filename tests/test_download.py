"""download_cifar10 against a real HTTP server on 127.0.0.1 (no mocks of the HTTP layer)."""

import hashlib
import http.server
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.cifar10 import load_cifar10
from core.download import CHUNK_BYTES, download_cifar10
from core.errors import DownloadCancelled, DownloadError
from tests.cifar_fixtures import cifar_tarball_bytes
from tests.local_http import serve, stream_body

BODY = cifar_tarball_bytes(n_per_batch=20, seed=3)  # ~370 kB: several 64 kB chunks
MD5 = hashlib.md5(BODY).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    requests_seen: list = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        _Handler.requests_seen.append(self.path)
        if self.path == "/cifar.tar.gz":
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/drop.tar.gz":  # promises the whole body, sends a third, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[: len(BODY) // 3])
            self.wfile.flush()
            self.close_connection = True
        elif self.path == "/slow.tar.gz":  # the whole body, slowly (for the kill test)
            stream_body(self, BODY, 0.1)
        else:
            self.send_error(404, "Not Found")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never touch the real cache folder."""
    monkeypatch.setenv("RNNSCOPE_CACHE", str(tmp_path / "rnnscope-cache"))


@pytest.fixture
def server(monkeypatch):
    _Handler.requests_seen = []
    with serve(_Handler, monkeypatch) as url:
        yield url


def _leftovers(d):
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_download_succeeds_reports_progress_and_loads(server, tmp_path):
    dest = tmp_path / "cache"
    calls = []
    path = download_cifar10(dest, url=f"{server}/cifar.tar.gz", md5=MD5,
                            progress=lambda done, total: calls.append((done, total)))
    assert path == dest / "cifar-10-python.tar.gz"
    assert path.read_bytes() == BODY
    assert _leftovers(dest) == ["cifar-10-python.tar.gz"]  # no temp file left
    assert len(calls) >= len(BODY) // CHUNK_BYTES
    dones = [d for d, _ in calls]
    assert dones == sorted(dones) and calls[-1] == (len(BODY), len(BODY))
    assert all(t == len(BODY) for _, t in calls)
    arrays = load_cifar10(path)  # the downloaded file is a loadable data set
    assert arrays.train_images.shape == (100, 32, 32, 3)
    assert np.bincount(arrays.test_labels).tolist() == [2] * 10


def test_existing_good_file_is_not_downloaded_again(server, tmp_path):
    download_cifar10(tmp_path, url=f"{server}/cifar.tar.gz", md5=MD5)
    assert len(_Handler.requests_seen) == 1
    path = download_cifar10(tmp_path, url=f"{server}/cifar.tar.gz", md5=MD5)
    assert len(_Handler.requests_seen) == 1 and path.read_bytes() == BODY


def test_existing_bad_file_is_replaced(server, tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(BODY[:1000])  # e.g. an old partial copy
    path = download_cifar10(tmp_path, url=f"{server}/cifar.tar.gz", md5=MD5)
    assert path.read_bytes() == BODY and len(_Handler.requests_seen) == 1


def test_wrong_hash_keeps_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="md5") as err:
        download_cifar10(tmp_path / "c", url=f"{server}/cifar.tar.gz", md5="0" * 32)
    assert "\n" not in str(err.value)
    assert _leftovers(tmp_path / "c") == []


def test_connection_dropped_mid_body_keeps_nothing(server, tmp_path):
    calls = []
    with pytest.raises(DownloadError, match="dropped") as err:
        download_cifar10(tmp_path, url=f"{server}/drop.tar.gz", md5=MD5,
                         progress=lambda d, t: calls.append(d))
    assert f"of {len(BODY):,} bytes" in str(err.value)
    assert calls and calls[-1] < len(BODY)  # some bytes arrived before the drop
    assert _leftovers(tmp_path) == []


def test_http_404_keeps_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_cifar10(tmp_path, url=f"{server}/nothing-here.tar.gz", md5=MD5)
    assert _leftovers(tmp_path) == []


def test_connection_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with socket.socket() as s:  # a port nobody listens on any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="could not connect"):
        download_cifar10(tmp_path, url=f"http://127.0.0.1:{port}/x.tar.gz", md5=MD5)
    assert _leftovers(tmp_path) == []


def test_cancel_mid_download_keeps_nothing(server, tmp_path):
    calls = []
    with pytest.raises(DownloadCancelled):
        download_cifar10(tmp_path, url=f"{server}/cifar.tar.gz", md5=MD5,
                         progress=lambda d, t: calls.append(d), cancel=lambda: len(calls) >= 2)
    assert calls == [CHUNK_BYTES, 2 * CHUNK_BYTES]  # stopped at the first poll after 2 chunks
    assert _leftovers(tmp_path) == []


def test_cancel_before_start_makes_no_request(server, tmp_path):
    with pytest.raises(DownloadCancelled):
        download_cifar10(tmp_path, url=f"{server}/cifar.tar.gz", md5=MD5, cancel=lambda: True)
    assert _Handler.requests_seen == [] and _leftovers(tmp_path) == []


_CHILD = """
import sys
from core.download import download_cifar10
download_cifar10(sys.argv[1], url=sys.argv[2], md5=sys.argv[3],
                 progress=lambda d, t: print(d, flush=True))
"""


def test_killed_download_leaves_nothing_trusted_and_is_cleaned_up(server, tmp_path):
    repo = Path(__file__).resolve().parents[1]
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path),
                              f"{server}/slow.tar.gz", MD5], cwd=repo,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert int(child.stdout.readline()) > 0  # bytes are arriving
    finally:
        child.kill()  # SIGKILL: no Python cleanup runs
        child.wait(10)
        child.stdout.close()
    assert not (tmp_path / "cifar-10-python.tar.gz").exists()
    orphans = list((tmp_path / ".rnnscope-download").iterdir())
    assert len(orphans) == 1 and any(orphans[0].iterdir())  # the dead process's temp file
    download_cifar10(tmp_path, url=f"{server}/cifar.tar.gz", md5=MD5)
    assert _leftovers(tmp_path) == ["cifar-10-python.tar.gz"]  # orphan removed
