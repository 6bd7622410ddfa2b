"""A real HTTP server on 127.0.0.1 for download tests (no mocks of the HTTP layer)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler], monkeypatch) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port, bypassing any proxy; yields the base URL."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def stream_body(handler: http.server.BaseHTTPRequestHandler, body: bytes, pause_s: float,
                chunk: int = 16384) -> None:
    """Send a 200 with ``body`` in chunks, pausing between them; a client that hangs up
    (cancelled or killed mid-download) just ends the response."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    try:
        for i in range(0, len(body), chunk):
            handler.wfile.write(body[i:i + chunk])
            handler.wfile.flush()
            time.sleep(pause_s)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True
