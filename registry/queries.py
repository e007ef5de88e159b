"""Reading and writing models, versions, modules and sources. Every function takes a Session and none
commits: the caller owns the transaction (``with sessionmaker.begin() as session: ...``).

On SQLite use a session that begins IMMEDIATE (the default of ``db.make_sessionmaker``) for anything
that writes; on PostgreSQL ``publish`` locks the model's name row, so publishers of one name are
serialised while publishers of different names run side by side.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nestml_registry.compiler.sources import Source as SourceText
from nestml_registry.registry.db import insert_ignoring_conflicts
from nestml_registry.registry.errors import InvalidInput, NameOwned, NotFound, ResolveError
from nestml_registry.registry.tables import (
    KINDS,
    LOCAL_OWNER,
    AuditEvent,
    Build,
    BuildSource,
    BuildStatus,
    ModelModule,
    ModelName,
    ModelVersion,
    Module,
    Source,
)

logger = logging.getLogger(__name__)

DEFAULT_SUFFIX = "_nestml"
DIGEST_VERSION = 1
MODEL_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REFERENCE_RE = re.compile(r"^(?:nestml:)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:@(?P<version>[0-9]+))?$")
REFERENCE_SYNTAX = "NAME, NAME_nestml or NAME@VERSION (e.g. custom_izh_neuron, custom_izh_neuron_nestml@2)"


@dataclass(frozen=True)
class Published:
    name: str
    kind: str
    version: int
    created: bool  # False: the same content was published before, its version is reused


@dataclass(frozen=True)
class Resolution:
    model: str  # the name NEST registers
    version: int
    kind: str
    module_sha256: str
    module_name: str
    location: str  # of the .so in the artifact store
    toolchain: str


# -- sources, modules, audit ------------------------------------------------------------------------


def get_or_create_sources(session: Session, sources: Iterable[tuple[str, str, str]]) -> list[Source]:
    """The rows of ``(name, sha256, text)`` sources, in the given order, inserting those not stored yet.
    The sha256 must be that of the UTF-8 text. Safe when other transactions insert the same sources."""
    given = list(sources)
    for name, sha, text in given:
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != sha:
            raise InvalidInput(f"source {name!r}: sha256 {sha} is not the digest of its text; "
                               "hash the normalised UTF-8 text (compiler.sources.Source.sha256)")
    new = {sha: {"sha256": sha, "name": name, "text": text} for name, sha, text in given}
    if new:  # sorted: concurrent transactions take the unique-index locks in one order
        session.execute(insert_ignoring_conflicts(session, Source, [new[k] for k in sorted(new)], ["sha256"]))
    rows = {s.sha256: s for s in session.scalars(select(Source).where(Source.sha256.in_(list(new))))}
    return [rows[sha] for _, sha, _ in given]


def get_or_create_module(session: Session, sha256: str, name: str, size: int, toolchain: str,
                         location: str) -> Module:
    """The module row for an artifact, inserted if new (safe under concurrency)."""
    session.execute(insert_ignoring_conflicts(session, Module, [{
        "sha256": sha256, "name": name, "size": size, "toolchain": toolchain, "location": location,
        "registers": []}], ["sha256"]))
    return session.execute(select(Module).where(Module.sha256 == sha256)
                           .execution_options(populate_existing=True)).scalar_one()


def get_module(session: Session, sha256: str) -> Module:
    module = session.scalars(select(Module).where(Module.sha256 == sha256)).one_or_none()
    if module is None:
        raise NotFound(f"no module with sha256 {sha256}: list the models (GET /v1/models) to find one")
    return module


def _declared(source: Source) -> set[str]:
    """The model names a stored source declares (the compiler's rule: ``model <name>:`` lines)."""
    return {m.name for m in SourceText(source.name, source.text).models()}


def record_event(session: Session, actor: str | int | None, action: str, subject: str | None,
                 details: dict[str, Any] | None = None) -> AuditEvent:
    event = AuditEvent(actor=None if actor is None else str(actor), action=action, subject=subject,
                       details=details or {})
    session.add(event)
    return event


# -- publishing -------------------------------------------------------------------------------------


def content_digest(source_sha256s: Iterable[str], suffix: str, pairs: Sequence[dict[str, Any]]) -> str:
    """sha256 over what decides a model's behaviour: its sources, the name suffix and its pairs."""
    doc = {"v": DIGEST_VERSION, "sources": sorted(set(source_sha256s)), "suffix": suffix,
           "pairs": sorted(json.dumps(p, sort_keys=True) for p in pairs)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _model_digest(model: dict[str, Any], files: dict[str, tuple[str, set[str]]], suffix: str,
                  pairs: list[dict[str, Any]]) -> tuple[str, str | None]:
    """(content digest, source sha256) of one model of a build; ``files`` maps each source file name to
    its sha256 and the models it declares. A paired model depends on its partner's source too."""
    own = model.get("source_sha256") or files.get(model.get("source") or "", (None, set()))[0]
    base = model.get("nestml_name")
    if own is None or (pairs and base is None):  # unknown: every source and pair of the build counts
        return content_digest([sha for sha, _ in files.values()], suffix, pairs), own
    mine = [p for p in pairs if base in (p.get("neuron"), p.get("synapse"))]
    partners = {p.get(role) for p in mine for role in ("neuron", "synapse")}
    shas = [own] + [sha for sha, declared in files.values() if declared & partners]
    return content_digest(shas, suffix, mine), own


def publish(session: Session, build: Build, module_row: Module, models: list[dict[str, Any]],
            actor: str | int | None, *, admin: bool = False) -> list[Published]:
    """Record the models a succeeded build's module registers, as versions of their names.

    Each model dict has the keys of ``nestml_registry.compiler.result.ModelInfo`` (name, kind, nestml_name, source,
    parameters, state, input_ports, receptor_types, variants), plus ``source_sha256`` if known. A new
    name is owned by ``actor``; a name owned by someone else raises :class:`NameOwned` unless ``admin``.
    New content gives the next version; content published before reuses its version. The version is
    linked to ``module_row`` for the build's toolchain unless it already has a module there (the first
    module stays: what a simulation resolved once resolves the same way later). ``module_row.registers``
    gets every name the module registers, which ``resolve_many`` checks.

    An error leaves the session's transaction half done: roll it back (a worker then finishes the build
    as failed with the error's message, in a new transaction).
    """
    if module_row.id is None:
        session.flush()
    request = build.request or {}
    suffix = request.get("suffix", DEFAULT_SUFFIX) or ""
    pairs = list(request.get("pairs") or [])
    files = {bs.name: (bs.source.sha256, _declared(bs.source)) for bs in build.sources}
    owner = LOCAL_OWNER if actor is None else str(actor)
    registered = {m["name"] for m in models} | {v for m in models for v in m.get("variants") or []}
    module_row.registers = sorted(set(module_row.registers or []) | registered)
    published = []
    for model in sorted(models, key=lambda m: m["name"]):  # one lock order for every publisher
        name, kind = model["name"], model.get("kind")
        if not MODEL_NAME_RE.match(name or "") or kind not in KINDS:
            raise InvalidInput(f"cannot publish model {name!r} of kind {kind!r}: a model needs a NEST name "
                               f"(letters, digits, '_') and a kind ({' or '.join(KINDS)})")
        digest, source_sha = _model_digest(model, files, suffix, pairs)
        session.execute(insert_ignoring_conflicts(session, ModelName, [{"name": name, "owner": owner}], ["name"]))
        name_row = session.execute(select(ModelName).where(ModelName.name == name).with_for_update()
                                   .execution_options(populate_existing=True)).scalar_one()
        if (name_row.owner or LOCAL_OWNER) != owner and not admin:
            raise NameOwned(
                f"model name {name!r} belongs to {name_row.owner or LOCAL_OWNER!r}, so {owner!r} cannot publish a new "
                "version of it: rename the model in its source (the 'model NAME:' line), or ask its owner or an "
                "admin to publish it (an admin can transfer it: nestml-registry owner set NAME USER)",
                {"model": name, "owner": name_row.owner or LOCAL_OWNER, "actor": owner})
        version = session.scalars(select(ModelVersion).where(ModelVersion.name == name,
                                                             ModelVersion.content_digest == digest)).one_or_none()
        created = version is None
        if version is None:
            latest = session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.name == name)) or 0
            version = ModelVersion(
                name=name, version=latest + 1, content_digest=digest, nestml_name=model.get("nestml_name"),
                kind=kind, source_sha256=source_sha, parameters=model.get("parameters") or [],
                state=model.get("state") or [], input_ports=model.get("input_ports") or [],
                receptor_types=model.get("receptor_types") or {}, variants=model.get("variants") or [])
            session.add(version)
            session.flush()
        link = session.get(ModelModule, (version.id, build.toolchain))
        if link is None:
            session.add(ModelModule(model_version_id=version.id, toolchain=build.toolchain, module_id=module_row.id))
        elif link.module_id != module_row.id:
            logger.info("%s@%d already has module %d on %s; keeping it", name, version.version, link.module_id,
                        build.toolchain)
        published.append(Published(name, kind, version.version, created))
    session.flush()
    record_event(session, actor, "publish", module_row.sha256, {
        "build": build.id, "toolchain": build.toolchain,
        "models": [{"name": p.name, "version": p.version, "created": p.created} for p in published]})
    return published


# -- resolving --------------------------------------------------------------------------------------


def parse_reference(text: str) -> tuple[str, int | None]:
    """``(name, version or None)`` of ``NAME``, ``NAME_nestml``, ``NAME@VERSION`` (``nestml:`` optional)."""
    m = _REFERENCE_RE.match(text.strip()) if isinstance(text, str) else None
    if m is None or (m["version"] is not None and int(m["version"]) < 1):
        raise ResolveError(f"invalid model reference {text!r}: write {REFERENCE_SYNTAX}; versions start at 1",
                           {"reference": text, "syntax": REFERENCE_SYNTAX})
    return m["name"], int(m["version"]) if m["version"] else None


def first_error(build: Build) -> str | None:
    """The first error of a failed build, as a compiler prints it."""
    for d in build.diagnostics or []:
        if isinstance(d, dict) and d.get("severity") == "error":
            where = d.get("file") or "<build>"
            if d.get("line") is not None:
                where += f":{d['line']}" + (f":{d['column']}" if d.get("column") is not None else "")
            return f"{where}: error: {d.get('message', '')}"
    return build.error


def _build_info(build: Build) -> dict[str, Any]:
    return {"id": build.id, "status": str(build.status), "toolchain": build.toolchain, "error": first_error(build),
            "stage": build.stage}


def _resolve_quickly(session: Session, ref_name: str, wanted: int | None, toolchain: str) -> Resolution | None:
    """The common case in one query of plain rows: the version exists and has a module for the toolchain.
    None otherwise (:func:`resolve` then finds out what exists instead, to say so)."""
    newest = select(ModelVersion.name, func.max(ModelVersion.version).label("version")) \
        .where(ModelVersion.name.in_([ref_name, ref_name + DEFAULT_SUFFIX])).group_by(ModelVersion.name)
    if wanted is not None:
        newest = select(ModelVersion.name, ModelVersion.version) \
            .where(ModelVersion.name.in_([ref_name, ref_name + DEFAULT_SUFFIX]), ModelVersion.version == wanted)
    chosen = newest.subquery()
    rows = session.execute(
        select(ModelVersion.name, ModelVersion.version, ModelVersion.kind, Module.sha256, Module.name, Module.location)
        .join(chosen, (chosen.c.name == ModelVersion.name) & (chosen.c.version == ModelVersion.version))
        .join(ModelModule, (ModelModule.model_version_id == ModelVersion.id) & (ModelModule.toolchain == toolchain))
        .join(Module, Module.id == ModelModule.module_id)).all()
    exact = [r for r in rows if r[0] == ref_name]
    if not exact and rows and session.get(ModelName, ref_name) is None:  # NAME for NAME_nestml
        exact = rows
    if not exact:
        return None
    name, version, kind, sha, module_name, location = exact[0]
    return Resolution(name, version, kind, sha, module_name, location, toolchain)


def _find_name(session: Session, name: str) -> str | None:
    for candidate in (name, name + DEFAULT_SUFFIX):
        if session.get(ModelName, candidate) is not None:
            return candidate
    return None


def _unfinished_build(session: Session, toolchain: str, *, source_sha256: str | None = None,
                      registers: str | None = None) -> Build | None:
    """The newest queued or running build (else the newest failed one) on ``toolchain`` whose sources
    include ``source_sha256``, or that declares a model registering as ``registers`` (or its _nestml)."""
    query = (select(Build).join(BuildSource, BuildSource.build_id == Build.id)
             .join(Source, Source.id == BuildSource.source_id)
             .where(Build.toolchain == toolchain, Build.status != BuildStatus.SUCCEEDED))
    if source_sha256 is not None:
        query = query.where(Source.sha256 == source_sha256)
    if registers is not None:
        base = registers.removesuffix(DEFAULT_SUFFIX)
        query = query.where(Source.text.contains(base, autoescape=True))
    found = []
    for build in session.scalars(query.order_by(Build.created_at.desc(), Build.id.desc()).limit(50)).unique():
        if registers is not None:
            suffix = (build.request or {}).get("suffix", DEFAULT_SUFFIX) or ""
            names = {n + suffix for bs in build.sources for n in _declared(bs.source)}
            if not names & {registers, registers + DEFAULT_SUFFIX}:
                continue
        found.append(build)
    active = [b for b in found if b.status in (BuildStatus.QUEUED, BuildStatus.RUNNING)]
    return (active or found or [None])[0]


def _unknown_name(session: Session, reference: str, name: str, toolchain: str) -> ResolveError:
    names = list(session.scalars(select(ModelName.name)))
    stripped = {n.removesuffix(DEFAULT_SUFFIX): n for n in names}
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6) + [
        stripped[s] for s in difflib.get_close_matches(name, list(stripped), n=5, cutoff=0.6)]
    close = list(dict.fromkeys(close))[:5]
    details: dict[str, Any] = {"reference": reference, "toolchain": toolchain, "close_names": close}
    build = _unfinished_build(session, toolchain, registers=name)
    if build is not None:
        details["build"] = _build_info(build)
        if build.status == BuildStatus.FAILED:
            return ResolveError(f"no model {name!r} in the registry: its build {build.id} failed: "
                                f"{first_error(build)}; fix the source and push it again", details)
        return ResolveError(f"model {name!r} is not in the registry yet: its build {build.id} is {build.status}; "
                            f"wait for it to finish (GET /v1/builds/{build.id})", details)
    hint = f"did you mean {', '.join(close)}?" if close else "push its .nestml source first (nestml-registry push)"
    return ResolveError(f"no model {name!r} (nor {name + DEFAULT_SUFFIX!r}) in the registry: {hint}", details)


def resolve(session: Session, reference: str, toolchain: str) -> Resolution:
    """The module to load for ``reference`` on ``toolchain``: the newest version unless ``@VERSION``.
    Raises :class:`ResolveError` whose message and ``details`` say what exists instead."""
    ref_name, wanted = parse_reference(reference)
    found = _resolve_quickly(session, ref_name, wanted, toolchain)
    if found is not None:
        return found
    name = _find_name(session, ref_name)
    if name is None:
        raise _unknown_name(session, reference, ref_name, toolchain)
    versions = list(session.scalars(select(ModelVersion).where(ModelVersion.name == name)
                                    .order_by(ModelVersion.version)))
    numbers = [v.version for v in versions]
    details: dict[str, Any] = {"reference": reference, "model": name, "toolchain": toolchain, "versions": numbers}
    if not versions:  # a name row without versions: only if a publish was rolled back by hand
        raise ResolveError(f"model {name!r} has no published version: push its source", details)
    if wanted is not None and wanted not in numbers:
        raise ResolveError(f"model {name!r} has no version {wanted}: it has versions "
                           f"{', '.join(map(str, numbers))}; use one of them or leave out @VERSION for the newest",
                           details)
    chosen = versions[-1] if wanted is None else versions[numbers.index(wanted)]
    link = session.get(ModelModule, (chosen.id, toolchain))
    if link is not None:
        module = link.module
        return Resolution(name, chosen.version, chosen.kind, module.sha256, module.name, module.location, toolchain)
    toolchains = sorted(session.scalars(select(ModelModule.toolchain)
                                        .where(ModelModule.model_version_id == chosen.id)))
    details["toolchains"] = toolchains
    what = f"{name}@{chosen.version}"
    build = _unfinished_build(session, toolchain, source_sha256=chosen.source_sha256) \
        if chosen.source_sha256 else None
    if build is not None:
        details["build"] = _build_info(build)
        if build.status == BuildStatus.FAILED:
            raise ResolveError(f"{what} has no module for toolchain {toolchain}: its build {build.id} for this "
                               f"toolchain failed: {first_error(build)}", details)
        raise ResolveError(f"{what} has no module for toolchain {toolchain} yet: its build {build.id} is "
                           f"{build.status}; wait for it to finish (GET /v1/builds/{build.id})", details)
    built_for = ", ".join(toolchains) or "no toolchain"
    raise ResolveError(f"{what} has no module for toolchain {toolchain}; it is built for {built_for}. Push its source "
                       "to a registry with a worker for this toolchain, or run on a machine with one of those",
                       details)


def resolve_many(session: Session, references: Sequence[str], toolchain: str) -> list[Resolution]:
    """Resolve every reference (results in the same order) for one NEST process: refuses two versions of
    one model, and two modules that register the same name (NEST cannot load both)."""
    results: list[Resolution] = []
    errors: list[ResolveError] = []
    for ref in references:
        try:
            results.append(resolve(session, ref, toolchain))
        except ResolveError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ResolveError(f"{len(errors)} model references do not resolve: " + "; ".join(e.message for e in errors),
                           {"errors": [{"message": e.message, **e.details} for e in errors]})
    by_model: dict[str, dict[int, list[str]]] = {}
    for ref, res in zip(references, results, strict=True):
        by_model.setdefault(res.model, {}).setdefault(res.version, []).append(ref)
    conflicts = [{"model": model, "versions": {str(v): refs for v, refs in sorted(vs.items())}}
                 for model, vs in by_model.items() if len(vs) > 1]
    if conflicts:
        text = "; ".join(f"{c['model']} as " + " and ".join(f"version {v} ({', '.join(refs)})"
                                                            for v, refs in c["versions"].items())
                         for c in conflicts)
        raise ResolveError(f"one simulation asks for two versions of a model: {text}. One NEST process can load only "
                           "one version of a model: refer to the same version everywhere (NAME@VERSION)",
                           {"conflicts": conflicts})
    _check_modules_compatible(session, results)
    return results


def _check_modules_compatible(session: Session, results: list[Resolution]) -> None:
    modules = {m.sha256: m for m in session.scalars(
        select(Module).where(Module.sha256.in_({r.module_sha256 for r in results})))}
    seen: dict[str, str] = {}  # registered name -> module sha256
    clashes = []
    for sha in sorted(modules):
        for registered in modules[sha].registers or []:
            if registered in seen and seen[registered] != sha:
                clashes.append({"name": registered, "modules": [modules[seen[registered]].name, modules[sha].name]})
            seen.setdefault(registered, sha)
    if clashes:
        text = ", ".join(f"{c['name']} (in {c['modules'][0]} and {c['modules'][1]})" for c in clashes)
        raise ResolveError(f"the models resolve to modules that register the same names: {text}; NEST cannot load "
                           "both. Push those models' sources together into one module and refer to its versions",
                           {"module_conflicts": clashes})


# -- listing ----------------------------------------------------------------------------------------


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
    name = _find_name(session, ref_name)
    if name is None:
        err = _unknown_name(session, reference, ref_name, "")
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
