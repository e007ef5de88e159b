"""The registry client's HTTP/1.1, on the standard library's :mod:`http.client`.

A simulation job, a notebook and every MPI rank import the client before NEST starts, so its HTTP costs
what ``http.client`` costs to import (about 20 ms), not a third-party stack's (httpx with httpcore: 90 to
200 ms, depending on what else is installed). It does what the client needs and no more:

- keep-alive connections, kept in a small pool that threads share; an idle connection the server closed
  is noticed before it is used, and a request on a reused connection that was cut before any answer is
  sent once more on a new one;
- ``https`` with the system's certificate store (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name others), and
  the ``http_proxy`` / ``https_proxy`` / ``no_proxy`` variables as other HTTP tools read them;
- query strings, JSON, form and multipart bodies, a file object streamed as the body;
- answers read whole, or streamed (``stream=True``: :meth:`Response.iter_bytes`);
- redirects followed for GET and HEAD (at most 5).

Failures to reach the server are :class:`TransportError`; its ``kind`` says how (``connect``, ``timeout``
or ``cut``), which is what the client's retries need to know.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import os
import select
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from email.message import Message
from typing import IO, Any
from urllib.parse import urlencode, urljoin, urlsplit

Params = Mapping[str, Any] | Sequence[tuple[str, Any]]
FilePart = tuple[str, tuple[str, bytes, str]]  # ("files", (name, content, content type))
MAX_REDIRECTS = 5
IDLE_KEPT = 8  # idle connections kept per client
_CUT = (http.client.RemoteDisconnected, http.client.IncompleteRead, http.client.BadStatusLine,
        ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


class TransportError(Exception):
    """No answer came: ``kind`` is ``connect`` (refused, unknown host, or a connect that timed out),
    ``timeout`` (connected, then no answer in time) or ``cut`` (the connection broke mid-request)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class Response:
    """An answer: ``status_code``, ``headers`` (case-insensitive ``get``), ``url``, and its body as
    ``content``, ``text``, ``json()`` or, for a streamed answer, ``iter_bytes()``."""

    def __init__(self, status_code: int, headers: Message, url: str, body: bytes | None = None,
                 raw: http.client.HTTPResponse | None = None, release: Any = None) -> None:
        self.status_code = status_code
        self.headers = headers
        self.url = url
        self._body = body
        self._raw = raw
        self._release = release  # gives the connection back once the body is read

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def content(self) -> bytes:
        if self._body is None:
            self._body = b"".join(self.iter_bytes())
        return self._body

    def read(self) -> bytes:
        return self.content

    @property
    def text(self) -> str:
        return self.content.decode(self.headers.get_content_charset() or "utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON (a ValueError when it is not)."""
        return jsonlib.loads(self.content)

    def iter_bytes(self, chunk: int = 1024 * 1024) -> Iterator[bytes]:
        if self._raw is None:
            yield self._body or b""
            return
        raw, self._raw = self._raw, None
        try:
            while block := _reading(raw.read, chunk):
                yield block
        finally:
            self._finish(raw)

    def close(self) -> None:
        """Drop a streamed body that was not read (its connection is closed, not kept)."""
        if self._raw is not None:
            raw, self._raw = self._raw, None
            raw.close()
            self._finish(raw, keep=False)

    def _finish(self, raw: http.client.HTTPResponse, keep: bool = True) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release(keep and raw.isclosed() and not raw.will_close)

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reading(read: Any, *args: Any) -> Any:
    """``read(*args)``, its failures as :class:`TransportError`."""
    try:
        return read(*args)
    except TimeoutError as exc:
        raise TransportError(f"no answer in time ({exc})", "timeout") from exc
    except (*_CUT, OSError) as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}", "cut") from exc


def _stale(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle connection was closed by the server (it reads as ready: EOF, or bytes it never
    should have sent)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class Transport:
    """The connections to one server (``base_url``), with the headers every request sends."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout: float) -> None:
        self.base_url = base_url
        self.headers = dict(headers)
        self.timeout = timeout
        self._idle: list[tuple[str, http.client.HTTPConnection]] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, conn in idle:
            conn.close()

    def request(self, method: str, path: str, *, params: Params | None = None, json: Any = None,
                data: Mapping[str, str] | None = None, files: Sequence[FilePart] | None = None,
                content: bytes | IO[bytes] | None = None, headers: Mapping[str, str] | None = None,
                stream: bool = False) -> Response:
        """``method`` of ``path`` (under the base URL; ``params`` as its query string) with at most one
        kind of body: ``json``, ``data`` (a form, multipart with ``files``) or ``content``."""
        url = self.base_url + path
        if params:
            items = params.items() if isinstance(params, Mapping) else params
            url += "?" + urlencode([(k, v) for k, v in items if v is not None], doseq=True)
        sent = {**self.headers, **(headers or {})}
        body = _body(sent, json, data, files, content)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, sent, body, stream)
            location = response.headers.get("location")
            if method not in ("GET", "HEAD") or response.status_code not in (301, 302, 303, 307, 308) \
                    or not location:
                return response
            response.close()  # (a body read whole is already closed)
            url = urljoin(url, location)
        raise TransportError(f"more than {MAX_REDIRECTS} redirects from {url}", "cut")

    def _send(self, method: str, url: str, headers: dict[str, str], body: Any, stream: bool) -> Response:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn, reused = self._connection(origin)
        proxied = isinstance(conn, _ProxiedConnection)
        try:
            conn.request(method, url if proxied else target, body=body, headers=headers)
            raw = conn.getresponse()
        except TimeoutError as exc:
            kind = "connect" if conn.sock is None else "timeout"
            conn.close()
            raise TransportError(f"no answer within {self.timeout:g} s", kind) from exc
        except _CUT as exc:
            conn.close()
            if reused and (body is None or isinstance(body, bytes)):  # the server closed it as we sent
                return self._send(method, url, headers, body, stream)
            raise TransportError(f"{type(exc).__name__}: {exc}", "cut") from exc
        except OSError as exc:  # refused, unreachable, unknown host, TLS refused
            conn.close()
            raise TransportError(f"{type(exc).__name__}: {exc}", "connect" if not reused else "cut") from exc
        release = self._releaser(origin, conn)
        response = Response(raw.status, raw.msg, url, raw=raw, release=release)
        if not stream:
            response.content  # noqa: B018 - read whole, so the connection goes back to the pool
        return response

    def _connection(self, origin: str) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            while self._idle:
                kept_origin, conn = self._idle.pop()
                if kept_origin == origin and not _stale(conn):
                    return conn, True
                conn.close()
        return _connect(origin, self.timeout), False

    def _releaser(self, origin: str, conn: http.client.HTTPConnection) -> Any:
        def release(keep: bool) -> None:
            if not keep:
                conn.close()
                return
            with self._lock:
                if len(self._idle) < IDLE_KEPT:
                    self._idle.append((origin, conn))
                    return
            conn.close()

        return release


class _ProxiedConnection(http.client.HTTPConnection):
    """A plain-HTTP connection to a proxy: requests name the absolute URL in their request line."""


def _connect(origin: str, timeout: float) -> http.client.HTTPConnection:
    """A new (unopened) connection to ``origin``, through the environment's proxy for it if any."""
    parts = urlsplit(origin)
    host, port = parts.hostname or "", parts.port
    proxy = _proxy_for(parts.scheme, host)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        import ssl

        context = ssl.create_default_context()
        if proxy:
            proxy_parts = urlsplit(proxy)
            conn = http.client.HTTPSConnection(proxy_parts.hostname or "", proxy_parts.port or 80,
                                               timeout=timeout, context=context)
            conn.set_tunnel(host, port or 443)
        else:
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    elif proxy:
        proxy_parts = urlsplit(proxy)
        conn = _ProxiedConnection(proxy_parts.hostname or "", proxy_parts.port or 80, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    return conn


def _proxy_for(scheme: str, host: str) -> str | None:
    """The proxy the environment names for ``scheme`` and ``host`` (none for loopback or ``no_proxy``)."""
    if not any(k.lower().endswith("_proxy") for k in os.environ):
        return None
    from urllib.request import getproxies_environment, proxy_bypass

    proxy = getproxies_environment().get(scheme)
    if not proxy or host in ("127.0.0.1", "localhost", "::1") or proxy_bypass(host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _body(headers: dict[str, str], json: Any, data: Mapping[str, str] | None, files: Sequence[FilePart] | None,
          content: bytes | IO[bytes] | None) -> Any:
    """The request body, with its Content-Type and Content-Length set in ``headers``."""
    if json is not None:
        headers["Content-Type"] = "application/json"
        body: Any = jsonlib.dumps(json).encode()
    elif files:
        boundary = uuid.uuid4().hex
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        body = _multipart(boundary, data or {}, files)
    elif data is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urlencode(dict(data)).encode()
    elif content is not None:
        body = content
        if not isinstance(content, bytes):
            headers["Content-Length"] = str(os.fstat(content.fileno()).st_size - content.tell())
            return body
    else:
        return None
    headers["Content-Length"] = str(len(body))
    return body


def _multipart(boundary: str, data: Mapping[str, str], files: Sequence[FilePart]) -> bytes:
    def quoted(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")

    out = bytearray()
    for name, value in data.items():
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted(name)}"\r\n\r\n'
                f"{value}\r\n").encode()
    for field, (filename, payload, content_type) in files:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted(field)}"; '
                f'filename="{quoted(filename)}"\r\nContent-Type: {content_type}\r\n\r\n').encode()
        out += payload + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)

