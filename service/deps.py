"""Typed FastAPI dependencies: settings, database sessions, the artifact store, metrics and who asks.

What they hand out is built by ``create_app``'s lifespan and kept on ``app.state``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from registry.store import ArtifactStore
from service.artifacts import VerifiedArtifacts
from service.auth import Principal, check_admin, check_publisher, check_reader, principal_from_header
from service.metrics import ApiMetrics
from service.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    """Sessions for writing: ``with sessions.begin() as s: ...`` (one short transaction)."""
    return request.app.state.sessions


def get_session(request: Request) -> Iterator[Session]:
    """A session for reading (on SQLite it never waits for writers), closed after the request."""
    with request.app.state.read_sessions() as session:
        yield session


def get_store(request: Request) -> ArtifactStore:
    return request.app.state.store


def get_artifacts(request: Request) -> VerifiedArtifacts:
    return request.app.state.artifacts


def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionmakerDep = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]
SessionDep = Annotated[Session, Depends(get_session)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
ArtifactsDep = Annotated[VerifiedArtifacts, Depends(get_artifacts)]


# declares the bearer scheme in the OpenAPI document; the header itself is checked by get_principal
_bearer = HTTPBearer(auto_error=False, description="A registry token (`nestml-registry token create`)")


def get_principal(request: Request, session: SessionDep,
                  _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal | None:
    """The token's owner; None for a request without a token (a bad token is refused with 401)."""
    return principal_from_header(session, request.headers.get("authorization"))


PrincipalDep = Annotated[Principal | None, Depends(get_principal)]


def require_reader(principal: PrincipalDep, settings: SettingsDep) -> Principal | None:
    return check_reader(principal, settings)


def require_publisher(principal: PrincipalDep, settings: SettingsDep, request: Request) -> Principal | None:
    return check_publisher(principal, settings, request)


def require_admin(principal: PrincipalDep) -> Principal:
    return check_admin(principal)


ReaderDep = Annotated[Principal | None, Depends(require_reader)]
PublisherDep = Annotated[Principal | None, Depends(require_publisher)]
AdminDep = Annotated[Principal, Depends(require_admin)]
