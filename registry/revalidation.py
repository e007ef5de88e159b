"""Re-validation: when a new toolchain appears (a NEST or NESTML upgrade, the MPI build of NEST), the library
(the newest version of every model that reimplements a NEST built-in, :mod:`nestml_registry.compiler.
counterparts`) is built for it again, from the sources and options of the build that published each, so
that the workers of that toolchain characterise and check each version there too; a result that changes
against the older toolchain is then flagged (:func:`nestml_registry.registry.verdicts.
changed_problems`).

Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import logging

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from nestml_registry.compiler.counterparts import counterpart_of
from nestml_registry.registry import rebuilds
from nestml_registry.registry.errors import RegistryError
from nestml_registry.registry.submitting import submit
from nestml_registry.registry.tables import KnownToolchain, ModelModule, ModelVersion

logger = logging.getLogger(__name__)


def fresh(session: Session, toolchain_id: str | None) -> bool:
    """Whether ``toolchain_id`` is not known yet, or known and not approved (what registering or
    approving it makes new to the queue)."""
    row = session.get(KnownToolchain, toolchain_id) if isinstance(toolchain_id, str) else None
    return row is None or not row.approved


def library(session: Session) -> list[ModelVersion]:
    """The newest version of every model that has a NEST counterpart, and a module somewhere."""
    newer = aliased(ModelVersion)
    rows = session.scalars(select(ModelVersion).where(
        ~exists().where(newer.name == ModelVersion.name, newer.version > ModelVersion.version),
        exists().where(ModelModule.model_version_id == ModelVersion.id),
        ModelVersion.yanked_at.is_(None)).order_by(ModelVersion.name))
    return [v for v in rows if counterpart_of(v.nestml_name, v.kind) is not None]


def queue_library(session: Session, toolchain: str, *, max_attempts: int = 3, characterise: bool = True) -> int:
    """Queue, for ``toolchain``, the build of every library version that has no module on it (one build
    per publishing build: a pair's models share theirs). Returns how many builds were queued."""
    queued: set[int] = set()
    for version in library(session):
        if session.get(ModelModule, (version.id, toolchain)) is not None:
            continue
        try:
            _, original = rebuilds.publishing_build(session, f"{version.name}@{version.version}")
        except RegistryError as exc:  # its build is gone (a restore without builds): nothing to build from
            logger.warning("re-validation of %s@%d on %s skipped: %s", version.name, version.version, toolchain, exc)
            continue
        build, created = submit(session, rebuilds.request_of(original), toolchain,
                                submitted_by=original.submitted_by, max_attempts=max_attempts,
                                characterise=characterise)
        if created:
            queued.add(build.id)
    if queued:
        logger.info("re-validation: %d build(s) of the library queued for the new toolchain %s", len(queued),
                    toolchain)
    return len(queued)
