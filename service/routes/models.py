"""``GET /v1/models`` and ``GET /v1/models/{reference}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam

from nestml_registry.registry import listing, resolving
from nestml_registry.registry.errors import NotFound
from nestml_registry.service import schemas
from nestml_registry.service.deps import DatabaseDep, ReaderDep
from nestml_registry.service.documents import artifact_url
from nestml_registry.service.errors import error_responses

router = APIRouter(prefix="/v1", tags=["models"])
Reference = Annotated[str, PathParam(max_length=300, description="NAME, NAME_nestml or NAME@VERSION")]


def _variables(items: list[Any]) -> list[schemas.Variable]:
    out = []
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            out.append(schemas.Variable.model_validate({**item, "unit": item.get("unit") or item.get("type")}))
    return out


def _version(v: dict[str, Any]) -> schemas.ModelVersion:
    return schemas.ModelVersion(
        version=v["version"], kind=v["kind"], nestml_name=v.get("nestml_name"), content_digest=v["content_digest"],
        created_at=v.get("created_at"), parameters=_variables(v.get("parameters") or []),
        state=_variables(v.get("state") or []),
        input_ports=[schemas.InputPort.model_validate(p) for p in v.get("input_ports") or []
                     if isinstance(p, dict) and isinstance(p.get("name"), str)],
        receptor_types=v.get("receptor_types") or {}, variants=list(v.get("variants") or []),
        source=schemas.SourceText(**v["source"]) if v.get("source") else None,
        modules=[schemas.ModuleLink(**m, url=artifact_url(m["sha256"])) for m in v.get("modules") or []])


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
                               versions=[_version(v) for v in versions])
