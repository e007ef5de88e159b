"""``GET /v1/toolchains``: the toolchains compile workers serve, the most recently seen first."""

from __future__ import annotations

from fastapi import APIRouter

from registry import toolchains
from service import schemas
from service.deps import ReaderDep, SessionDep
from service.errors import error_responses

router = APIRouter(prefix="/v1", tags=["toolchains"])


@router.get("/toolchains", response_model=list[schemas.Toolchain], summary="Toolchains workers serve, newest first",
            responses=error_responses(401))
def list_toolchains(session: SessionDep, _reader: ReaderDep) -> list[schemas.Toolchain]:
    return [schemas.Toolchain(id=t.id, first_seen=t.first_seen, last_seen=t.last_seen, details=t.details or {})
            for t in toolchains.known(session)]
