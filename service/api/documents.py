"""API documents built from nestml_registry.registry rows (kept apart from the routes that answer with them)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from nestml_registry.registry import workers
from nestml_registry.registry.build_history import BuildRow as BuildHistoryRow
from nestml_registry.registry.resolving import Resolution
from nestml_registry.registry.tables import (
    AuditEvent,
    BuildStatus,
    KnownToolchain,
    ModelModule,
    ModelVersion,
    Module,
    WorkerRow,
)
from nestml_registry.registry.tables import Build as BuildRow
from nestml_registry.service.api import schemas


def artifact_url(sha256: str) -> str:
    return f"/v1/modules/{sha256}/artifact"


def module_ref(module: Module) -> schemas.ModuleRef:
    return schemas.ModuleRef(name=module.name, sha256=module.sha256, size=module.size,
                             url=artifact_url(module.sha256))


def _kinds(session: Session, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    names = sorted({name for name, _ in wanted})
    rows = session.execute(select(ModelVersion.name, ModelVersion.version, ModelVersion.kind)
                           .where(ModelVersion.name.in_(names))).all() if names else []
    return {(name, version): kind for name, version, kind in rows}


def models_of_module(session: Session, module: Module) -> list[schemas.ModelRef]:
    """The model versions that resolve to ``module``."""
    rows = session.execute(select(ModelVersion.name, ModelVersion.kind, ModelVersion.version)
                           .join(ModelModule, ModelModule.model_version_id == ModelVersion.id)
                           .where(ModelModule.module_id == module.id)
                           .order_by(ModelVersion.name, ModelVersion.version)).all()
    return [schemas.ModelRef.model_validate({"name": n, "kind": k, "version": v}) for n, k, v in rows]


def models_published_by(session: Session, build: BuildRow) -> list[schemas.ModelRef]:
    """The models a succeeded build published, with their versions (from the publish event the worker
    recorded with the build's id; else the versions that resolve to the build's module)."""
    module = build.module
    if module is None:
        return []
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "publish",
                                                      AuditEvent.subject == module.sha256)
                             .order_by(AuditEvent.id.desc()).limit(50))
    for event in events:
        details = event.details or {}
        if details.get("build") != build.id:
            continue
        entries = [m for m in details.get("models") or [] if isinstance(m, dict)]
        wanted = [(m.get("name"), m.get("version"), m.get("breaks") or {}) for m in entries]
        known = [(n, v) for n, v, _ in wanted if isinstance(n, str) and isinstance(v, int)]
        kinds: dict[Any, str] = _kinds(session, known)
        return [schemas.ModelRef.model_validate({"name": n, "kind": kinds[(n, v)], "version": v, "breaks": b})
                for n, v, b in wanted if (n, v) in kinds]
    return models_of_module(session, module)


def build_document(session: Session, build: BuildRow) -> schemas.Build:
    request = dict(build.request or {})
    return schemas.Build(
        id=build.id, key=build.key, status=BuildStatus(build.status).value,
        toolchain=build.toolchain, stage=build.stage, attempts=build.attempts, max_attempts=build.max_attempts,
        error=build.error, created_at=build.created_at, started_at=build.started_at, finished_at=build.finished_at,
        module=module_ref(build.module) if build.module is not None else None,
        models=models_published_by(session, build),
        diagnostics=[schemas.Diagnostic.model_validate(d) for d in build.diagnostics or [] if isinstance(d, dict)],
        sources=[schemas.SourceRef(name=bs.name, sha256=bs.source.sha256) for bs in build.sources],
        request={k: request[k] for k in ("module", "suffix", "pairs", "weight_variables", "delay_variables")
                 if k in request},
        log_url=f"/v1/builds/{build.id}/log", warnings=_warnings(session, build), timings=dict(build.timings or {}))


def _warnings(session: Session, build: BuildRow) -> list[str]:
    """A queued build whose toolchain has no live worker waits until one starts: say so."""
    if build.status != BuildStatus.QUEUED:
        return []
    live, last = workers.of_toolchain(session, build.toolchain)
    if live:
        return []
    since = f"none has been since {last:%Y-%m-%d %H:%M:%S} UTC" if last else "none has reported yet"
    return [f"queued, but no compile worker for the toolchain {build.toolchain} is alive ({since}): the build waits "
            "until one starts; start one with `nestml-registry worker` on a machine of that toolchain"]


def resolution_document(r: Resolution) -> schemas.Resolution:
    return schemas.Resolution(model=r.model, version=r.version, kind=cast(schemas.Kind, r.kind), toolchain=r.toolchain,
                              module=schemas.ModuleRef(name=r.module_name, sha256=r.module_sha256,
                                                       url=artifact_url(r.module_sha256)), yanked=r.yanked)


def _variables(items: list[Any]) -> list[schemas.Variable]:
    out = []
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            out.append(schemas.Variable.model_validate({**item, "unit": item.get("unit") or item.get("type")}))
    return out


def model_version_document(v: dict[str, Any]) -> schemas.ModelVersion:
    """One version of ``registry.listing.model_detail``."""
    return schemas.ModelVersion(
        version=v["version"], kind=v["kind"], nestml_name=v.get("nestml_name"), content_digest=v["content_digest"],
        created_at=v.get("created_at"), parameters=_variables(v.get("parameters") or []),
        state=_variables(v.get("state") or []),
        input_ports=[schemas.InputPort.model_validate(p) for p in v.get("input_ports") or []
                     if isinstance(p, dict) and isinstance(p.get("name"), str)],
        receptor_types=v.get("receptor_types") or {}, variants=list(v.get("variants") or []),
        source=schemas.SourceText(**v["source"]) if v.get("source") else None,
        published_by=v.get("published_by"),
        yanked=schemas.Yanked.model_validate(v["yanked"]) if v.get("yanked") else None,
        description=v.get("description") or "", comment=v.get("comment") or "",
        equations=v.get("equations") or "", paired_with=v.get("paired_with"),
        metadata=schemas.Metadata.model_validate(v.get("metadata") or {}),
        changes=schemas.VersionChanges.model_validate(v["changes"]) if v.get("changes") else None,
        modules=[schemas.ModuleLink(**m, url=artifact_url(m["sha256"])) for m in v.get("modules") or []])


def module_document(session: Session, module: Module) -> schemas.Module:
    return schemas.Module(sha256=module.sha256, name=module.name, size=module.size, toolchain=module.toolchain,
                          created_at=module.created_at, registers=list(module.registers or []),
                          models=models_of_module(session, module), url=artifact_url(module.sha256))


def toolchain_document(t: KnownToolchain, details: dict[str, Any]) -> schemas.Toolchain:
    """A known toolchain, with the ``details`` this reader may see."""
    return schemas.Toolchain(id=t.id, first_seen=t.first_seen, last_seen=t.last_seen, details=details,
                             approved=t.approved, first_seen_by=t.first_seen_by)


def audit_event_document(e: AuditEvent) -> schemas.AuditEvent:
    return schemas.AuditEvent(id=e.id, at=e.at, actor=e.actor, action=e.action, subject=e.subject,
                              details=e.details or {})


def build_summary_document(row: BuildHistoryRow) -> schemas.BuildSummary:
    b = row.build
    return schemas.BuildSummary(
        id=b.id, status=BuildStatus(b.status).value, toolchain=b.toolchain, stage=b.stage, attempts=b.attempts,
        created_at=b.created_at, started_at=b.started_at, finished_at=b.finished_at, submitted_by=row.submitted_by,
        module=b.module.name if b.module is not None else (b.request or {}).get("module"),
        sources=[bs.name for bs in b.sources], error=b.error, url=f"/v1/builds/{b.id}")


def worker_document(w: WorkerRow, alive: bool, stage: str | None) -> schemas.WorkerInfo:
    return schemas.WorkerInfo(id=w.id, toolchain=w.toolchain, host=w.host, alive=alive, started_at=w.started_at,
                              heartbeat_at=w.heartbeat_at, build=w.build_id, stage=stage, builds=w.builds)
