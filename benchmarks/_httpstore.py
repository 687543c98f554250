"""A small threaded HTTP object store for the benchmarks: files under ROOT by path, with
GET/HEAD (ETag, If-None-Match -> 304, one byte range), PUT (an atomic write) and a count
of every request the fleet makes.

    python benchmarks/_httpstore.py --root DIR [--port 0]

It prints ``listening PORT`` once it accepts connections. ``GET /_stats`` (not counted)
answers the counts as JSON: requests, 304s, and requests by kind (``pointer``: anything
under ``mvctl/``; ``object``: the rest, DVC's files). Run as its own process, so its CPU
time is its own (read from /proc) and a fleet's threads never share its interpreter.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)")
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._@-]+")
_HASHED_MAX = 1 << 20  # small files (pointers, .dir listings) get a content ETag
_CHUNK = 1 << 16


class Store(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a fleet polling at once overflows it and
    # the kernel drops SYNs (a 1 s retransmit). Production servers use hundreds (nginx 511).
    request_queue_size = 1024

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.root = root.resolve()
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up mid-request (a poller stopped): counted, not printed."""
        self.count("client_errors")

    def count(self, *keys: str) -> None:
        with self.lock:
            self.counts.update(keys)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Store

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _target(self) -> Path | None:
        """The file a request names, or None when the path is not a plain relative one."""
        path = self.path.split("?", 1)[0]
        parts = [p for p in path.split("/") if p]
        if not parts or not all(_SEGMENT_RE.fullmatch(p) and p not in (".", "..") for p in parts):
            return None
        return self.server.root.joinpath(*parts)

    def _kind(self) -> str:
        return "pointer" if self.path.lstrip("/").startswith("mvctl/") else "object"

    def _reply(
        self, status: HTTPStatus, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/_stats":
            with self.server.lock:
                stats = dict(self.server.counts)
            self._reply(
                HTTPStatus.OK, json.dumps(stats).encode(), {"Content-Type": "application/json"}
            )
            return
        self._read()

    def do_HEAD(self) -> None:
        self._read()

    def _read(self) -> None:
        kind = self._kind()
        self.server.count("requests", kind, f"{kind}:{self.command}")
        target = self._target()
        try:
            if target is None or target.is_symlink() or not target.is_file():
                raise FileNotFoundError
            info = target.stat()
            small = info.st_size <= _HASHED_MAX
            data = target.read_bytes() if small else None
        except OSError:
            self.server.count("not_found")
            self._reply(HTTPStatus.NOT_FOUND)
            return
        if data is not None:
            etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        else:
            etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
        headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "no-cache"}
        if etag in [t.strip() for t in self.headers.get("If-None-Match", "").split(",")]:
            self.server.count("not_modified", f"{kind}:304")
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = 0, info.st_size
        status = HTTPStatus.OK
        match = _RANGE_RE.fullmatch(self.headers.get("Range", "").strip())
        if match and info.st_size:
            start = int(match[1])
            end = min(int(match[2]) + 1 if match[2] else info.st_size, info.st_size)
            if start >= end:
                self._reply(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                return
            status = HTTPStatus.PARTIAL_CONTENT
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.st_size}"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if self.command == "HEAD":
            return
        if data is not None:
            self.wfile.write(data[start:end])
            return
        with target.open("rb") as handle:
            handle.seek(start)
            left = end - start
            while left > 0 and (chunk := handle.read(min(_CHUNK, left))):
                self.wfile.write(chunk)
                left -= len(chunk)

    def do_PUT(self) -> None:
        kind = self._kind()
        self.server.count("requests", kind, f"{kind}:PUT")
        target = self._target()
        length = self.headers.get("Content-Length", "")
        if target is None or not length.isdigit():
            self._reply(HTTPStatus.BAD_REQUEST)
            return
        body = self.rfile.read(int(length))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        Path(tmp).replace(target)  # a reader sees the old file or the new one, never half
        self._reply(HTTPStatus.CREATED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = Store(args.root, args.port)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
