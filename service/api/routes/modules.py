"""``GET /v1/modules/{sha256}`` (metadata) and ``GET /v1/modules/{sha256}/artifact`` (the .so).

The artifact's bytes are checked against its sha256 when read from the store
(``ArtifactStore.read_verified``): a damaged file is never served. Checked bytes are kept in memory
(:mod:`nestml_registry.service.api.artifacts`) for the next downloads. Its URL never changes content,
so clients cache it
forever (ETag = the sha256).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nestml_registry.registry import records
from nestml_registry.registry.errors import NotFound
from nestml_registry.service.api import schemas
from nestml_registry.service.api.artifacts import Artifact
from nestml_registry.service.api.deps import ArtifactsDep, DatabaseDep, MetricsDep, ReaderDep, StoreDep
from nestml_registry.service.api.documents import module_document
from nestml_registry.service.api.errors import ApiError, error_responses

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["modules"])
Sha256 = Annotated[str, PathParam(pattern=r"^[0-9a-fA-F]{64}$", description="The module's sha256 (64 hex digits)")]
IMMUTABLE = "public, max-age=31536000, immutable"
T = TypeVar("T")


@router.get("/modules/{sha256}", response_model=schemas.Module, summary="A module: toolchain, size, models",
            responses=error_responses(401, 404, 422))
async def get_module(sha256: Sha256, db: DatabaseDep, _reader: ReaderDep) -> schemas.Module:
    return await db.read(_module_document, sha256.lower())


def _module_document(session: Session, sha256: str) -> schemas.Module:
    return module_document(session, records.get_module(session, sha256))


def _digest_headers(sha256: str) -> dict[str, str]:
    digest = base64.b64encode(bytes.fromhex(sha256)).decode("ascii")
    return {"Repr-Digest": f"sha-256=:{digest}:", "X-Content-SHA256": sha256}


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _checked(read: Callable[[str], T], location: str, sha256: str) -> T:
    """``read(location)`` (a store method that checks the bytes), a missing file answered as a 500."""
    try:
        return read(location)
    except NotFound as exc:
        logger.error("module %s is registered but its file is missing: %s", sha256, exc)
        raise ApiError(500, "artifact_missing", f"module {sha256} is registered but its file is missing from the "
                       "artifact store: tell the registry's administrator (`nestml-registry store verify --repair` "
                       "restores it)",
                       {"sha256": sha256}) from None


@router.get("/modules/{sha256}/artifact", summary="Download the module's .so",
            response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                  "format": "binary"}}},
                             "description": "The .so; ETag is the quoted sha256, cached as immutable"},
                       304: {"description": "Not modified (If-None-Match names this module)"},
                       **error_responses(401, 404, 422, 500)})
async def get_artifact(sha256: Sha256, request: Request, db: DatabaseDep, store: StoreDep,
                       artifacts: ArtifactsDep, metrics: MetricsDep, _reader: ReaderDep) -> Response:
    """The bytes are checked against the sha256 before they are sent; a corrupt file is refused (500,
    code ``corrupt_artifact``). ``X-Content-SHA256`` and ``Repr-Digest`` let the client check them too.
    Checked bytes are kept in memory for the next downloads (they never change under their sha256)."""
    sha256 = sha256.lower()
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    artifact = artifacts.get(sha256)
    module = None if artifact is not None else await db.read(records.get_module, sha256)
    if _matches(request.headers.get("if-none-match"), etag):
        metrics.not_modified.inc()
        return Response(status_code=304, headers=headers)
    if module is not None and module.size > artifacts.max_item:  # large: streamed from the file just checked
        path = await run_in_threadpool(_checked, store.open_verified, module.location, sha256)
        metrics.downloads.inc()
        return FileResponse(path, media_type="application/octet-stream", filename=f"{module.name}.so",
                            headers={**headers, **_digest_headers(sha256)})
    if module is not None:
        data = await run_in_threadpool(_checked, store.read_verified, module.location, sha256)
        artifact = Artifact(sha256, f"{module.name}.so", data)
        artifacts.put(artifact)
    assert artifact is not None  # served from memory, or read just now
    headers.update({**_digest_headers(sha256), "Content-Disposition": f'attachment; filename="{artifact.filename}"'})
    metrics.downloads.inc()
    return Response(artifact.data, media_type="application/octet-stream", headers=headers)
