"""``GET /v1/models/{name}/versions/{version}/characterisation`` (how a neuron version behaves in NEST) and
``POST /v1/characterisations`` (queue them again; the workers run them, never the request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from nestml_registry.registry import characterisations
from nestml_registry.registry.errors import InvalidInput
from nestml_registry.service.api import characterisation_schemas, reads
from nestml_registry.service.api.deps import DatabaseDep, PublisherDep, ReaderDep
from nestml_registry.service.api.errors import error_responses
from nestml_registry.service.api.routes.models import actor_of

router = APIRouter(prefix="/v1", tags=["characterisations"])
Name = Annotated[str, PathParam(max_length=300, description="The model's name (NAME or NAME_nestml)")]
Version = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
ToolchainParam = Annotated[str | None, Query(max_length=200, description="The toolchain whose result to show")]


@router.get("/models/{name}/versions/{version}/characterisation",
            response_model=characterisation_schemas.Characterisation,
            summary="How a neuron model version behaves in NEST: rheobase, f-I curve, step and PSP traces",
            responses=error_responses(401, 404, 422))
async def get_characterisation(name: Name, version: Version, db: DatabaseDep, _reader: ReaderDep,
                               toolchain: ToolchainParam = None) -> characterisation_schemas.Characterisation:
    """``status`` is ``none`` until one is queued, then ``queued``, ``running``, and ``succeeded``,
    ``failed`` (with ``error``; the module is unaffected) or ``not_applicable`` (with ``reason``: a synapse,
    or a neuron with no current input). ``protocol`` says how it was measured; ``previous`` holds the newest
    older version's rheobase, f-I curve and features; ``check`` the verdict against its NEST counterpart.
    A version is characterised on each toolchain it is built for: ``toolchains`` lists them (with what
    ``changed`` against another), and ``toolchain`` picks one (default: the most recently finished)."""
    return await reads.characterisation(db, name, version, toolchain)


@router.post("/characterisations", response_model=list[characterisation_schemas.CharacteriseQueued], status_code=202,
             summary="Queue characterisations (again): of one model or version, or of all you own",
             responses=error_responses(401, 403, 404, 422))
async def queue_characterisations(body: characterisation_schemas.CharacteriseRequest, db: DatabaseDep,
                                  principal: PublisherDep) -> list[characterisation_schemas.CharacteriseQueued]:
    """Give ``model`` (``NAME``: its newest version; ``NAME@VERSION``) or ``all``. Only a name's owner or an
    admin may; ``all`` takes every neuron version the caller owns (an admin: every one). Each runs on a
    toolchain a live worker serves and the version has a module for; the answer says which, or why not."""
    if (body.model is None) == (not body.all):
        raise InvalidInput("give either a model (NAME or NAME@VERSION) or all=true, not both or neither")
    actor, admin = actor_of(principal)
    live = await reads.live_toolchains(db)
    rows = await db.write(characterisations.request, body.model, actor, admin, live)
    return [characterisation_schemas.CharacteriseQueued.model_validate(r) for r in rows]
