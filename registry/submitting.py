"""Queue a build request for a toolchain (the checks a submission gets before are the API's:
``service.api.submit.submit_checked``): what the API, the library's re-validation and the tests call.

Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from nestml_registry.compiler.key import build_key, code_key
from nestml_registry.compiler.request import BuildRequest
from nestml_registry.registry import queue, same_code
from nestml_registry.registry.tables import Build, BuildStatus


def submit(session: Session, request: BuildRequest, toolchain_id: str, *, submitted_by: int | None = None,
           max_attempts: int = 3, retry: bool = False, allow_breaking: bool = False,
           characterise: bool = False) -> tuple[Build, bool]:
    """The build of ``request`` for ``toolchain_id``: queued if new, else the existing one
    (``retry=True`` queues a failed one again). A new one whose code (comments out) a succeeded build has
    is finished at once with that build's module (:mod:`nestml_registry.registry.same_code`). Returns
    ``(build, created)``; the caller commits."""
    key = build_key(request, toolchain_id)
    sources = [(s.name, s.sha256, s.text) for s in request.sources]
    build, created = queue.enqueue(session, key, toolchain_id, request.to_dict(), sources, submitted_by, max_attempts,
                                   retry=retry, code_key=code_key(request, toolchain_id),
                                   allow_breaking=allow_breaking)
    if created and build.status == BuildStatus.QUEUED and build.attempts == 0:
        same_code.reuse(session, build, characterise=characterise)
    return build, created
