"""The documents that both the JSON API and the web pages answer with (one source of truth): each
function reads through :class:`~nestml_registry.service.api.database.Database` and returns API schemas."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from nestml_registry.registry import (
    build_history,
    characterisations,
    listing,
    owners,
    queue,
    resolving,
    toolchains,
    workers,
)
from nestml_registry.registry.listing import ModelQuery
from nestml_registry.registry.tables import Build as BuildRow
from nestml_registry.registry.tables import BuildStatus
from nestml_registry.service.api import characterisation_schemas, schemas
from nestml_registry.service.api.database import Database
from nestml_registry.service.api.documents import (
    build_document,
    build_summary_document,
    model_version_document,
    toolchain_document,
    worker_document,
)

# the fields of compiler.toolchain.Toolchain.to_dict() that hold no path of the worker's machine
PUBLIC_TOOLCHAIN_FIELDS = ("id", "fingerprint", "nest_version", "cxx_abi", "cxx_name", "cxx_version", "cflags",
                           "platform", "nestml_version", "sandboxed")


@dataclass(frozen=True)
class ModelPage:
    models: list[schemas.ModelSummary]
    total: int


async def models(db: Database, query: ModelQuery) -> ModelPage:
    rows, total = await db.read(listing.list_models, query)
    return ModelPage([schemas.ModelSummary.model_validate(m) for m in rows], total)


async def model(db: Database, reference: str) -> schemas.ModelDetail:
    """All versions, newest first; ``NAME@VERSION`` lists only that version."""
    _, wanted = resolving.parse_reference(reference)  # InvalidReference: 422
    detail = await db.read(listing.model_detail, reference)
    versions = detail["versions"]
    if wanted is not None:
        versions = [v for v in versions if v["version"] == wanted]
        if not versions:
            raise listing.no_such_version(detail["name"], [v["version"] for v in detail["versions"]], wanted)
    return schemas.ModelDetail(name=detail["name"], owner=detail.get("owner"), created_at=detail.get("created_at"),
                               kind=versions[0]["kind"] if versions else None,
                               version=versions[0]["version"] if versions else None,
                               versions=[model_version_document(v) for v in versions],
                               all_versions=[schemas.VersionNumber(version=v["version"], created_at=v.get("created_at"),
                                                                   yanked=(v.get("yanked") or {}).get("reason"))
                                             for v in detail["versions"]])


def _build(session: Session, build_id: int) -> schemas.Build:
    return build_document(session, queue.get_build(session, build_id))


def build_and_submitter(session: Session, build_id: int) -> tuple[BuildRow, str | None]:
    """The build's row, and its submitter's principal if it failed (who may read its log and sources)."""
    row = queue.get_build(session, build_id)
    return row, owners.submitter_of(session, row)[0] if row.status == BuildStatus.FAILED else None


def build_with_row(session: Session, build_id: int) -> tuple[schemas.Build, BuildRow, str | None]:
    """The build's document, its row and (if it failed) its submitter, in one read (the build page)."""
    row, submitter = build_and_submitter(session, build_id)
    return build_document(session, row), row, submitter


async def build(db: Database, build_id: int) -> schemas.Build:
    return await db.read(_build, build_id)


def _builds(session: Session, status: str | None, submitter: str | None, limit: int) -> list[schemas.BuildSummary]:
    return [build_summary_document(r) for r in build_history.recent_builds(session, status, submitter, limit)]


async def builds(db: Database, status: BuildStatus | None = None, submitter: str | None = None,
                 limit: int = 50) -> list[schemas.BuildSummary]:
    return await db.read(_builds, status.value if status is not None else None, submitter, limit)


def _workers(session: Session) -> list[schemas.WorkerInfo]:
    return [worker_document(w, alive, stage) for w, alive, stage in workers.recent(session)]


async def worker_list(db: Database) -> list[schemas.WorkerInfo]:
    return await db.read(_workers)


async def toolchain_list(db: Database, admin: bool) -> list[schemas.Toolchain]:
    """What decides binary compatibility; admins also see the workers' paths (headers, compiler)."""
    def shown(details: dict) -> dict:
        return dict(details) if admin else {k: details[k] for k in PUBLIC_TOOLCHAIN_FIELDS if k in details}

    return [toolchain_document(t, shown(t.details or {})) for t in await db.read(toolchains.known)]


async def characterisation(db: Database, name: str, version: int,
                           toolchain: str | None = None) -> characterisation_schemas.Characterisation:
    document = await db.read(characterisations.document, name, version, toolchain)
    return characterisation_schemas.Characterisation.model_validate(document)


def _live(session: Session) -> list[str]:
    return [t.toolchain for t in workers.by_toolchain(session) if t.live > 0]


async def live_toolchains(db: Database) -> list[str]:
    """Toolchains a live worker serves, the most recently registered first."""
    return await db.read(_live)
