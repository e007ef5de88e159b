"""Queue a build request for a toolchain: what ``POST /v1/builds`` and the tests call."""

from __future__ import annotations

from sqlalchemy.orm import Session

from nestml_registry.compiler.key import build_key
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.registry import queue
from nestml_registry.registry.tables import Build


def submit(session: Session, request: BuildRequest, toolchain_id: str, *, submitted_by: int | None = None,
           max_attempts: int = 3, retry: bool = False) -> tuple[Build, bool]:
    """The build of ``request`` for ``toolchain_id``: queued if new, else the existing one
    (``retry=True`` queues a failed one again). Returns ``(build, created)``; the caller commits."""
    key = build_key(request, toolchain_id)
    sources = [(s.name, s.sha256, s.text) for s in request.sources]
    return queue.enqueue(session, key, toolchain_id, request.to_dict(), sources, submitted_by, max_attempts,
                         retry=retry)
