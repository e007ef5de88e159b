"""The pages that change something: sign in (a token typed once per browser session), sign out, and
upload ``.nestml`` files to build (the API's own upload path, then the build's page)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from nestml_registry.compiler.request import Pair
from nestml_registry.registry import tokens
from nestml_registry.registry.records import record_event
from nestml_registry.registry.tables import Token
from nestml_registry.service.api import reads
from nestml_registry.service.api.auth import anonymous_publishing, check_publisher, principal_from_header
from nestml_registry.service.api.deps import DatabaseDep, MetricsDep, SettingsDep, StoreDep
from nestml_registry.service.api.errors import ApiError
from nestml_registry.service.api.routes.builds import queue_upload
from nestml_registry.service.api.uploads import Upload
from nestml_registry.service.api.web.render import Pages
from nestml_registry.service.api.web.session import (
    COOKIE,
    PagePrincipal,
    PageReader,
    forget,
    remember,
    safe_next,
)

router = APIRouter(include_in_schema=False)
MAX_TOKEN_FIELD = 600


def _pages(request: Request) -> Pages:
    return request.app.state.pages


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, next_: Annotated[str, Query(alias="next", max_length=2000)] = "/"
                      ) -> HTMLResponse:
    return _pages(request).render(request, "signin.html", title="Sign in", next=safe_next(next_), problem=None,
                                  signed_in=None)


@router.post("/signin", response_class=HTMLResponse, response_model=None)
async def signin(request: Request, db: DatabaseDep, token: Annotated[str, Form(max_length=MAX_TOKEN_FIELD)],
                 next_: Annotated[str, Form(alias="next", max_length=2000)] = "/") -> HTMLResponse | RedirectResponse:
    secret = token.strip()
    try:
        principal = await db.read(principal_from_header, f"Bearer {secret}")
    except ApiError:  # (the API's words name an environment variable; a person here typed into a form)
        return _pages(request).render(request, "signin.html", 401, title="Sign in", next=safe_next(next_),
                                      problem="that token is unknown or revoked: type a token the registry's "
                                              "administrator gave you (`nestml-registry token create`), or, on the "
                                              "registry's own machine, the one in its local-token file",
                                      signed_in=None)
    if principal is None:  # pragma: no cover - an empty field is refused by the form's validation
        return _pages(request).render(request, "signin.html", 401, title="Sign in", next=safe_next(next_),
                                      problem="type a token", signed_in=None)
    # the cookie holds a session of its own, never the token typed here (revoked at sign-out)
    session_secret = await db.write(_start_session, principal.token_id, request.cookies.get(COOKIE))
    response = RedirectResponse(safe_next(next_), status_code=303)
    remember(response, request, session_secret)
    return response


def _start_session(s: Session, token_id: int, previous: str | None) -> str:
    if previous:  # signing in again ends the session the browser had
        tokens.end_session(s, previous)
    token = s.get(Token, token_id)
    assert token is not None  # it was just found
    secret = tokens.start_session(s, token)
    record_event(s, token.name, "sign_in", token.name, {"token": token.session_of or token.id})
    return secret


@router.post("/signout")
async def signout(request: Request, db: DatabaseDep) -> RedirectResponse:
    cookie = request.cookies.get(COOKIE)
    if cookie:
        await db.write(tokens.end_session, cookie)
    response = RedirectResponse("/", status_code=303)
    forget(response)
    return response


@router.get("/upload", response_class=HTMLResponse)
async def upload_page(request: Request, db: DatabaseDep, settings: SettingsDep, principal: PageReader
                      ) -> HTMLResponse:
    may_publish = (principal.has("publisher") if principal is not None
                   else anonymous_publishing(settings, request))
    toolchains = await reads.toolchain_list(db, admin=False)
    return _pages(request).render(request, "upload.html", title="Upload", may_publish=may_publish,
                                  toolchains=toolchains, max_bytes=settings.max_upload_bytes,
                                  max_files=settings.max_files)


def _form_pairs(upload: Upload) -> None:
    """The form's pairs are ``NEURON:SYNAPSE[:PORT,...]``, one per line (the API's JSON is taken too)."""
    text = upload.fields.get("pairs", "").strip()
    if not text or text.startswith("["):
        return
    upload.fields["pairs"] = json.dumps([Pair.parse(item).to_dict() for item in text.split()])  # InputError: 422


@router.post("/upload")
async def upload(request: Request, principal: PagePrincipal, settings: SettingsDep, metrics: MetricsDep,
                 db: DatabaseDep, store: StoreDep) -> RedirectResponse:
    check_publisher(principal, settings, request)
    document = await queue_upload(request, principal, settings, metrics, db, store, adapt=_form_pairs)
    return RedirectResponse(f"/builds/{document.id}", status_code=303)
