"""The registry's models as the API lists them: every model's newest version, and one model's versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nestml_registry.registry.errors import NotFound
from nestml_registry.registry.resolving import find_name, parse_reference, unknown_name
from nestml_registry.registry.tables import (
    ModelModule,
    ModelName,
    ModelVersion,
    Source,
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def list_models(session: Session) -> list[dict[str, Any]]:
    """Every model with its newest version, the most recently published first."""
    newest = (select(ModelVersion.name, func.max(ModelVersion.version).label("version"),
                     func.count().label("count")).group_by(ModelVersion.name).subquery())
    rows = session.execute(
        select(ModelVersion, ModelName.owner, newest.c.count)
        .join(newest, (ModelVersion.name == newest.c.name) & (ModelVersion.version == newest.c.version))
        .join(ModelName, ModelName.name == ModelVersion.name)
        .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())).all()
    links: dict[int, list[str]] = {}
    for vid, tc in session.execute(select(ModelModule.model_version_id, ModelModule.toolchain).where(
            ModelModule.model_version_id.in_([v.id for v, _, _ in rows]))):
        links.setdefault(vid, []).append(tc)
    return [{"name": v.name, "kind": v.kind, "version": v.version, "versions": count, "nestml_name": v.nestml_name,
             "owner": owner, "created_at": _iso(v.created_at), "toolchains": sorted(links.get(v.id, []))}
            for v, owner, count in rows]


def model_detail(session: Session, reference: str) -> dict[str, Any]:
    """A model's versions (newest first) with parameters, state, input ports, source text and modules."""
    ref_name, _ = parse_reference(reference)
    name = find_name(session, ref_name)
    if name is None:
        err = unknown_name(session, reference, ref_name, "")
        raise NotFound(err.message, err.details)
    name_row = session.get(ModelName, name)
    assert name_row is not None
    versions = list(session.scalars(select(ModelVersion).where(ModelVersion.name == name)
                                    .order_by(ModelVersion.version.desc())))
    sources = {s.sha256: s for s in session.scalars(
        select(Source).where(Source.sha256.in_({v.source_sha256 for v in versions if v.source_sha256})))}
    links: dict[int, list[dict[str, Any]]] = {}
    for link in session.scalars(select(ModelModule).where(ModelModule.model_version_id.in_([v.id for v in versions]))):
        m = link.module
        links.setdefault(link.model_version_id, []).append(
            {"toolchain": link.toolchain, "sha256": m.sha256, "name": m.name, "size": m.size})
    out = []
    for v in versions:
        src = sources.get(v.source_sha256 or "")
        out.append({
            "version": v.version, "kind": v.kind, "nestml_name": v.nestml_name, "content_digest": v.content_digest,
            "created_at": _iso(v.created_at), "parameters": v.parameters, "state": v.state,
            "input_ports": v.input_ports, "receptor_types": v.receptor_types, "variants": v.variants,
            "source": {"name": src.name, "sha256": src.sha256, "text": src.text} if src else None,
            "modules": sorted(links.get(v.id, []), key=lambda x: x["toolchain"])})
    return {"name": name, "owner": name_row.owner, "created_at": _iso(name_row.created_at),
            "kind": versions[0].kind if versions else None, "version": versions[0].version if versions else None,
            "versions": out}
