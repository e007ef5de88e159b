"""Bearer tokens and roles: reader < publisher < admin, and worker apart (an HTTP compile worker's token:
it claims builds for its toolchain and reports them, and may do nothing else, reading included).

- A request may carry ``Authorization: Bearer <token>``; an unknown, revoked or malformed token is
  refused (401) wherever it is sent, so a typo is never silently treated as anonymous.
- Reading needs a token (any role) only with ``read_requires_token``.
- Submitting, rebuilding and retrying builds needs the publisher role (or no token at all where the
  operator allows anonymous publishing, ``allow_anonymous_publish``; off by default). Where a request
  comes from proves nothing (a tunnel, a reverse proxy or a web page in a browser on this machine all
  arrive from loopback), so this machine's user gets a token instead: ``serve`` writes it to a file only
  that user can read, and the CLI and the client on this machine use it by themselves
  (:mod:`nestml_registry.service.client.local_token`). A reader's token is refused (403).
- The token's id is the build's ``submitted_by``; the token's name is the principal that owns the model
  names it publishes (anonymous publishing publishes as the principal ``local``).
- Admin-only: the audit log, other submitters' failed build logs, server paths.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session

from nestml_registry.registry.tables import LOCAL_OWNER
from nestml_registry.registry.tokens import find_token
from nestml_registry.service.api.errors import ApiError
from nestml_registry.service.settings import Settings

ROLE_RANK = {"worker": 0, "reader": 1, "publisher": 2, "admin": 3}
WORKER_ONLY = ("token {name!r} is a compile worker's token (role worker): it may only claim and report builds "
               "(nestml-registry worker --server URL); use a reader, publisher or admin token for anything else")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="nestml-registry"'}
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class Principal:
    """Who sends a request: a token's id, name and role."""

    token_id: int
    name: str
    role: str
    toolchains: tuple[str, ...] = ()  # a worker token's: the toolchains an admin lets it serve
    session: bool = False  # a page session's token (it ends with time, and at sign-out)

    def has(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, 0) >= ROLE_RANK[role]

    def may_serve(self, toolchain: str) -> bool:
        """Whether this worker's token may claim, build and report for ``toolchain`` (an admin's may)."""
        return self.role == "admin" or toolchain in self.toolchains


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
    return Principal(token.id, token.name, token.role, tuple(token.toolchains or ()), token.session_of is not None)


def principal_key(authorization: str) -> tuple[str, str]:
    """The read cache's key of an Authorization header's owner (:mod:`nestml_registry.service.api.read_cache`):
    a digest, so the cache holds no secret."""
    return "principal", hashlib.sha256(authorization.strip().encode()).hexdigest()


def lasting(principal: Principal | None) -> bool:
    """Whether a token's owner may be kept until the registry's generation moves: an API token's (creating and
    revoking one are audited), not a page session's."""
    return principal is not None and not principal.session


def _no_worker(principal: Principal | None) -> None:
    if principal is not None and principal.role == "worker":
        raise ApiError(403, "forbidden", WORKER_ONLY.format(name=principal.name), {"role": "worker"})


def check_reader(principal: Principal | None, settings: Settings) -> Principal | None:
    _no_worker(principal)
    if principal is None and settings.read_requires_token:
        raise _unauthorized("this registry needs a token to read: send 'Authorization: Bearer <token>' "
                            "(set NESTML_REGISTRY_TOKEN); ask its administrator for one")
    return principal


def anonymous_publishing(settings: Settings, request: Request) -> bool:
    """Whether this request may publish without a token (see the module's docstring)."""
    return settings.allow_anonymous_publish


def check_publisher(principal: Principal | None, settings: Settings, request: Request) -> Principal | None:
    if principal is None:
        if anonymous_publishing(settings, request):
            return None
        raise _unauthorized("submitting builds needs a token with the publisher role: send 'Authorization: Bearer "
                            "<token>' (set NESTML_REGISTRY_TOKEN); an administrator creates one with "
                            "`nestml-registry token create --role publisher`; on the registry's own machine, "
                            "its user's CLI finds the local token that `nestml-registry serve` writes by itself")
    _no_worker(principal)
    if not principal.has("publisher"):
        raise ApiError(403, "forbidden",
                       f"token {principal.name!r} has the role {principal.role!r}, which may only read; submitting "
                       "builds needs the publisher (or admin) role: ask the registry's administrator for such a "
                       "token", {"role": principal.role, "needed": "publisher"})
    return principal


def check_worker(principal: Principal | None) -> Principal:
    """A compile worker reaching the registry over HTTP: a worker token (or an admin's)."""
    if principal is None:
        raise _unauthorized("a compile worker needs a worker token: send 'Authorization: Bearer <token>' (set "
                            "NESTML_REGISTRY_TOKEN); an administrator creates one with `nestml-registry token "
                            "create --role worker`")
    if principal.role not in ("worker", "admin"):
        raise ApiError(403, "forbidden", f"token {principal.name!r} has the role {principal.role!r}; claiming and "
                       "reporting builds needs the worker role", {"role": principal.role, "needed": "worker"})
    return principal


def check_serves(principal: Principal, toolchain: str) -> None:
    """403 unless the worker's token may serve ``toolchain`` (see :meth:`Principal.may_serve`)."""
    if not principal.may_serve(toolchain):
        raise ApiError(403, "toolchain_not_allowed",
                       f"the worker token {principal.name!r} may not serve the toolchain {toolchain[:200]!r}: an "
                       f"admin lets it with `nestml-registry toolchain approve {toolchain[:200]} --token "
                       f"{principal.token_id}` (the toolchains it may serve: "
                       f"{', '.join(principal.toolchains) or 'none yet'})",
                       {"toolchain": toolchain[:200], "allowed": list(principal.toolchains)})


def check_admin(principal: Principal | None) -> Principal:
    _no_worker(principal)
    if principal is None:
        raise _unauthorized("this needs an admin token: send 'Authorization: Bearer <token>' (set "
                            "NESTML_REGISTRY_TOKEN); create one with `nestml-registry token create --role admin`")
    if not principal.has("admin"):
        raise ApiError(403, "forbidden", f"token {principal.name!r} has the role {principal.role!r}; this needs "
                       "the admin role", {"role": principal.role, "needed": "admin"})
    return principal


def may_read_failed_log(principal: Principal | None, submitter: str | None, settings: Settings,
                        request: Request) -> bool:
    """A failed build's log: its submitter's principal (``local``: whoever may publish anonymously) and admins."""
    if principal is None:
        return submitter == LOCAL_OWNER and anonymous_publishing(settings, request)
    return principal.has("admin") or principal.name == submitter
