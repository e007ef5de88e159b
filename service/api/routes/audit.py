"""``GET /v1/audit``: who published, rebuilt, created or revoked a token, or moved a name, and when
(admins only; the log is append-only: nothing in the registry updates or deletes its rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from nestml_registry.registry.tables import AuditEvent
from nestml_registry.service.api import schemas
from nestml_registry.service.api.deps import AdminDep, DatabaseDep
from nestml_registry.service.api.documents import audit_event_document
from nestml_registry.service.api.errors import error_responses

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/audit", response_model=list[schemas.AuditEvent], summary="The audit log, newest first (admins)",
            responses=error_responses(401, 403, 422), openapi_extra={"x-access": "admin"})
async def list_audit(db: DatabaseDep, _admin: AdminDep,
                     limit: Annotated[int, Query(ge=1, le=10_000, description="at most this many events")] = 100,
                     action: Annotated[str | None, Query(max_length=64, description="only this action")] = None,
                     since: Annotated[datetime | None, Query(description="only events at or after this time")] = None,
                     ) -> list[schemas.AuditEvent]:
    return await db.read(_events, limit, action, since)


def _events(session: Session, limit: int, action: str | None, since: datetime | None) -> list[schemas.AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    return [audit_event_document(e) for e in session.scalars(query)]
