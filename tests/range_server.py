"""A tiny HTTP server on 127.0.0.1 that answers range requests and logs the bytes it sends.

Python's ``http.server.SimpleHTTPRequestHandler`` ignores ``Range``; GDAL's ``/vsicurl/`` needs
it to read parts of a file. The server also answers S3-style paths (``/bucket/key``), so GDAL's
``/vsis3/`` can be pointed at it with ``AWS_S3_ENDPOINT``.
"""
from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class RangeServer:
    """Serves the files of ``root``; ``log`` holds (path, bytes sent) per request."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.log: list[tuple[str, int]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep the test output clean
                pass

            def _file(self) -> Path | None:
                rel = self.path.split("?", 1)[0].lstrip("/")
                p = (server.root / rel).resolve()
                return p if p.is_file() and server.root.resolve() in p.parents else None

            def do_HEAD(self) -> None:  # noqa: N802
                p = self._file()
                if p is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(p.stat().st_size))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                server.log.append((self.path, 0))

            def do_GET(self) -> None:  # noqa: N802
                p = self._file()
                if p is None:
                    self.send_error(404)
                    server.log.append((self.path, 0))
                    return
                data = p.read_bytes()
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                if m:
                    start = int(m.group(1))
                    end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
                    body = data[start:end + 1]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                else:
                    body = data
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                self.wfile.write(body)
                server.log.append((self.path, len(body)))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def bytes_sent(self) -> int:
        return sum(n for _, n in self.log)

    def __enter__(self) -> "RangeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
