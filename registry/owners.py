"""Who owns a model name: the principal (a token's name) that first published it, or ``local`` for
names published anonymously (allowed only from this machine, see service.auth). Only the owner and
admins publish new versions; an admin transfers a name with :func:`set_owner`.
Functions take a Session and do not commit."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from nestml_registry.compiler.request import PAIR_MARK
from nestml_registry.registry.errors import InvalidInput, NameOwned, NotFound
from nestml_registry.registry.records import record_event
from nestml_registry.registry.tables import LOCAL_OWNER, NAME_LEN, Build, ModelName, Token

LOCAL = LOCAL_OWNER


def principal_name(session: Session, token_id: int | None) -> str:
    """The principal behind a token id (a build's ``submitted_by``); ``local`` for none."""
    if token_id is None:
        return LOCAL
    token = session.get(Token, token_id)
    return token.name if token is not None else f"token {token_id}"


def submitter_of(session: Session, build: Build) -> tuple[str, bool]:
    """``(name, is_admin)`` of whoever submitted ``build``."""
    token = session.get(Token, build.submitted_by) if build.submitted_by is not None else None
    if token is None:
        return principal_name(session, build.submitted_by), False
    return token.name, token.role == "admin"


def set_owner(session: Session, name: str, owner: str, actor: str) -> tuple[str, str]:
    """Give the model name ``name`` to ``owner``; ``(previous owner, new owner)``."""
    owner = owner.strip()
    if not owner or len(owner) > NAME_LEN or not owner.isprintable():
        raise InvalidInput(f"invalid owner {owner!r}: give the name of a principal (a token's name, or "
                           f"'{LOCAL}' for anonymous publishing), at most {NAME_LEN} characters")
    row = session.execute(select(ModelName).where(ModelName.name == name).with_for_update()).scalar_one_or_none()
    if row is None:
        known = session.scalars(select(ModelName.name).order_by(ModelName.name)).all()
        raise NotFound(f"no model name {name!r}: give a name as NEST registers it (e.g. my_neuron_nestml); "
                       f"names: {', '.join(known[:20]) or 'none yet'}")
    previous = row.owner or LOCAL
    row.owner = owner
    record_event(session, actor, "owner", name, {"from": previous, "to": owner})
    return previous, owner


def family_of(name: str, suffix: str | None = None) -> str:
    """The NESTML model a NEST model name was generated from: ``X`` for ``X``, ``X_nestml`` (with the
    suffix ``_nestml``) and the pair names ``X_nestml__with_S_nestml``."""
    base = name.split(PAIR_MARK)[0]
    return base.removesuffix(suffix) if suffix else base


def require_families(session: Session, families: set[str], actor: str, admin: bool) -> None:
    """Raise :class:`NameOwned` (before any work is done) if a model name of one of ``families`` (NESTML
    model names) belongs to someone other than ``actor`` (an admin may publish any)."""
    if admin or not families:
        return
    rows = session.execute(select(ModelName.name, ModelName.owner, ModelName.family)
                           .where(ModelName.family.in_(sorted(families)))
                           .order_by(ModelName.family, ModelName.name)).all()
    for name, owner, family in rows:
        if (owner or LOCAL_OWNER) != actor:
            raise NameOwned(
                f"the model {family!r} is published as {name!r}, which belongs to {owner or LOCAL_OWNER!r}, so "
                f"{actor!r} cannot publish it under any suffix: rename the model in its source (the 'model NAME:' "
                f"line), or ask {owner or LOCAL_OWNER!r} or an admin to transfer the name "
                f"(nestml-registry owner set {name} {actor})",
                {"model": name, "family": family, "owner": owner or LOCAL_OWNER, "actor": actor})


def require_owner(session: Session, name: str, actor: str, admin: bool, what: str) -> None:
    """Raise :class:`NameOwned` unless ``actor`` owns the model name ``name`` or is an admin."""
    name_row = session.get(ModelName, name)
    owner = (name_row.owner if name_row is not None else None) or LOCAL_OWNER
    if owner != actor and not admin:
        raise NameOwned(f"model name {name!r} belongs to {owner!r}, so {actor!r} cannot {what} its versions: ask its "
                        "owner or an admin", {"model": name, "owner": owner, "actor": actor})
