"""Rows the other registry modules share: stored sources (by sha256), module artifacts, and the audit log.
Every function takes a Session and none commits: the caller owns the transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nestml_registry.compiler.sources import Source as SourceText
from nestml_registry.registry.db import insert_ignoring_conflicts
from nestml_registry.registry.errors import InvalidInput, NotFound
from nestml_registry.registry.tables import (
    AuditEvent,
    Module,
    RegistryState,
    Source,
)


def get_or_create_sources(session: Session, sources: Iterable[tuple[str, str, str]]) -> list[Source]:
    """The rows of ``(name, sha256, text)`` sources, in the given order, inserting those not stored yet.
    The sha256 must be that of the UTF-8 text. Safe when other transactions insert the same sources."""
    given = list(sources)
    for name, sha, text in given:
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != sha:
            raise InvalidInput(f"source {name!r}: sha256 {sha} is not the digest of its text; "
                               "hash the normalised UTF-8 text (compiler.sources.Source.sha256)")
    new = {sha: {"sha256": sha, "name": name, "text": text} for name, sha, text in given}
    if new:  # sorted: concurrent transactions take the unique-index locks in one order
        session.execute(insert_ignoring_conflicts(session, Source, [new[k] for k in sorted(new)], ["sha256"]))
    rows = {s.sha256: s for s in session.scalars(select(Source).where(Source.sha256.in_(list(new))))}
    return [rows[sha] for _, sha, _ in given]


def get_or_create_module(session: Session, sha256: str, name: str, size: int, toolchain: str,
                         location: str) -> Module:
    """The module row for an artifact, inserted if new (safe under concurrency)."""
    session.execute(insert_ignoring_conflicts(session, Module, [{
        "sha256": sha256, "name": name, "size": size, "toolchain": toolchain, "location": location,
        "registers": []}], ["sha256"]))
    return session.execute(select(Module).where(Module.sha256 == sha256)
                           .execution_options(populate_existing=True)).scalar_one()


def get_module(session: Session, sha256: str) -> Module:
    module = session.scalars(select(Module).where(Module.sha256 == sha256)).one_or_none()
    if module is None:
        raise NotFound(f"no module with sha256 {sha256}: list the models (GET /v1/models) to find one")
    return module


def declared_models(source: Source) -> set[str]:
    """The model names a stored source declares (the compiler's rule: ``model <name>:`` lines)."""
    return {m.name for m in SourceText(source.name, source.text).models()}


def record_event(session: Session, actor: str | int | None, action: str, subject: str | None,
                 details: dict[str, Any] | None = None) -> AuditEvent:
    """Add an audit event to the session's transaction, and count it in the registry's generation (which
    this transaction then holds until it ends: audited changes commit one after the other)."""
    event = AuditEvent(actor=None if actor is None else str(actor), action=action, subject=subject,
                       details=details or {})
    session.add(event)
    session.execute(update(RegistryState).where(RegistryState.id == 1)
                    .values(generation=RegistryState.generation + 1))
    return event


def generation(session: Session) -> int | None:
    """The registry's generation (None in a database without its row: then nothing may be kept by it)."""
    return session.scalar(select(RegistryState.generation).where(RegistryState.id == 1))
