"""Recent builds, for the API's and the pages' lists: newest first, by status and submitter.
Functions take a Session and do not commit."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from nestml_registry.registry.errors import InvalidInput
from nestml_registry.registry.owners import LOCAL, principal_name
from nestml_registry.registry.tables import Build, BuildStatus, Token

MAX_LIMIT = 500


@dataclass(frozen=True)
class BuildRow:
    build: Build
    submitted_by: str


def recent_builds(session: Session, status: str | None = None, submitter: str | None = None,
                  limit: int = 50) -> list[BuildRow]:
    """The newest ``limit`` builds, of one ``status`` and one ``submitter`` (a principal's name,
    ``local`` for anonymous publishing) when given."""
    query = select(Build)
    if status is not None:
        try:
            query = query.where(Build.status == BuildStatus(status))
        except ValueError as exc:
            raise InvalidInput(f"no build status {status!r}: use one of "
                               f"{', '.join(s.value for s in BuildStatus)}") from exc
    if submitter is not None:
        by_name = Build.submitted_by.in_(select(Token.id).where(Token.name == submitter))
        # 'local': anonymous builds and those of this machine's local token (service.local_token)
        query = query.where(or_(Build.submitted_by.is_(None), by_name) if submitter == LOCAL else by_name)
    builds = list(session.scalars(query.order_by(Build.id.desc()).limit(max(1, min(limit, MAX_LIMIT)))))
    names: dict[int | None, str] = {}
    for b in builds:
        if b.submitted_by not in names:
            names[b.submitted_by] = principal_name(session, b.submitted_by)
    return [BuildRow(b, names[b.submitted_by]) for b in builds]
