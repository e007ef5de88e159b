"""The API's one error shape, ``{"error": {"code", "message", "details"}}`` (on NEST Desktop's front door with
nestml-server's ``message`` and ``lineNumber`` beside it), and the exception handlers
that give it to every error: the API's own, the registry's and the compiler's, FastAPI's 404, 405 and
422, a database that does not answer or a server at capacity (503, saying which, with Retry-After)
and anything unexpected (500, logged with an id the
message quotes)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nestml_registry.compiler.errors import InputError
from nestml_registry.registry.errors import (
    Conflict,
    CorruptArtifact,
    InvalidInput,
    InvalidReference,
    ModuleClash,
    NameOwned,
    NotBuilt,
    NotFound,
    NotReproducible,
    RegistryError,
    ResolveError,
    SchemaOutOfDate,
    TooLarge,
    UnknownModel,
    VersionConflict,
)
from nestml_registry.service.api.database import AtCapacity
from nestml_registry.service.api.schemas import ErrorResponse

logger = logging.getLogger(__name__)

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 411: "length_required",
                 413: "too_large", 415: "unsupported_media_type", 422: "invalid_input", 429: "too_many_requests",
                 500: "internal_error", 503: "unavailable", 507: "disk_full"}
# the first class an error is an instance of gives its status (subclasses before their bases)
_REGISTRY_STATUS: list[tuple[type[RegistryError], int]] = [
    (TooLarge, 413), (InvalidInput, 422), (NameOwned, 403), (NotFound, 404), (Conflict, 409),
    (NotReproducible, 409),
    (InvalidReference, 422), (UnknownModel, 404), (NotBuilt, 404), (VersionConflict, 409), (ModuleClash, 409),
    (ResolveError, 404),
    (CorruptArtifact, 500), (SchemaOutOfDate, 503)]
MAX_VALIDATION_ERRORS = 20
# NEST Desktop's front door (service.nestml_server): NEST Desktop shows nestml-server's error fields,
# {"message", "lineNumber"}, so its errors carry them beside the shared "error" object
NESTML_SERVER_PATH = "/compat/nestml-server"
API_PATHS = ("/v1", "/healthz", "/metrics", "/openapi.json", "/docs", "/static", NESTML_SERVER_PATH)
ErrorPage = Callable[[Request, int, dict[str, Any], "dict[str, str] | None"], Response]


class ApiError(Exception):
    """An HTTP error in the shared shape: raise it anywhere in a request."""

    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else {}
        self.headers = headers or {}

    def __str__(self) -> str:
        return self.message


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, all in the shared shape."""
    return {status: {"model": ErrorResponse, "description": _STATUS_CODES.get(status, "error").replace("_", " ")}
            for status in statuses}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": jsonable_encoder(details or {})}}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None, path: str = "") -> JSONResponse:
    """The error as JSON; on NEST Desktop's front door (``path``) with nestml-server's fields beside it."""
    body = error_body(code, message, details)
    if path.startswith(NESTML_SERVER_PATH):
        line = details.get("line") if isinstance(details, dict) else None
        body.update({"message": message, **({"lineNumber": line} if isinstance(line, int) else {})})
    return JSONResponse(body, status_code=status, headers=headers)


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not the API): its error is a page in the same words."""
    return not request.url.path.startswith(API_PATHS) and "text/html" in request.headers.get("accept", "")


def _answer(request: Request, status: int, code: str, message: str, details: Any = None,
            headers: dict[str, str] | None = None) -> Response:
    """The error in the one shape: JSON, or for a browser asking for a page, the error page that shows
    the same document (the app's ``error_page`` renderer, when it has pages)."""
    render: ErrorPage | None = getattr(request.app.state, "error_page", None) if "app" in request.scope else None
    if render is not None and wants_page(request):
        return render(request, status, error_body(code, message, details)["error"], headers)
    return error_response(status, code, message, details, headers, path=request.url.path)


def registry_status(exc: RegistryError) -> int:
    """The HTTP status of a registry error."""
    for cls, status in _REGISTRY_STATUS:
        if isinstance(exc, cls):
            return status
    return 500


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _answer(request, exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    status = registry_status(exc)
    if status >= 500:
        logger.error("%s %s: %s", request.method, request.url.path, exc.message)
    return _answer(request, status, exc.code, exc.message, exc.details)


async def _input_error(request: Request, exc: Exception) -> Response:
    return _answer(request, 422, "invalid_input", str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404 and wants_page(request):
        message = f"there is no page {request.url.path}: the models are listed at /, the builds at /builds"
    elif status == 404:
        message = (f"no such resource {request.url.path}: the API's routes are under /v1 (GET /v1/models, "
                   "POST /v1/builds, ...); see /docs")
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow")
        message = (f"{request.method} is not allowed on {request.url.path}"
                   + (f": use {allowed}" if allowed else "") + "; see /docs")
    else:
        message = str(exc.detail) if exc.detail else f"HTTP {status}"
    headers = dict(exc.headers) if exc.headers else None
    return _answer(request, status, _STATUS_CODES.get(status, "http_error"), message, {}, headers)


def _where(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("path", "query", "header", "cookie", "body"):
        kind = {"path": "path parameter", "query": "query parameter", "header": "header",
                "cookie": "cookie", "body": "body field"}[parts[0]]
        return f"{kind} {'.'.join(parts[1:])}" if len(parts) > 1 else kind
    return ".".join(parts) or "request"


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"location": [str(p) for p in e.get("loc", ())], "message": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()[:MAX_VALIDATION_ERRORS]]
    summary = "; ".join(f"{_where(e['location'])}: {e['message']}" for e in errors[:3]) or "invalid request"
    return _answer(request, 422, "invalid_request", f"{summary}; see /docs for what this route takes",
                   {"errors": errors})


async def _at_capacity(request: Request, exc: Exception) -> Response:
    """Every database connection stayed busy (or, should it happen, the pool timed out): the server is
    at capacity, not broken; the client comes back after Retry-After."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.at_capacity.inc()
    logger.warning("%s %s: at capacity: %s", request.method, request.url.path, exc)
    return _answer(request, 503, "at_capacity",
                   "the registry is at capacity (every database connection stayed busy): try again in a few "
                   "seconds (the client retries by itself); if it persists, tell the registry's administrator "
                   "(NESTML_REGISTRY_DB_CONNECTIONS, or another API process)", {"dependency": "capacity"},
                   {"Retry-After": "2"})


async def _database_error(request: Request, exc: Exception) -> Response:
    logger.error("%s %s: the database does not answer: %s", request.method, request.url.path, exc)
    if "disk is full" in str(exc) or "No space left" in str(exc):
        return _answer(request, 507, "disk_full", "the registry's disk is full, so its database cannot write: tell the "
                       "registry's administrator (free space where NESTML_REGISTRY_HOME or the database lives); "
                       "reading still works", {"dependency": "disk"}, {"Retry-After": "60"})
    return _answer(request, 503, "database_unavailable",
                   "the registry's database does not answer; try again shortly, and if it persists tell the "
                   "registry's administrator (check that the database server runs and "
                   "NESTML_REGISTRY_DATABASE_URL)", {"dependency": "database"}, {"Retry-After": "5"})


NUL_MESSAGE = ("a value holds a NUL character (0x00), which the registry neither stores nor looks up: remove it "
               "(a %00 in a URL is one)")


async def _data_error(request: Request, exc: Exception) -> Response:
    """A value the database refuses (PostgreSQL: a NUL in text): the request's fault, when it is that."""
    if "NUL" in str(getattr(exc, "orig", exc)):
        return _answer(request, 422, "invalid_input", NUL_MESSAGE, {})
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    error_id = uuid.uuid4().hex[:12]
    logger.error("%s %s failed (error id %s)", request.method, request.url.path, error_id, exc_info=exc)
    return _answer(request, 500, "internal_error",
                   f"the server failed on this request (error id {error_id}); it is logged: tell the "
                   "registry's administrator, quoting the id", {"error_id": error_id})


class CatchUnexpected:
    """ASGI middleware: an exception no handler took becomes the 500 answer here, before the server's
    outermost error middleware, which would answer the same but then re-raise and make the server drop
    the (keep-alive) connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:  # too late for an error answer: let the server end the connection
                raise
            response = await _unexpected(Request(scope), exc)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error the app answers take the shared shape."""
    app.add_middleware(CatchUnexpected)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RegistryError, _registry_error)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for db_error in (OperationalError, InterfaceError):
        app.add_exception_handler(db_error, _database_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(AtCapacity, _at_capacity)
    app.add_exception_handler(PoolTimeoutError, _at_capacity)
    app.add_exception_handler(Exception, _unexpected)
