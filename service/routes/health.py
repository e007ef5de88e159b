"""``GET /healthz`` (liveness and database reachability) and ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from registry import toolchains
from service import schemas
from service.deps import MetricsDep, ReaderDep, SessionDep, SettingsDep
from service.errors import ApiError, error_responses
from service.metrics import CONTENT_TYPE, sandboxed

logger = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=schemas.Health, summary="Liveness and database reachability",
            responses=error_responses(503))
def healthz(session: SessionDep, settings: SettingsDep) -> schemas.Health:
    try:
        session.execute(text("SELECT 1")).scalar_one()
        unsandboxed = [t.id for t in toolchains.known(session) if not sandboxed(t.details)]
    except SQLAlchemyError as exc:
        logger.error("health check: the database does not answer: %s", exc)
        raise ApiError(503, "database_unavailable", "the registry's database does not answer: check that the database "
                       "server runs and NESTML_REGISTRY_DATABASE_URL", {"database": "unavailable"}) from None
    off = bool(unsandboxed) or not settings.sandbox
    return schemas.Health(status="ok", database="ok", sandbox="off" if off else "on",
                          unsandboxed_toolchains=unsandboxed)


@router.get("/metrics", summary="Prometheus metrics (text format)", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}},
                       **error_responses(401)})
def metrics(session: SessionDep, api_metrics: MetricsDep, _reader: ReaderDep) -> Response:
    return Response(api_metrics.render(session), media_type=CONTENT_TYPE)
