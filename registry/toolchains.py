"""The toolchains compile workers serve. Each worker registers its toolchain when it starts; the API
queues a build only for a toolchain seen here (by default the one seen most recently).
Functions take a Session and do not commit."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nestml_registry.registry.db import insert_ignoring_conflicts
from nestml_registry.registry.errors import InvalidInput, NotFound
from nestml_registry.registry.records import record_event
from nestml_registry.registry.tables import TOOLCHAIN_LEN, KnownToolchain, Token, utcnow

TOOLCHAIN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def check_id(toolchain_id: object) -> str:
    """``toolchain_id`` if it looks like a ``nestml_registry.compiler.toolchain.Toolchain.id``."""
    if not isinstance(toolchain_id, str) or not TOOLCHAIN_ID_RE.fullmatch(toolchain_id) \
            or len(toolchain_id) > TOOLCHAIN_LEN:
        raise InvalidInput(f"invalid toolchain id {toolchain_id!r}: give a toolchain id such as "
                           "nest3.10.0-linux-x86_64-gcc12.2.0-abi0-572123386539 (letters, digits, '.', '_', '+', '-', "
                           f"at most {TOOLCHAIN_LEN} characters)")
    return toolchain_id


def register(session: Session, details: dict[str, Any], *, approved: bool = True,
             seen_by: str | None = None) -> KnownToolchain:
    """Record that a worker serves the toolchain ``details`` (``Toolchain.to_dict()``, which has ``id``):
    inserted when new (``approved`` or waiting for an admin, first seen by ``seen_by``), else its details
    replaced and ``last_seen`` bumped (its approval unchanged)."""
    if not isinstance(details, dict):
        raise InvalidInput("a toolchain is registered with its details (compiler.toolchain.Toolchain.to_dict())")
    toolchain_id = check_id(details.get("id"))
    now = utcnow()
    if session.get(KnownToolchain, toolchain_id) is None:  # a new toolchain is an event: audited
        record_event(session, seen_by or "worker", "toolchain_register", toolchain_id, {"approved": approved})
    session.execute(insert_ignoring_conflicts(session, KnownToolchain, [{
        "id": toolchain_id, "details": details, "first_seen": now, "last_seen": now, "approved": approved,
        "first_seen_by": seen_by}], ["id"]))
    session.execute(update(KnownToolchain).where(KnownToolchain.id == toolchain_id)
                    .values(details=details, last_seen=now).execution_options(synchronize_session=False))
    return session.execute(select(KnownToolchain).where(KnownToolchain.id == toolchain_id)
                           .execution_options(populate_existing=True)).scalar_one()


def known(session: Session) -> list[KnownToolchain]:
    """Every registered toolchain, the most recently seen first."""
    return list(session.scalars(select(KnownToolchain)
                                .order_by(KnownToolchain.last_seen.desc(), KnownToolchain.id)))


def approved(session: Session) -> list[KnownToolchain]:
    """The toolchains builds may be queued for (approved), the most recently seen first."""
    return [t for t in known(session) if t.approved]


def latest(session: Session) -> KnownToolchain | None:
    """The approved toolchain seen most recently, or None when no worker has registered one yet."""
    return session.scalars(select(KnownToolchain).where(KnownToolchain.approved.is_(True))
                           .order_by(KnownToolchain.last_seen.desc(), KnownToolchain.id).limit(1)).first()


def approve(session: Session, toolchain_id: str, actor: str, tokens: list[int] | None = None) -> KnownToolchain:
    """An admin approves ``toolchain_id`` (builds may be queued for it) and lets the worker ``tokens`` serve it."""
    row = session.get(KnownToolchain, check_id(toolchain_id))
    if row is None:
        names = [t.id for t in known(session)]
        raise NotFound(f"no toolchain {toolchain_id!r} has registered: start a worker of it first (its id is in the "
                       f"worker's first line), or use one of: {', '.join(names) or 'none yet'}")
    row.approved = True
    for token_id in tokens or []:
        token = session.get(Token, token_id)
        if token is None or token.role != "worker" or token.revoked_at is not None:
            raise InvalidInput(f"token {token_id} is no live worker token: list them with `nestml-registry token list`")
        token.toolchains = sorted(set(token.toolchains or []) | {row.id})
    record_event(session, actor, "toolchain_approve", row.id, {"tokens": list(tokens or [])})
    return row
