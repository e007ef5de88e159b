"""``/compat/nestml-server``: NEST Desktop's NESTML server requests
(see :mod:`nestml_registry.service.api.nestml_server`).

Nothing is compiled here: ``generateModels`` queues a build for the compile workers and waits for it
without holding a database connection; ``getSpecs`` runs NESTML's parser in the build sandbox off the
event loop (:mod:`nestml_registry.service.api.parsing`).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from nestml_registry.registry import owners
from nestml_registry.service.api import nestml_server
from nestml_registry.service.api.auth import Principal, check_publisher, check_reader, principal_from_header
from nestml_registry.service.api.deps import DatabaseDep, SettingsDep, StoreDep
from nestml_registry.service.api.errors import NESTML_SERVER_PATH, error_responses
from nestml_registry.service.api.parsing import NestmlParser
from nestml_registry.service.api.uploads import check_content_length, too_large

router = APIRouter(prefix=NESTML_SERVER_PATH, tags=["NEST Desktop (nestml-server)"])
M = TypeVar("M", bound=BaseModel)


async def _principal(request: Request, db: DatabaseDep) -> Principal | None:
    """The token as NEST Desktop sends it (``AccessToken: <token>``), or as ``Authorization: Bearer``."""
    header = request.headers.get("authorization")
    token = request.headers.get("accesstoken", "").strip()
    if (header is None or not header.strip()) and token:
        header = f"Bearer {token}"
    return await db.read(principal_from_header, header) if header else None


Who = Annotated[Principal | None, Depends(_principal)]


async def _reader(principal: Who, settings: SettingsDep) -> Principal | None:
    return check_reader(principal, settings)


async def _publisher(principal: Who, settings: SettingsDep, request: Request) -> Principal | None:
    return check_publisher(principal, settings, request)


Reader = Annotated[Principal | None, Depends(_reader)]
Publisher = Annotated[Principal | None, Depends(_publisher)]


async def _body(request: Request, model: type[M]) -> M:
    """The JSON body as ``model``, read up to the upload limit (413 beyond it; 422 saying what is wrong)."""
    limit = request.app.state.settings.max_upload_bytes
    check_content_length(request, limit)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise too_large(limit)
    try:
        return model.model_validate_json(bytes(data) or b"{}")
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]) from None


def _inline(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its definitions written in place (for a route that reads its own body)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return walk(defs[node["$ref"].rsplit("/", 1)[-1]]) if "$ref" in node else \
                {k: walk(v) for k, v in node.items()}
        return [walk(v) for v in node] if isinstance(node, list) else node

    return walk(schema)


def _json_body(model: type[BaseModel], access: str = "read") -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": _inline(model)}}},
            "x-access": access}


def _parser(request: Request) -> NestmlParser:
    return request.app.state.parser


@router.get("", summary="The NEST and NESTML versions models are built with", responses=error_responses(401, 503))
@router.get("/", include_in_schema=False)
async def index(db: DatabaseDep, settings: SettingsDep, _reader: Reader) -> dict[str, str]:
    toolchain = await db.read(nestml_server.front_door_toolchain, settings, False)
    return nestml_server.versions(toolchain)


@router.post("/generateModels", summary="Build NEST Desktop's module (waits for the build)",
             responses=error_responses(400, 401, 403, 413, 422, 503),
             openapi_extra=_json_body(nestml_server.GenerateRequest, "publish"))
async def generate_models(request: Request, principal: Publisher, settings: SettingsDep, db: DatabaseDep,
                          store: StoreDep) -> dict[str, Any]:
    body = await _body(request, nestml_server.GenerateRequest)
    publisher = (principal.name, principal.has("admin")) if principal else (owners.LOCAL, False)
    return await nestml_server.generate(body, (principal.token_id if principal else None, publisher), settings, db,
                                        store, _parser(request))


@router.get("/module/{module}/installed", summary="The models a generated module registers",
            responses=error_responses(401, 404, 422))
async def installed_models(module: Annotated[str, Path(max_length=200)], db: DatabaseDep, settings: SettingsDep,
                           _reader: Reader) -> list[str]:
    return await db.read(nestml_server.installed, settings, module)


@router.post("/getSpecs", summary="A script's parameters and state, with their starting values",
             responses=error_responses(400, 401, 413, 422), openapi_extra=_json_body(nestml_server.SpecsRequest))
async def get_specs(request: Request, _reader: Reader) -> dict[str, Any]:
    body = await _body(request, nestml_server.SpecsRequest)
    params, states = await nestml_server.specs(_parser(request), body.script)
    return {"params": params, "states": states}


@router.post("/getParams", summary="nestml-server 1.0.0b3's form: {params: {id: {label, value, unit}}}",
             responses=error_responses(400, 401, 413, 422), openapi_extra=_json_body(nestml_server.SpecsRequest))
async def get_params(request: Request, _reader: Reader) -> dict[str, Any]:
    body = await _body(request, nestml_server.SpecsRequest)
    params, _ = await nestml_server.specs(_parser(request), body.script)
    return {"params": {p["id"]: {k: v for k, v in p.items() if k != "id"} for p in params}}
