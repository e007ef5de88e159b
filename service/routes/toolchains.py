"""``GET /v1/toolchains``: the toolchains compile workers serve, the most recently seen first."""

from __future__ import annotations

from fastapi import APIRouter

from nestml_registry.registry import toolchains
from nestml_registry.service import schemas
from nestml_registry.service.deps import DatabaseDep, ReaderDep
from nestml_registry.service.documents import toolchain_document
from nestml_registry.service.errors import error_responses

router = APIRouter(prefix="/v1", tags=["toolchains"])


@router.get("/toolchains", response_model=list[schemas.Toolchain], summary="Toolchains workers serve, newest first",
            responses=error_responses(401))
async def list_toolchains(db: DatabaseDep, reader: ReaderDep) -> list[schemas.Toolchain]:
    """What decides binary compatibility; admins also see the workers' paths (headers, compiler)."""
    admin = reader is not None and reader.has("admin")
    return [toolchain_document(t, _shown(t.details or {}, admin)) for t in await db.read(toolchains.known)]


# the fields of compiler.toolchain.Toolchain.to_dict() that hold no path of the worker's machine
_PUBLIC = ("id", "fingerprint", "nest_version", "cxx_abi", "cxx_name", "cxx_version", "cflags", "platform",
           "nestml_version", "sandboxed")


def _shown(details: dict, admin: bool) -> dict:
    return dict(details) if admin else {k: details[k] for k in _PUBLIC if k in details}
