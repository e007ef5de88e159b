"""``/docs``: the Swagger UI for the OpenAPI document, with its script and stylesheet served by this
server (from the ``fastapi-offline`` package, which ships them), so it works on a lab network that
cannot reach a CDN."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def swagger_assets() -> Path:
    """The folder of Swagger UI's files that ``fastapi-offline`` installs (nothing of it is imported)."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the fastapi-offline package is missing: reinstall nestml-registry (scripts/setup.sh)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install_docs(app: FastAPI, title: str) -> None:
    app.mount(ASSETS, StaticFiles(directory=swagger_assets()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{title} API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon.png")
