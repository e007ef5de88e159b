"""API tokens: only their sha256 is stored; the secret is shown once, when it is created.
Functions take a Session and do not commit."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from nestml_registry.registry.errors import InvalidInput, NotFound
from nestml_registry.registry.tables import ROLES, Token, utcnow

PREFIX = "nrt_"


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(session: Session, name: str, role: str) -> tuple[Token, str]:
    """A new token: ``(row, secret)``. The secret is not stored and cannot be shown again."""
    if role not in ROLES:
        raise InvalidInput(f"invalid role {role!r}: use one of {', '.join(ROLES)}")
    if not name or len(name) > 255:
        raise InvalidInput("a token needs a name (at most 255 characters) saying who or what uses it")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = Token(name=name, role=role, token_hash=hash_token(secret))
    session.add(token)
    session.flush()
    return token, secret


def find_token(session: Session, secret: str) -> Token | None:
    """The token with this secret, unless it is unknown or revoked."""
    token = session.scalars(select(Token).where(Token.token_hash == hash_token(secret))).one_or_none()
    return token if token is not None and token.revoked_at is None else None


def revoke_token(session: Session, token_id: int) -> Token:
    token = session.get(Token, token_id)
    if token is None:
        raise NotFound(f"no token {token_id}: list the tokens to find its id")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token
