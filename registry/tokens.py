"""API tokens: only their sha256 is stored; the secret is shown once, when it is created.

A web page session is a token of its own (``session_of`` names the token typed at sign-in, whose name
and role it has): the browser's cookie never holds the API token itself, signing out revokes the
session, and a session ends with its token's revocation or after :data:`SESSION_HOURS`.
Functions take a Session and do not commit."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from nestml_registry.registry.errors import InvalidInput, NotFound
from nestml_registry.registry.tables import ROLES, Token, utcnow

PREFIX = "nrt_"
SESSION_HOURS = 12


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
    """The token with this secret, unless it is unknown or revoked (a session: or its token is, or it expired)."""
    token = session.scalars(select(Token).where(Token.token_hash == hash_token(secret))).one_or_none()
    if token is None or token.revoked_at is not None:
        return None
    if token.session_of is not None:
        parent = session.get(Token, token.session_of)
        if parent is None or parent.revoked_at is not None or \
                utcnow() - token.created_at > timedelta(hours=SESSION_HOURS):
            return None
    return token


def start_session(session: Session, token: Token) -> str:
    """A page session for ``token`` (same name and role): the secret for the browser's cookie."""
    secret = PREFIX + secrets.token_urlsafe(32)
    session.add(Token(name=token.name, role=token.role, token_hash=hash_token(secret),
                      session_of=token.session_of or token.id))
    session.flush()
    return secret


def end_session(session: Session, secret: str) -> Token | None:
    """Sign-out: revoke the page session with this secret (an API token given instead is left alone)."""
    token = session.scalars(select(Token).where(Token.token_hash == hash_token(secret))).one_or_none()
    if token is None or token.session_of is None:
        return None
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def revoke_token(session: Session, token_id: int) -> Token:
    token = session.get(Token, token_id)
    if token is None:
        raise NotFound(f"no token {token_id}: list the tokens to find its id")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token
