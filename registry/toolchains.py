"""The toolchains compile workers serve. Each worker registers its toolchain when it starts; the API
queues a build only for a toolchain seen here (by default the one seen most recently).
Functions take a Session and do not commit."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nestml_registry.registry.db import insert_ignoring_conflicts
from nestml_registry.registry.errors import InvalidInput
from nestml_registry.registry.tables import TOOLCHAIN_LEN, KnownToolchain, utcnow

TOOLCHAIN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def check_id(toolchain_id: object) -> str:
    """``toolchain_id`` if it looks like a ``nestml_registry.compiler.toolchain.Toolchain.id``."""
    if not isinstance(toolchain_id, str) or not TOOLCHAIN_ID_RE.fullmatch(toolchain_id) \
            or len(toolchain_id) > TOOLCHAIN_LEN:
        raise InvalidInput(f"invalid toolchain id {toolchain_id!r}: give a toolchain id such as "
                           "nest3.10.0-linux-x86_64-gcc12.2.0-abi0-572123386539 (letters, digits, '.', '_', '+', '-', "
                           f"at most {TOOLCHAIN_LEN} characters)")
    return toolchain_id


def register(session: Session, details: dict[str, Any]) -> KnownToolchain:
    """Record that a worker serves the toolchain ``details`` (``Toolchain.to_dict()``, which has ``id``):
    inserted when new, else its details replaced and ``last_seen`` bumped."""
    if not isinstance(details, dict):
        raise InvalidInput("a toolchain is registered with its details (compiler.toolchain.Toolchain.to_dict())")
    toolchain_id = check_id(details.get("id"))
    now = utcnow()
    session.execute(insert_ignoring_conflicts(session, KnownToolchain, [{
        "id": toolchain_id, "details": details, "first_seen": now, "last_seen": now}], ["id"]))
    session.execute(update(KnownToolchain).where(KnownToolchain.id == toolchain_id)
                    .values(details=details, last_seen=now).execution_options(synchronize_session=False))
    return session.execute(select(KnownToolchain).where(KnownToolchain.id == toolchain_id)
                           .execution_options(populate_existing=True)).scalar_one()


def known(session: Session) -> list[KnownToolchain]:
    """Every registered toolchain, the most recently seen first."""
    return list(session.scalars(select(KnownToolchain)
                                .order_by(KnownToolchain.last_seen.desc(), KnownToolchain.id)))


def latest(session: Session) -> KnownToolchain | None:
    """The toolchain seen most recently, or None when no worker has registered yet."""
    return session.scalars(select(KnownToolchain)
                           .order_by(KnownToolchain.last_seen.desc(), KnownToolchain.id).limit(1)).first()
