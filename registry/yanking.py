"""Yanking: a published version withdrawn by its name's owner or an admin, with a reason. As on PyPI, a
yanked version is never chosen for an unpinned reference (``NAME`` resolves to the newest version that is
not yanked), but ``NAME@VERSION`` and lock files still resolve it, so that a pinned job keeps running and
can be reproduced. Nothing is deleted; ``unyank`` undoes it. Functions take a Session and do not commit."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from nestml_registry.registry.errors import InvalidInput, UnknownModel
from nestml_registry.registry.owners import require_owner
from nestml_registry.registry.records import record_event
from nestml_registry.registry.resolving import find_name, parse_reference
from nestml_registry.registry.tables import ModelVersion, utcnow

MAX_REASON = 500


def owned_version(session: Session, reference: str, actor: str, admin: bool, what: str) -> ModelVersion:
    """The version ``NAME@VERSION``, after checking that ``actor`` owns its name (or is an admin)."""
    ref_name, wanted = parse_reference(reference)
    if wanted is None:
        raise InvalidInput(f"{what} takes one version: write {ref_name}@VERSION (e.g. {ref_name}@1)",
                           {"reference": reference})
    name = find_name(session, ref_name)
    version_id = _id_of(session, name, wanted) if name is not None else None
    row = session.get(ModelVersion, version_id) if version_id is not None else None
    if row is None or name is None:
        raise UnknownModel(f"no model version {ref_name}@{wanted}: see 'nestml-registry show {ref_name}' for its "
                           "versions", {"reference": reference})
    require_owner(session, name, actor, admin, what)
    return row


def _id_of(session: Session, name: str, version: int) -> int | None:
    return session.scalar(select(ModelVersion.id).where(ModelVersion.name == name, ModelVersion.version == version))


def yank(session: Session, reference: str, reason: str, actor: str, admin: bool) -> ModelVersion:
    """Withdraw ``NAME@VERSION`` with ``reason``; yanking it again replaces the reason."""
    reason = " ".join((reason or "").split())
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInput(f"give the reason for yanking (1 to {MAX_REASON} characters), e.g. --reason "
                           "'wrong reset value; use version 3'", {"reference": reference})
    row = owned_version(session, reference, actor, admin, "yank")
    row.yanked_reason, row.yanked_by, row.yanked_at = reason, actor, utcnow()
    record_event(session, actor, "yank", f"{row.name}@{row.version}", {"reason": reason})
    return row


def unyank(session: Session, reference: str, actor: str, admin: bool) -> ModelVersion:
    row = owned_version(session, reference, actor, admin, "unyank")
    was = row.yanked_reason
    row.yanked_reason = row.yanked_by = row.yanked_at = None
    record_event(session, actor, "unyank", f"{row.name}@{row.version}", {"was": was})
    return row
