"""The registry's models as the API and the pages list them: every model's newest version (searched,
filtered, a page at a time), and one model's versions with what changed between them."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session, aliased

from nestml_registry.compiler.request import PAIR_MARK
from nestml_registry.compiler.sanitise import sanitise
from nestml_registry.registry import metadata, model_text
from nestml_registry.registry.breaks import dropped_names
from nestml_registry.registry.errors import NotFound
from nestml_registry.registry.resolving import find_name, parse_reference, unknown_name
from nestml_registry.registry.tables import (
    Build,
    BuildStatus,
    Characterisation,
    ModelModule,
    ModelName,
    ModelVersion,
    Source,
)

MAX_SEARCH_WORDS = 8
CHUNK = 500


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class ModelQuery:
    """Which models to list: ``q`` (words that must all appear in a model's name, description or the
    names of its parameters and state variables), ``kind``, ``owner``, ``verdict`` (its newest version's
    against its NEST counterpart: agrees, differs, failed, or none: no verdict), and a page (``limit`` rows
    from ``offset``; no limit: all)."""

    q: str = ""
    kind: str | None = None
    owner: str | None = None
    verdict: str | None = None
    limit: int | None = None
    offset: int = 0

    def words(self) -> list[str]:
        return self.q.lower().split()[:MAX_SEARCH_WORDS]


def _newest(query: ModelQuery) -> Select:
    """The newest version of every model ``query`` matches: a version with no newer one of its name (so
    that the most recent page walks the index on ``created_at`` and stops, whatever the number of models)."""
    newer = aliased(ModelVersion)
    verdict = (select(Characterisation.verdict).where(Characterisation.model_version_id == ModelVersion.id)
               .order_by(Characterisation.finished_at.desc(), Characterisation.id.desc()).limit(1)
               .correlate(ModelVersion).scalar_subquery())  # the most recently finished toolchain's
    stmt = (select(ModelVersion.id, ModelVersion.name, ModelVersion.kind, ModelVersion.version,
                   ModelVersion.nestml_name, ModelVersion.created_at, ModelVersion.description, ModelName.owner,
                   verdict.label("verdict"))
            .join(ModelName, ModelName.name == ModelVersion.name)
            .where(~exists().where(newer.name == ModelVersion.name, newer.version > ModelVersion.version)))
    for word in query.words():
        stmt = stmt.where(func.coalesce(ModelVersion.keywords, ModelVersion.name).contains(word, autoescape=True))
    if query.kind:
        stmt = stmt.where(ModelVersion.kind == query.kind)
    if query.owner:
        stmt = stmt.where(ModelName.owner == query.owner)
    if query.verdict:
        stmt = stmt.where(verdict.is_(None) if query.verdict == "none" else verdict == query.verdict)
    return stmt


def list_models(session: Session, query: ModelQuery | None = None) -> tuple[list[dict[str, Any]], int]:
    """The models ``query`` asks for with their newest version, the most recently published first, and
    how many match in all (the page is ``query.limit`` of them)."""
    query = query or ModelQuery()
    stmt = _newest(query)
    if query.words() or query.kind or query.owner or query.verdict:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    else:  # every model: one count over the index of names
        total = session.scalar(select(func.count(ModelVersion.name.distinct()))) or 0
    stmt = stmt.order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc()).offset(query.offset)
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    rows = session.execute(stmt).all()
    ids, names = [r.id for r in rows], [r.name for r in rows]
    links: dict[int, list[str]] = {}
    counts: dict[str, int] = {}
    for chunk in range(0, len(rows), CHUNK):  # IN lists of a bounded length, however many are listed
        for vid, tc in session.execute(select(ModelModule.model_version_id, ModelModule.toolchain)
                                       .where(ModelModule.model_version_id.in_(ids[chunk:chunk + CHUNK]))):
            links.setdefault(vid, []).append(tc)
        counts.update(session.execute(select(ModelVersion.name, func.count()).where(
            ModelVersion.name.in_(names[chunk:chunk + CHUNK])).group_by(ModelVersion.name)).all())
    return [{"name": r.name, "kind": r.kind, "version": r.version, "versions": counts.get(r.name, 1),
             "nestml_name": r.nestml_name, "owner": r.owner, "created_at": _iso(r.created_at),
             "description": r.description or "", "toolchains": sorted(links.get(r.id, [])), "verdict": r.verdict}
            for r in rows], total


def no_such_version(name: str, numbers: list[int], wanted: int) -> NotFound:
    """The error for a version a model does not have, naming the ones it has."""
    numbers = sorted(numbers)
    return NotFound(f"model {name!r} has no version {wanted}: it has versions {', '.join(map(str, numbers)) or 'none'}"
                    "; leave out @VERSION to see them all", {"model": name, "versions": numbers})


def owners(session: Session) -> list[str]:
    """Everyone who owns a model name (for a filter)."""
    return sorted(o for o in session.scalars(select(ModelName.owner).distinct()) if o)


def _modules(session: Session, versions: list[ModelVersion]) -> dict[int, list[dict[str, Any]]]:
    links = list(session.scalars(select(ModelModule).where(ModelModule.model_version_id.in_([v.id for v in versions]))))
    builds = dict(session.execute(select(Build.module_id, func.min(Build.id)).where(
        Build.module_id.in_({link.module_id for link in links}), Build.status == BuildStatus.SUCCEEDED)
        .group_by(Build.module_id)).all()) if links else {}
    out: dict[int, list[dict[str, Any]]] = {}
    for link in links:
        m = link.module
        out.setdefault(link.model_version_id, []).append(
            {"toolchain": link.toolchain, "sha256": m.sha256, "name": m.name, "size": m.size,
             "build": builds.get(m.id)})
    return out


def parameter_changes(newer: list[Any], older: list[Any]) -> list[dict[str, Any]]:
    """What changed in the declared parameters (or state) from ``older`` to ``newer``: added, removed, or
    a new default or unit, by name."""
    def by_name(items: list[Any]) -> dict[str, dict[str, Any]]:
        return {str(i["name"]): i for i in items or [] if isinstance(i, dict) and i.get("name")}

    new, old = by_name(newer), by_name(older)
    changes: list[dict[str, Any]] = []
    for name in sorted(new.keys() | old.keys()):
        a, b = old.get(name), new.get(name)
        if a is None or b is None:
            changes.append({"name": name, "change": "added" if a is None else "removed",
                            "before": (a or {}).get("default"), "after": (b or {}).get("default")})
        elif (a.get("default"), a.get("type")) != (b.get("default"), b.get("type")):
            changes.append({"name": name, "change": "changed", "before": a.get("default"), "after": b.get("default"),
                            "unit_before": a.get("type"), "unit_after": b.get("type")})
    return changes


def _changes(v: ModelVersion, older: ModelVersion | None, code: dict[str, str],
             modules: list[dict[str, Any]], older_modules: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What changed from ``older`` to ``v``: parameters and state, what it drops (``breaks``), and whether
    only comments changed (``comments_only``: ``code`` maps each source's sha256 to its code) with the same
    module (``same_module``)."""
    if older is None:
        return None
    mine, theirs = v.source_sha256 or "", older.source_sha256 or ""
    comments_only = mine != theirs and mine in code and theirs in code and code[mine] == code[theirs]
    return {"from_version": older.version, "parameters": parameter_changes(v.parameters, older.parameters),
            "state": parameter_changes(v.state, older.state), "breaks": dropped_names(older, v),
            "comments_only": comments_only,
            "same_module": bool({m["sha256"] for m in modules} & {m["sha256"] for m in older_modules})}


def _version_dict(v: ModelVersion, src: Source | None, modules: list[dict[str, Any]],
                  changes: dict[str, Any] | None) -> dict[str, Any]:
    text = src.text if src is not None else ""
    comment = model_text.comment_of(text, v.nestml_name)
    return {
        "version": v.version, "kind": v.kind, "nestml_name": v.nestml_name, "content_digest": v.content_digest,
        "created_at": _iso(v.created_at), "published_by": v.published_by,
        "yanked": None if v.yanked_reason is None else {"reason": v.yanked_reason, "by": v.yanked_by,
                                                         "at": _iso(v.yanked_at)},
        "description": v.description or "", "comment": comment,
        "metadata": metadata.merged(metadata.of(comment, [v.name, v.nestml_name], v.description or ""),
                                    v.given_metadata),
        "equations": model_text.block_of(text, "equations", v.nestml_name),
        "parameters": v.parameters, "state": v.state,
        "input_ports": v.input_ports, "receptor_types": v.receptor_types, "variants": v.variants,
        "paired_with": v.name.split(PAIR_MARK, 1)[1] if PAIR_MARK in v.name else None,
        "changes": changes,
        "source": {"name": src.name, "sha256": src.sha256, "text": src.text} if src else None,
        "modules": sorted(modules, key=lambda x: x["toolchain"])}


def model_detail(session: Session, reference: str) -> dict[str, Any]:
    """A model's versions (newest first) with parameters, state, input ports, source text, modules
    and what changed in the parameters since the version before."""
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
    modules = _modules(session, versions)
    code = {sha: sanitise(src.text, src.name).code for sha, src in sources.items()}  # once per source
    out = []
    for v, older in zip(versions, [*versions[1:], None], strict=True):
        changes = _changes(v, older, code, modules.get(v.id, []), modules.get(older.id, []) if older else [])
        out.append(_version_dict(v, sources.get(v.source_sha256 or ""), modules.get(v.id, []), changes))
    return {"name": name, "owner": name_row.owner, "created_at": _iso(name_row.created_at),
            "kind": versions[0].kind if versions else None, "version": versions[0].version if versions else None,
            "versions": out}


def version_diff(session: Session, name: str, older: int, newer: int) -> dict[str, Any]:
    """What changed from version ``older`` to ``newer`` of a model: parameters, state, and the source
    text as a unified diff."""
    detail = model_detail(session, name)
    by_number = {v["version"]: v for v in detail["versions"]}
    missing = [n for n in (older, newer) if n not in by_number]
    if missing:
        raise no_such_version(detail["name"], list(by_number), missing[0])
    a, b = by_number[older], by_number[newer]

    def text(v: dict[str, Any]) -> list[str]:
        return (v["source"] or {}).get("text", "").splitlines(keepends=True)

    def label(v: dict[str, Any]) -> str:
        return f"{detail['name']}@{v['version']}/{(v['source'] or {}).get('name', 'source')}"

    source_diff = "".join(difflib.unified_diff(text(a), text(b), label(a), label(b)))
    return {"model": detail["name"], "from_version": older, "to_version": newer,
            "parameters": parameter_changes(b["parameters"], a["parameters"]),
            "state": parameter_changes(b["state"], a["state"]), "source_diff": source_diff}
