"""The two answers a cluster's starting jobs ask for all at once, answered before routing when they are at hand.

A sweep of a thousand jobs is a thousand ``GET /v1/resolve`` of a few references, and monitors poll
``GET /healthz``. Both answers are already kept: a resolution by the registry's generation
(:mod:`nestml_registry.service.api.read_cache`), the health document for a second
(:class:`~nestml_registry.service.api.routes.health.RecentHealth`). What a request then costs is mostly the
framework's routing and dependency solving, so this ASGI middleware answers such a request itself when,
and only when, the routed request would answer the same bytes:

- ``GET /healthz`` while a health document computed less than a second ago is at hand;
- ``GET /v1/resolve`` whose references and toolchain have a resolution kept at the current generation
  (kept only after the routed request validated them and resolved them), asked without a token where
  reading is open, or with a token whose owner the cache holds at this generation and may read.

It counts the resolve in the metrics as the route does. Everything else (a miss, a NUL anywhere, a token
not yet seen, a worker's token, any other path or method) goes on to the application unchanged, which
answers, refuses or fills the caches for the next request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from nestml_registry.service.api.auth import principal_key

RESOLVE, HEALTH = "/v1/resolve", "/healthz"
_JSON = [(b"content-type", b"application/json")]


class HotReads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] in (RESOLVE, HEALTH):
            state = scope["app"].state
            body = state.health.fresh() if scope["path"] == HEALTH else await _kept_resolution(scope, state)
            if body is not None:
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", str(len(body)).encode()), *_JSON]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


async def _kept_resolution(scope: Scope, state: Any) -> bytes | None:
    """The kept answer to this resolve, if the routed request would answer exactly it; else None."""
    if getattr(state, "database", None) is None:  # not started (or stopped)
        return None
    query = scope.get("query_string", b"").decode("latin-1")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        return None
    models = [v for k, v in pairs if k == "model"]
    toolchains = [v for k, v in pairs if k == "toolchain"]
    if not models or len(toolchains) != 1 or "\x00" in query or "%00" in query or "\x00" in scope["path"]:
        return None
    if not await _may_read(scope, state):
        return None
    body = await state.reads.fresh(state.database, ("resolve", tuple(models), toolchains[0]))
    if body is not None:
        state.metrics.resolves.inc()
    return body


async def _may_read(scope: Scope, state: Any) -> bool:
    """Whether the request's token (or none) reads here, by what the caches already know."""
    headers = [v for k, v in scope["headers"] if k == b"authorization"]
    if not headers or not headers[0].strip():  # (the application reads the first)
        return not state.settings.read_requires_token
    owner = await state.reads.fresh(state.database, principal_key(headers[0].decode("latin-1")))
    return owner is not None and owner.role != "worker"
