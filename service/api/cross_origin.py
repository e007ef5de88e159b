"""Which other web pages may call the NEST Desktop front door (``/compat/nestml-server``), and the CORS
answers that let a browser do so.

NEST Desktop is a web page of its own origin (usually ``http://localhost:54286`` beside NEST Server) that
calls its NESTML server from the browser, so the front door must answer CORS: a preflight (``OPTIONS``
with ``Access-Control-Request-Method``) says which methods and headers it takes (``Content-Type``, NEST
Desktop's token header ``AccessToken``, ``Authorization``), and every answer, errors included, names the
origin it is for. By default only loopback origins (``http://localhost:PORT``, ``http://127.0.0.1:PORT``,
``http://[::1]:PORT``) are let in; ``NESTML_REGISTRY_COMPAT_ORIGINS`` adds others (``*``: any). Nowhere else
in the registry is any other origin let in (see :mod:`nestml_registry.service.api.request_origin`): its own
pages need none, and publishing from a foreign page still needs a publisher's token.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nestml_registry.service.api.errors import NESTML_SERVER_PATH, error_response
from nestml_registry.service.settings import Settings

_LOOPBACK_ORIGIN_RE = re.compile(r"^https?://(localhost|127(?:\.\d{1,3}){3}|\[::1\])(:\d{1,5})?$", re.IGNORECASE)
ALLOWED_HEADERS = "Content-Type, AccessToken, Authorization"
ALLOWED_METHODS = "GET, POST, OPTIONS"
PREFLIGHT_MAX_AGE = "600"


def is_front_door(path: str) -> bool:
    return path == NESTML_SERVER_PATH or path.startswith(NESTML_SERVER_PATH + "/")


def origin_allowed(origin: str, settings: Settings) -> bool:
    """Whether a page of ``origin`` may call the front door (loopback origins, and the configured ones)."""
    origin = origin.strip().rstrip("/").lower()
    return bool(_LOOPBACK_ORIGIN_RE.fullmatch(origin)) or "*" in settings.compat_origins \
        or origin in settings.compat_origins


def refusal(origin: str) -> str:
    return (f"pages of {origin[:100]} may not call this registry's NEST Desktop front door: its administrator lets "
            "them with NESTML_REGISTRY_COMPAT_ORIGINS (loopback origins, e.g. http://localhost:54286, need nothing)")


class FrontDoorCors:
    """ASGI middleware: CORS for the front door's paths only; every other path passes untouched."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_front_door(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = origin_allowed(origin, self.settings)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, allowed, scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and allowed:
                extra = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_cors)

    async def _preflight(self, origin: str, allowed: bool, scope: Scope, receive: Receive, send: Send) -> None:
        response: Response
        if not allowed:
            response = error_response(403, "cross_origin", refusal(origin), {"origin": origin[:100]},
                                      path=scope["path"])
        else:
            response = Response(status_code=204, headers={
                "Access-Control-Allow-Origin": origin, "Vary": "Origin",
                "Access-Control-Allow-Methods": ALLOWED_METHODS, "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE})
        await response(scope, receive, send)
