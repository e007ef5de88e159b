"""Typed FastAPI dependencies: settings, the database, the artifact store, metrics and who asks.

What they hand out is built by ``create_app``'s lifespan and kept on ``app.state``. Every one is
``async``: none does blocking work, and none takes a thread of the server's thread pool. Routes reach
the database through :class:`nestml_registry.service.api.database.Database` (``await db.read(fn, ...)``), never with a
session held across the request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nestml_registry.registry.store import ArtifactStore
from nestml_registry.service.api.artifacts import VerifiedArtifacts
from nestml_registry.service.api.auth import (
    Principal,
    check_admin,
    check_publisher,
    check_reader,
    check_worker,
    lasting,
    principal_from_header,
    principal_key,
)
from nestml_registry.service.api.database import Database
from nestml_registry.service.api.metrics import ApiMetrics
from nestml_registry.service.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_database(request: Request) -> Database:
    return request.app.state.database


async def get_store(request: Request) -> ArtifactStore:
    return request.app.state.store


async def get_artifacts(request: Request) -> VerifiedArtifacts:
    return request.app.state.artifacts


async def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
ArtifactsDep = Annotated[VerifiedArtifacts, Depends(get_artifacts)]


# declares the bearer scheme in the OpenAPI document; the header itself is checked by get_principal
_bearer = HTTPBearer(auto_error=False, description="A registry token (`nestml-registry token create`)")


Declared = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_principal(request: Request, db: DatabaseDep, _declared: Declared) -> Principal | None:
    """The token's owner; None for a request without a token (a bad token is refused with 401). An API token's
    owner is read once per registry generation (:mod:`nestml_registry.service.api.read_cache`)."""
    header = request.headers.get("authorization")
    if header is None or not header.strip():
        return None

    async def read() -> Principal | None:
        return await db.read(principal_from_header, header)

    return await request.app.state.reads.get(db, principal_key(header), read, keep=lasting)


PrincipalDep = Annotated[Principal | None, Depends(get_principal)]


async def require_reader(principal: PrincipalDep, settings: SettingsDep) -> Principal | None:
    return check_reader(principal, settings)


async def require_publisher(principal: PrincipalDep, settings: SettingsDep, request: Request) -> Principal | None:
    return check_publisher(principal, settings, request)


async def require_admin(principal: PrincipalDep) -> Principal:
    return check_admin(principal)


async def require_worker(principal: PrincipalDep) -> Principal:
    return check_worker(principal)


ReaderDep = Annotated[Principal | None, Depends(require_reader)]
PublisherDep = Annotated[Principal | None, Depends(require_publisher)]
AdminDep = Annotated[Principal, Depends(require_admin)]
WorkerDep = Annotated[Principal, Depends(require_worker)]
