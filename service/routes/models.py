"""``GET /v1/models`` and ``GET /v1/models/{reference}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam

from nestml_registry.registry import listing, resolving
from nestml_registry.registry.errors import NotFound
from nestml_registry.service import schemas
from nestml_registry.service.deps import DatabaseDep, ReaderDep
from nestml_registry.service.documents import model_version_document
from nestml_registry.service.errors import error_responses

router = APIRouter(prefix="/v1", tags=["models"])
Reference = Annotated[str, PathParam(max_length=300, description="NAME, NAME_nestml or NAME@VERSION")]


@router.get("/models", response_model=list[schemas.ModelSummary], summary="Every model, newest version first",
            responses=error_responses(401))
async def list_models(db: DatabaseDep, _reader: ReaderDep) -> list[schemas.ModelSummary]:
    return [schemas.ModelSummary.model_validate(m) for m in await db.read(listing.list_models)]


@router.get("/models/{reference}", response_model=schemas.ModelDetail,
            summary="A model's versions: parameters (unit, default), state, input ports, source",
            responses=error_responses(401, 404, 422))
async def get_model(reference: Reference, db: DatabaseDep, _reader: ReaderDep) -> schemas.ModelDetail:
    """All versions, newest first; ``NAME@VERSION`` lists only that version."""
    _, wanted = resolving.parse_reference(reference)  # InvalidReference: 422
    detail = await db.read(listing.model_detail, reference)
    versions = detail["versions"]
    if wanted is not None:
        versions = [v for v in versions if v["version"] == wanted]
        if not versions:
            numbers = sorted(v["version"] for v in detail["versions"])
            raise NotFound(f"model {detail['name']!r} has no version {wanted}: it has versions "
                           f"{', '.join(map(str, numbers)) or 'none'}; leave out @VERSION to see them all",
                           {"model": detail["name"], "versions": numbers})
    return schemas.ModelDetail(name=detail["name"], owner=detail.get("owner"), created_at=detail.get("created_at"),
                               kind=versions[0]["kind"] if versions else None,
                               version=versions[0]["version"] if versions else None,
                               versions=[model_version_document(v) for v in versions])
