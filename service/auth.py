"""Bearer tokens and roles: reader < publisher < admin.

- A request may carry ``Authorization: Bearer <token>``; an unknown, revoked or malformed token is
  refused (401) wherever it is sent, so a typo is never silently treated as anonymous.
- Reading needs a token (any role) only with ``read_requires_token``.
- Submitting builds needs the publisher role, or no token at all when anonymous publishing is allowed
  (``allow_anonymous_publish``; by default only on a server that listens on loopback). A reader's token
  is refused (403).
- The token's id is the build's ``submitted_by``, and so the owner of the model names it publishes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from registry.tokens import find_token
from service.errors import ApiError
from service.settings import Settings

ROLE_RANK = {"reader": 1, "publisher": 2, "admin": 3}
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="nestml-registry"'}
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class Principal:
    """Who sends a request: a token's id, name and role."""

    token_id: int
    name: str
    role: str

    def has(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, 0) >= ROLE_RANK[role]


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, {}, dict(CHALLENGE))


def principal_from_header(session: Session, authorization: str | None) -> Principal | None:
    """The token's owner, None without an Authorization header; a bad token raises 401."""
    if authorization is None or not authorization.strip():
        return None
    scheme, _, secret = authorization.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise _unauthorized("the Authorization header must be 'Bearer <token>': create a token with "
                            "`nestml-registry token create --role publisher` and send it (NESTML_REGISTRY_TOKEN)")
    if len(secret) > MAX_TOKEN_LENGTH or not secret.isascii() or not secret.isprintable():
        raise _unauthorized("the bearer token is not one this registry issued: check NESTML_REGISTRY_TOKEN")
    token = find_token(session, secret)
    if token is None:
        raise _unauthorized("the bearer token is unknown or revoked: check NESTML_REGISTRY_TOKEN, or ask the "
                            "registry's administrator for a new token (`nestml-registry token create`)")
    return Principal(token.id, token.name, token.role)


def check_reader(principal: Principal | None, settings: Settings) -> Principal | None:
    if principal is None and settings.read_requires_token:
        raise _unauthorized("this registry needs a token to read: send 'Authorization: Bearer <token>' "
                            "(set NESTML_REGISTRY_TOKEN); ask its administrator for one")
    return principal


def check_publisher(principal: Principal | None, settings: Settings) -> Principal | None:
    if principal is None:
        if settings.anonymous_publish:
            return None
        raise _unauthorized("submitting builds needs a token with the publisher role: send 'Authorization: Bearer "
                            "<token>' (set NESTML_REGISTRY_TOKEN); an administrator creates one with "
                            "`nestml-registry token create --role publisher`")
    if not principal.has("publisher"):
        raise ApiError(403, "forbidden",
                       f"token {principal.name!r} has the role {principal.role!r}, which may only read; submitting "
                       "builds needs the publisher (or admin) role: ask the registry's administrator for such a "
                       "token", {"role": principal.role, "needed": "publisher"})
    return principal
