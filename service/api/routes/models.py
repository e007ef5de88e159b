"""``GET /v1/models`` (searched, filtered, paged), ``GET /v1/models/{reference}`` (and its diff), and
``POST /v1/models/{NAME@VERSION}/yank`` / ``unyank``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam

from nestml_registry.registry import describing, listing, owners, resolving, yanking
from nestml_registry.registry.listing import ModelQuery
from nestml_registry.service.api import reads, schemas
from nestml_registry.service.api.auth import Principal
from nestml_registry.service.api.deps import DatabaseDep, PublisherDep, ReaderDep
from nestml_registry.service.api.errors import error_responses

router = APIRouter(prefix="/v1", tags=["models"])
Reference = Annotated[str, PathParam(max_length=300, description="NAME, NAME_nestml or NAME@VERSION")]
Search = Annotated[str, Query(max_length=200, description="Words that must all appear in the model's name, "
                                                          "description, or its parameters' and state variables' "
                                                          "names and descriptions")]
MAX_PAGE = 1000
Verdict = Annotated[Literal["agrees", "differs", "failed", "none"], Query(
    description="The newest version's verdict against its NEST counterpart; none: no verdict")]


@router.get("/models", response_model=list[schemas.ModelSummary], summary="Models, newest version first",
            responses=error_responses(401, 422))
async def list_models(db: DatabaseDep, _reader: ReaderDep, response: Response, q: Search = "",
                      kind: Literal["neuron", "synapse"] | None = None,
                      owner: Annotated[str | None, Query(max_length=255)] = None,
                      verdict: Verdict | None = None,
                      limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
                      offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> list[schemas.ModelSummary]:
    """Every model (or those matching ``q``, ``kind``, ``owner`` and ``verdict``), the most recently published first;
    ``limit`` and ``offset`` page through them, and ``X-Total-Count`` says how many match in all."""
    page = await reads.models(db, ModelQuery(q=q, kind=kind, owner=owner, verdict=verdict, limit=limit,
                                             offset=offset))
    response.headers["X-Total-Count"] = str(page.total)
    return page.models


@router.get("/models/{reference}", response_model=schemas.ModelDetail,
            summary="A model's versions: parameters (unit, default), state, input ports, source",
            responses=error_responses(401, 404, 422))
async def get_model(request: Request, reference: Reference, db: DatabaseDep,
                    _reader: ReaderDep) -> schemas.ModelDetail:
    """All versions, newest first; ``NAME@VERSION`` lists only that version. Each version says what
    changed in its parameters since the version before."""
    async def answer() -> bytes:
        return (await reads.model(db, reference)).model_dump_json().encode()

    # exactly what reading it now gives (service.read_cache): it changes only with audited changes
    body = await request.app.state.reads.get(db, ("model", reference), answer)
    return Response(body, media_type="application/json")  # type: ignore[return-value]  # (already serialised)


@router.post("/models/{reference}/yank", response_model=schemas.ModelDetail,
             summary="Withdraw a version: unpinned references skip it, NAME@VERSION and lock files still resolve it",
             responses=error_responses(401, 403, 404, 409, 422))
async def yank_version(reference: Reference, body: schemas.YankRequest, db: DatabaseDep,
                       principal: PublisherDep) -> schemas.ModelDetail:
    """``reference`` is ``NAME@VERSION``; only the name's owner or an admin may yank (as for publishing)."""
    actor, admin = actor_of(principal)
    row = await db.write(yanking.yank, reference, body.reason, actor, admin)
    return await reads.model(db, f"{row.name}@{row.version}")


@router.post("/models/{reference}/metadata", response_model=schemas.ModelDetail,
             summary="Say who wrote a version, its licence, references, DOIs and keywords",
             responses=error_responses(401, 403, 404, 409, 422))
async def describe_version(reference: Reference, body: schemas.MetadataUpdate, db: DatabaseDep,
                           principal: PublisherDep) -> schemas.ModelDetail:
    """``reference`` is ``NAME@VERSION``; only the name's owner or an admin may describe it. What is given
    replaces what was given before (an empty body clears it), is shown before what the model's comment
    says, and is searched. Nothing of the model or its modules changes."""
    actor, admin = actor_of(principal)
    row = await db.write(describing.describe, reference, body.model_dump(), actor, admin)
    return await reads.model(db, f"{row.name}@{row.version}")


@router.post("/models/{reference}/unyank", response_model=schemas.ModelDetail,
             summary="Undo a yank: the version is chosen for unpinned references again",
             responses=error_responses(401, 403, 404, 409, 422))
async def unyank_version(reference: Reference, db: DatabaseDep, principal: PublisherDep) -> schemas.ModelDetail:
    actor, admin = actor_of(principal)
    row = await db.write(yanking.unyank, reference, actor, admin)
    return await reads.model(db, f"{row.name}@{row.version}")


def actor_of(principal: Principal | None) -> tuple[str, bool]:
    return (principal.name, principal.has("admin")) if principal is not None else (owners.LOCAL, False)


@router.get("/models/{reference}/diff", response_model=schemas.ModelDiff,
            summary="What changed between two versions: parameters, state, source",
            responses=error_responses(401, 404, 422))
async def diff_versions(reference: Reference, db: DatabaseDep, _reader: ReaderDep,
                        from_: Annotated[int, Query(alias="from", ge=1, le=2**31 - 1)],
                        to: Annotated[int, Query(ge=1, le=2**31 - 1)]) -> schemas.ModelDiff:
    """``from`` and ``to`` are version numbers of the model ``reference`` names (a version in it is ignored)."""
    base, _ = resolving.parse_reference(reference)  # InvalidReference: 422
    return schemas.ModelDiff.model_validate(await db.read(listing.version_diff, base, from_, to))
