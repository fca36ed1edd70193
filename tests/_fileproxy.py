"""A tiny HTTP forward proxy that serves registered bytes for URL-input tests.

BentoML's server refuses to download from loopback addresses, except through its configured
HTTP proxy (PROTOCOL.md §9.19). The example server is started with ``HTTP_PROXY`` pointing
here, and tests use URLs on a made-up host that is never resolved.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOST = "files.asyncbento.test"


class FileProxy:
    """Serves ``http://files.asyncbento.test/<name>`` for names added with :meth:`add`."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.requests.append(self.path)
                parts = urlsplit(self.path)
                name = parts.path.lstrip("/")
                found = proxy.files.get(name) if parts.hostname in (HOST, None) else None
                if found is None:
                    self.send_error(404)
                    return
                data, content_type = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def add(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Register a file; returns the URL the BentoML server can fetch it from."""
        self.files[name] = (data, content_type)
        return f"http://{HOST}/{name}"

    def start(self) -> FileProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
