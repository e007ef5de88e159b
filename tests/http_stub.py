"""A small HTTP/1.1 server on loopback that answers with a test's function, for the client's own tests
(what the client sends, how it reads answers, errors and broken connections) without a registry.

    with Stub() as stub:
        stub.handler = lambda seen: Answer(200, json={"ok": True})
        RegistryClient(stub.url).healthz()
"""

from __future__ import annotations

import json as jsonlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """A request as the stub received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    connection: int  # which TCP connection carried it (counted from 1)


@dataclass
class Answer:
    status: int
    json: Any = None
    text: str | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # close the connection after this answer, saying so
    drop: bool = False  # close it without saying so (the client finds out when it uses it again)
    delay: float = 0.0  # seconds before answering

    def body(self) -> tuple[bytes, str]:
        if self.json is not None:
            return jsonlib.dumps(self.json).encode(), "application/json"
        if self.text is not None:
            return self.text.encode(), "text/plain; charset=utf-8"
        return self.content or b"", "application/octet-stream"


Handler = Callable[[Seen], Answer]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up first (the timeout tests' does): nothing to print."""


class Stub:
    def __init__(self) -> None:
        self.handler: Handler = lambda seen: Answer(404, json={"error": {"code": "not_found", "message": "stub"}})
        self.seen: list[Seen] = []
        self.connections = 0
        stub = self

        class Handle(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                stub.connections += 1
                self.number = stub.connections

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                            {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length), self.number)
                stub.seen.append(seen)
                answer = stub.handler(seen)
                time.sleep(answer.delay)
                body, content_type = answer.body()
                self.send_response(answer.status)
                headers = {"Content-Type": content_type, "Content-Length": str(len(body)), **answer.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                if answer.close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.close_connection = self.close_connection or answer.drop
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.server = _QuietServer(("127.0.0.1", 0), Handle)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Stub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
