"""Metadata a version's owner gives (``nestml-registry describe``, ``POST /v1/models/NAME@V/metadata``):
authors, licence, references, DOIs and keywords beside what the model's comment says
(:mod:`nestml_registry.registry.metadata`). It replaces what was given before, is shown first, and is
searched: the version's search words are made again. Only the name's owner or an admin may give it; it
changes nothing of the model or its modules. Functions take a Session and do not commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nestml_registry.registry import metadata
from nestml_registry.registry.errors import InvalidInput
from nestml_registry.registry.records import record_event
from nestml_registry.registry.tables import ModelVersion, Source
from nestml_registry.registry.yanking import owned_version


def describe(session: Session, reference: str, given: dict[str, Any], actor: str, admin: bool) -> ModelVersion:
    """Set the metadata of ``NAME@VERSION`` to ``given`` (checked; an empty one clears it)."""
    try:
        checked = metadata.check_given(given)
    except ValueError as exc:
        raise InvalidInput(f"metadata of {reference}: {exc}", {"reference": reference}) from exc
    row = owned_version(session, reference, actor, admin, "describe")
    row.given_metadata = checked or None
    text = session.scalar(select(Source.text).where(Source.sha256 == row.source_sha256)) if row.source_sha256 else None
    row.keywords = metadata.version_words([row.name, row.nestml_name], row.description or "",
                                          [*(row.parameters or []), *(row.state or [])], text or "",
                                          row.nestml_name, checked)
    record_event(session, actor, "describe", f"{row.name}@{row.version}", {"metadata": checked})
    return row
