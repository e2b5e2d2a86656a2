"""Test helpers: listing a folder, flipping a bit, and an HTTP proxy that lies about content."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx


def listing(folder: Path) -> list[str]:
    """Every entry under ``folder`` (hidden and temporary files included)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


Tamper = Callable[[str, bytes], bytes]


class LyingProxy:
    """An HTTP proxy to the node's RPC API that can rewrite response bodies per endpoint."""

    def __init__(self, upstream: str, tamper: Tamper) -> None:
        self.upstream = upstream
        self.tamper = tamper
        self.seen: list[str] = []
        self.cut_first: set[str] = set()  # endpoints whose first answer breaks half-way
        self.drop_first: set[str] = set()  # endpoints whose first request gets no answer
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.headers.get("Transfer-Encoding") == "chunked":
                    body = bytearray()
                    while size := int(self.rfile.readline().strip(), 16):
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                else:
                    body = bytearray(self.rfile.read(length))
                endpoint = self.path.split("?")[0].removeprefix("/api/v0/")
                if endpoint in proxy.drop_first:
                    proxy.drop_first.discard(endpoint)
                    proxy.seen.append("dropped " + endpoint)
                    self.close_connection = True
                    return
                headers = {"Content-Type": self.headers.get("Content-Type", "")}
                answer = httpx.post(
                    proxy.upstream + self.path, content=bytes(body), headers=headers, timeout=30
                )
                proxy.seen.append(endpoint)
                content = proxy.tamper(endpoint, answer.content)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if endpoint in proxy.cut_first:
                    proxy.cut_first.discard(endpoint)
                    self.wfile.write(content[: len(content) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def flip(data: bytes, position: int | None = None) -> bytes:
    """``data`` with one bit flipped (in the middle by default)."""
    if not data:
        return b"\x00"
    index = len(data) // 2 if position is None else position
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]
