"""``GET /v1/tokens`` and ``DELETE /v1/tokens/{id}``: the API tokens (never their secrets), and revoking
one at once. Admins see and revoke every token; any token holder may revoke their own (a leaked token).
Creating a token stays on the server machine (``nestml-registry token create``): a secret is shown once,
to someone who can read the database."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from sqlalchemy import select
from sqlalchemy.orm import Session

from nestml_registry.registry.errors import NotFound
from nestml_registry.registry.records import record_event
from nestml_registry.registry.tables import Token
from nestml_registry.registry.tokens import revoke_token
from nestml_registry.service.api import schemas
from nestml_registry.service.api.auth import Principal
from nestml_registry.service.api.deps import AdminDep, DatabaseDep, ReaderDep
from nestml_registry.service.api.errors import ApiError, error_responses

router = APIRouter(prefix="/v1", tags=["tokens"])
TokenId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="the token's id (GET /v1/tokens)")]


def _document(t: Token) -> schemas.TokenInfo:
    return schemas.TokenInfo(id=t.id, name=t.name, role=t.role, created_at=t.created_at, revoked_at=t.revoked_at)


@router.get("/tokens", response_model=list[schemas.TokenInfo], summary="The API tokens, never their secrets (admins)",
            responses=error_responses(401, 403), openapi_extra={"x-access": "admin"})
async def list_tokens(db: DatabaseDep, _admin: AdminDep) -> list[schemas.TokenInfo]:
    # page sessions (registry.tokens) are no tokens anyone was given: not listed
    return await db.read(lambda s: [_document(t) for t in s.scalars(select(Token).where(Token.session_of.is_(None))
                                                                  .order_by(Token.id))])


@router.delete("/tokens/{token_id}", response_model=schemas.TokenInfo,
               summary="Revoke a token at once: requests with it get 401 (admins; anyone for their own)",
               responses=error_responses(401, 403, 404, 422))
async def revoke(token_id: TokenId, db: DatabaseDep, principal: ReaderDep) -> schemas.TokenInfo:
    if principal is None or (principal.token_id != token_id and not principal.has("admin")):
        raise ApiError(403, "forbidden", "only an admin token may revoke another token; a token may revoke itself",
                       {"token": token_id})
    return await db.write(_revoke, token_id, principal)


def _revoke(session: Session, token_id: int, principal: Principal) -> schemas.TokenInfo:
    try:
        token = revoke_token(session, token_id)
    except NotFound as exc:
        raise NotFound(f"no token {token_id}: GET /v1/tokens (nestml-registry token list) lists their ids") from exc
    record_event(session, principal.name, "token_revoke", token.name, {"token": token.id, "role": token.role})
    return _document(token)
