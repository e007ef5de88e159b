"""Who reads a page: a token sent as ``Authorization: Bearer`` (as the API takes it), or typed once into
the sign-in page, which keeps it in a session cookie (HttpOnly, SameSite=Strict, gone when the browser
closes; never in a URL). Only the pages read that cookie: the JSON API takes the header alone, so no
other site can make a browser use the API with it. A form that changes something is refused when the
browser says it comes from another origin (:mod:`nestml_registry.service.api.request_origin`, for every route).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from nestml_registry.service.api.auth import Principal, check_reader, principal_from_header
from nestml_registry.service.api.deps import DatabaseDep, SettingsDep
from nestml_registry.service.api.errors import ApiError

COOKIE = "nestml_registry_token"


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header and header.strip():
        return header
    cookie = request.cookies.get(COOKIE)
    return f"Bearer {cookie}" if cookie else None


async def page_principal(request: Request, db: DatabaseDep) -> Principal | None:
    """The token's owner (header, else the session cookie); None without one; 401 for a bad header. A session
    cookie that no longer opens anything (signed out elsewhere, expired, or another registry's on the same
    host) is as no cookie: the page is shown as to someone not signed in."""
    authorization = token_of(request)
    if authorization is None:
        return None
    try:
        principal = await db.read(principal_from_header, authorization)
    except ApiError:
        header = request.headers.get("authorization")
        if header and header.strip():
            raise
        principal = None
    request.state.page_principal = principal
    return principal


PagePrincipal = Annotated[Principal | None, Depends(page_principal)]


async def page_reader(principal: PagePrincipal, settings: SettingsDep) -> Principal | None:
    return check_reader(principal, settings)


PageReader = Annotated[Principal | None, Depends(page_reader)]


def remember(response: Response, request: Request, secret: str) -> None:
    response.set_cookie(COOKIE, secret, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")


def forget(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
