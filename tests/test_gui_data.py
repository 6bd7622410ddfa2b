"""Loading data through the app: a CIFAR-10 tarball and folder (the Open… path), and Download
CIFAR-10 against a real HTTP server on 127.0.0.1 (progress with bytes and speed, cancel)."""

import hashlib
import http.server

import pytest

pytest.importorskip("PySide6")

from tests.cifar_fixtures import (  # noqa: E402
    CLASSES,
    cifar_tarball_bytes,
    write_cifar_folder,
    write_cifar_tarball,
)
from tests.local_http import serve, stream_body  # noqa: E402

BODY = cifar_tarball_bytes(n_per_batch=20, seed=5)
MD5 = hashlib.md5(BODY).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path not in ("/cifar.tar.gz", "/slow.tar.gz"):
            self.send_error(404, "Not Found")
            return
        stream_body(self, BODY, 0.2 if self.path == "/slow.tar.gz" else 0.01)


@pytest.fixture
def server(monkeypatch):
    with serve(_Handler, monkeypatch) as url:
        yield url


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow

    w = MainWindow(load=False)
    qtbot.addWidget(w)
    yield w
    assert w.shutdown()


@pytest.mark.parametrize("layout", ["tarball", "folder"])
def test_open_cifar10_through_the_app(window, qtbot, tmp_path, layout):
    if layout == "tarball":
        path = write_cifar_tarball(tmp_path, n_per_batch=20)
    else:
        write_cifar_folder(tmp_path, n_per_batch=20)
        path = tmp_path / "cifar-10-batches-py"
    w = window
    with qtbot.waitSignal(w.dataLoaded, timeout=60000):
        w.data_panel.loadRequested.emit(str(path), None)   # what Open… emits
        assert "Loading CIFAR-10 from" in w.data_panel.dataset_label.text()
    assert w.splits.name == "cifar10"
    assert str(path) in w.data_panel.dataset_label.text()
    n = (len(w.splits.train), len(w.splits.val), len(w.splits.test))
    assert sum(n[:2]) == 100 and n[2] == 20
    assert f"{n[0]:,} train" in w.data_panel.sizes_label.text()
    assert all(c in w.data_panel.classes_label.text() for c in CLASSES)
    assert w.data_panel.thumbs.count() == min(24, n[0])
    assert w.explorer.thumbs.count() == min(48, n[1])
    assert w.data_panel.download_button.isEnabled() and w.data_panel.progress.isHidden()
    # the untrained preview model is traced, so the explorer has something to show
    qtbot.waitUntil(lambda: w.explorer.trace is not None, timeout=60000)
    assert w.explorer.trace["class_names"] == CLASSES
    assert not w.explorer.image_view.mark.isVisible()   # no cue on CIFAR-10


def test_bad_file_is_explained_not_raised(window, qtbot, tmp_path):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(b"not a tarball")
    w = window
    w.load_data(str(bad))
    qtbot.waitUntil(lambda: "load" not in w._workers, timeout=30000)
    assert w.splits is None
    assert not w.data_panel.progress_label.isHidden()   # stays after the worker has ended
    assert "#c62828" in w.data_panel.progress_label.text()   # the red one-line message
    assert w.data_panel.probe_button.isEnabled()


def test_download_shows_bytes_and_speed_then_loads(window, qtbot, server):
    w = window
    w.download_url, w.download_md5 = f"{server}/cifar.tar.gz", MD5
    w.data_panel.subset_spin.setValue(0)   # 'all': the fixture holds 100 training images
    seen = []
    orig = w.data_panel.set_download_progress
    w.data_panel.set_download_progress = lambda d, t, s: (seen.append((d, t, s)), orig(d, t, s))
    with qtbot.waitSignal(w.dataLoaded, timeout=60000):
        w.data_panel.download_button.click()
        assert not w.data_panel.download_button.isEnabled()
    done, total, speed = seen[-1]
    assert total == len(BODY) and done == len(BODY) and speed > 0
    assert any(0 < d < total for d, _, _ in seen)   # intermediate progress arrived
    assert w.splits.name == "cifar10" and len(w.splits.test) == 20
    assert "Downloaded" in w.status.text() or "Loaded" in w.status.text()


def test_download_can_be_cancelled(window, qtbot, server):
    w = window
    w.download_url, w.download_md5 = f"{server}/slow.tar.gz", MD5
    w.data_panel.download_button.click()
    qtbot.waitUntil(lambda: "of 0." in w.data_panel.progress_label.text()
                    and " MB at " in w.data_panel.progress_label.text(), timeout=30000)
    assert not w.data_panel.cancel_button.isHidden()
    w.data_panel.cancel_button.click()
    qtbot.waitUntil(lambda: "download" not in w._workers, timeout=30000)
    assert "cancel" in w.data_panel.progress_label.text().lower()
    assert not w.data_panel.progress_label.isHidden()
    assert w.data_panel.download_button.isEnabled() and w.data_panel.cancel_button.isHidden()
    assert w.data_panel.progress.isHidden()
    assert w.splits is None
