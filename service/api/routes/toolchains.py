"""``GET /v1/toolchains`` (the toolchains compile workers serve, the most recently seen first) and
``GET /v1/workers`` (the workers, and what each is doing)."""

from __future__ import annotations

from fastapi import APIRouter

from nestml_registry.service.api import reads, schemas
from nestml_registry.service.api.deps import DatabaseDep, ReaderDep
from nestml_registry.service.api.errors import error_responses

router = APIRouter(prefix="/v1", tags=["toolchains"])


@router.get("/toolchains", response_model=list[schemas.Toolchain], summary="Toolchains workers serve, newest first",
            responses=error_responses(401))
async def list_toolchains(db: DatabaseDep, reader: ReaderDep) -> list[schemas.Toolchain]:
    """What decides binary compatibility; admins also see the workers' paths (headers, compiler)."""
    return await reads.toolchain_list(db, admin=reader is not None and reader.has("admin"))


@router.get("/workers", response_model=list[schemas.WorkerInfo], summary="Compile workers: toolchain, current build",
            responses=error_responses(401))
async def list_workers(db: DatabaseDep, _reader: ReaderDep) -> list[schemas.WorkerInfo]:
    """Workers that have not stopped, the live ones first; a worker that died shows as not alive until
    its row is forgotten (a week)."""
    return await reads.worker_list(db)
