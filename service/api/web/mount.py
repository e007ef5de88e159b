"""``install_pages(app)``: the pages, their static files, their error page and security headers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from nestml_registry.service.api.web import forms, pages
from nestml_registry.service.api.web.render import STATIC_DIR, Pages, SecurityHeaders, ServerTiming
from nestml_registry.service.api.web.session import COOKIE


def install_pages(app: FastAPI) -> None:
    renderer = Pages()
    app.state.pages = renderer

    def error_page(request: Request, status: int, error: dict[str, Any], headers: dict[str, str] | None) -> Response:
        signin = status == 401 or (status == 403 and error.get("code") == "forbidden")
        response = renderer.render(request, "error.html", status, dict(headers or {}), title=f"Error {status}",
                                   status=status, error=error, signin=signin, signed_in=None)
        if status == 401 and COOKIE in request.cookies:
            response.delete_cookie(COOKIE, path="/")  # a revoked token is forgotten; the page offers to sign in
        return response

    app.state.error_page = error_page
    app.include_router(pages.router)
    app.include_router(forms.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ServerTiming)
