"""``GET /v1/resolve?model=NAME[@VERSION]&toolchain=ID``: which module a simulation loads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from nestml_registry.registry import resolving
from nestml_registry.registry.tables import TOOLCHAIN_LEN
from nestml_registry.registry.toolchains import TOOLCHAIN_ID_RE
from nestml_registry.service.api import schemas
from nestml_registry.service.api.deps import DatabaseDep, MetricsDep, ReaderDep
from nestml_registry.service.api.documents import resolution_document
from nestml_registry.service.api.errors import ApiError, error_responses

router = APIRouter(prefix="/v1", tags=["resolve"])
MAX_REFERENCES = 100
Models = Annotated[list[str], Query(min_length=1, max_length=MAX_REFERENCES,
                                    description="NAME, NAME_nestml or NAME@VERSION; repeat for several models of "
                                                "one simulation (one module set that one NEST process can load)")]
ToolchainId = Annotated[str, Query(max_length=TOOLCHAIN_LEN, pattern=TOOLCHAIN_ID_RE.pattern,
                                   description="The simulation machine's toolchain id")]


@router.get("/resolve", response_model=schemas.Resolution | schemas.Resolutions,
            summary="The module to load for a model on a toolchain", responses=error_responses(401, 404, 409, 422))
async def resolve(request: Request, model: Models, toolchain: ToolchainId, db: DatabaseDep, metrics: MetricsDep,
                  _reader: ReaderDep) -> schemas.Resolution | schemas.Resolutions:
    """One ``model``: its resolution. Several: ``{"toolchain", "resolutions": [...]}`` in the same order,
    refused (409) when two of them are versions of one model or their modules register the same name."""
    if any(len(m) > 300 for m in model):
        raise ApiError(422, "invalid_reference", "a model reference is longer than 300 characters: write "
                       + resolving.REFERENCE_SYNTAX)
    metrics.resolves.inc()

    async def answer() -> bytes:
        return (await db.read(_resolved, model, toolchain)).model_dump_json().encode()

    # the same bytes as reading it now (service.read_cache): a job start of a thousand resolves costs few reads
    body = await request.app.state.reads.get(db, ("resolve", tuple(model), toolchain), answer)
    return Response(body, media_type="application/json")  # type: ignore[return-value]  # (already serialised)


def _resolved(session: Session, model: list[str], toolchain: str) -> schemas.Resolution | schemas.Resolutions:
    # a ResolveError is answered by its kind (service.errors: 422, 404 or 409)
    if len(model) == 1:
        return resolution_document(resolving.resolve(session, model[0], toolchain))
    resolved = resolving.resolve_many(session, model, toolchain)
    return schemas.Resolutions(toolchain=toolchain, resolutions=[resolution_document(r) for r in resolved])
