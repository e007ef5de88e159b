"""The HTTP API: ``create_app(settings)``.

    app = create_app(Settings.from_env())
    uvicorn.run(app, host=settings.host, port=settings.port)

Nothing connects to the database when the app is made: the lifespan handler creates the engine,
the session factories and the artifact store when the server starts, and disposes of the engine
when it stops. The API never compiles: it queues builds for the compile workers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from nestml_registry.about import release
from nestml_registry.registry.db import require_current
from nestml_registry.registry.store import ArtifactStore
from nestml_registry.service.api.api_docs import install_docs
from nestml_registry.service.api.artifacts import VerifiedArtifacts
from nestml_registry.service.api.cross_origin import FrontDoorCors
from nestml_registry.service.api.database import open_database
from nestml_registry.service.api.errors import install_error_handlers
from nestml_registry.service.api.hot_reads import HotReads
from nestml_registry.service.api.metrics import ApiMetrics
from nestml_registry.service.api.parsing import NestmlParser
from nestml_registry.service.api.read_cache import ReadCache
from nestml_registry.service.api.request_origin import check_request_origin
from nestml_registry.service.api.routes import (
    audit,
    builds,
    characterisations,
    health,
    models,
    modules,
    nestml_server,
    resolve,
    tokens,
    toolchains,
    worker_api,
)
from nestml_registry.service.api.sweeper import LeaseSweeper
from nestml_registry.service.api.web.mount import install_pages
from nestml_registry.service.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """The API for ``settings`` (database, store, limits, authentication)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_check_schema, settings.database_url)
        database = open_database(settings.database_url, settings.db_connections, settings.db_wait_seconds)
        app.state.database = database
        app.state.store = ArtifactStore(settings.store_dir)
        logger.info("API serving %s with the store %s (%d database connections; anonymous publishing %s, "
                    "reading %s)", database.engine.url.render_as_string(hide_password=True), settings.store_dir,
                    settings.db_connections, settings.anonymous_publish_rule,
                    "needs a token" if settings.read_requires_token else "open")
        logger.info("NEST Desktop's front door at /compat/nestml-server: builds for %s, modules to %s",
                    settings.compat_toolchain or "the newest live toolchain",
                    settings.compat_module_dir or "nowhere (NESTML_REGISTRY_COMPAT_MODULE_DIR)")
        # builds whose worker died go back to the queue even when no worker is alive to sweep them
        sweeper = LeaseSweeper(database, app.state.metrics, every=min(20.0, max(1.0, settings.lease_seconds / 3)))
        sweeper.start()
        app.state.sweeper = sweeper
        try:
            yield
        finally:
            sweeper.stop()
            await run_in_threadpool(app.state.parser.close)
            await run_in_threadpool(app.state.reads.close)
            database.close()

    app = FastAPI(title="nestml-registry", version=release(), lifespan=lifespan,
                  description="Compile NESTML models into NEST extension modules, cached by content and toolchain, "
                              "and resolve `nestml:` model references for BMTK PointNet simulations. Every error "
                              'answers `{"error": {"code", "message", "details"}}`.',
                  openapi_url="/openapi.json", docs_url=None, redoc_url=None,
                  # every state-changing request, API and pages alike: to the registry's names, from its own pages
                  dependencies=[Depends(check_request_origin)])
    app.state.settings = settings
    app.state.metrics = ApiMetrics()
    app.state.artifacts = VerifiedArtifacts(settings.artifact_cache_bytes)
    app.state.health = health.RecentHealth()
    app.state.reads = ReadCache()
    app.state.parser = NestmlParser(settings)  # NESTML's parser for NEST Desktop: a sandboxed child, when asked
    app.add_middleware(HotReads)  # (inside the error handling below, outside the routing)
    install_error_handlers(app)
    app.add_middleware(FrontDoorCors, settings=settings)
    for router in (builds.router, models.router, characterisations.router, modules.router, resolve.router,
                   toolchains.router, audit.router, tokens.router, health.router, worker_api.router,
                   nestml_server.router):
        app.include_router(router)
    install_pages(app)
    install_docs(app, "nestml-registry")
    _document_errors_as_json(app, settings)
    return app


def _check_schema(url: str) -> None:
    """Refuse to start on a database at another schema revision (SchemaOutOfDate says to run
    ``nestml-registry db upgrade``); a database that does not answer yet only gets a warning: the
    server starts, and /healthz reports it until it answers."""
    try:
        require_current(url)
    except SQLAlchemyError as exc:
        logger.warning("the database does not answer yet (%s); /healthz reports 503 until it does", exc)


def _security(operation: dict[str, Any], settings: Settings) -> None:
    """Declare the authentication an operation enforces (``x-access``: read, publish or admin): a token
    that may be left out (``{}``) where reading is open, or publishing is anonymous from this machine."""
    if "security" not in operation:
        return
    access = operation.setdefault("x-access", "read")
    bearer: dict[str, list[str]] = {"HTTPBearer": []}
    optional = (access == "read" and not settings.read_requires_token) or \
        (access == "publish" and settings.allow_anonymous_publish)
    operation["security"] = [{}, bearer] if optional else [bearer]


def _document_errors_as_json(app: FastAPI, settings: Settings) -> None:
    """Every error is JSON, also on routes whose success is text or bytes: say so in the OpenAPI document
    (FastAPI files an error model under the route's own media type). And each operation declares the
    authentication it enforces."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    _security(operation, settings)
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content") or {}
                        schema = next((c["schema"] for c in content.values() if c.get("schema")), None)
                        if str(status).isdigit() and int(status) >= 400 and schema is not None:
                            response["content"] = {"application/json": {"schema": schema}}
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory service.app:app_from_env``: the app for the environment's settings."""
    return create_app(Settings.from_env())
