"""Model references (``NAME``, ``NAME_nestml``, ``NAME@VERSION``) resolved to the module a simulation
loads on its toolchain; when one does not resolve, a :class:`~nestml_registry.registry.errors.ResolveError`
subclass says what exists instead."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nestml_registry.compiler.request import PAIR_MARK
from nestml_registry.registry.errors import (
    InvalidReference,
    ModuleClash,
    NotBuilt,
    ResolveError,
    UnknownModel,
    VersionConflict,
)
from nestml_registry.registry.records import declared_models
from nestml_registry.registry.tables import (
    Build,
    BuildSource,
    BuildStatus,
    ModelModule,
    ModelName,
    ModelVersion,
    Module,
    Source,
)

DEFAULT_SUFFIX = "_nestml"
_REFERENCE_RE = re.compile(r"^(?:nestml:)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:@(?P<version>[0-9]+))?$")
REFERENCE_SYNTAX = "NAME, NAME_nestml or NAME@VERSION (e.g. custom_izh_neuron, custom_izh_neuron_nestml@2)"


@dataclass(frozen=True)
class Resolution:
    model: str  # the name NEST registers
    version: int
    kind: str
    module_sha256: str
    module_name: str
    location: str  # of the .so in the artifact store
    toolchain: str
    yanked: str | None = None  # the reason, for a pinned reference to a yanked version


def parse_reference(text: str) -> tuple[str, int | None]:
    """``(name, version or None)`` of ``NAME``, ``NAME_nestml``, ``NAME@VERSION`` (``nestml:`` optional)."""
    m = _REFERENCE_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None or (m["version"] is not None and int(m["version"]) < 1):
        raise InvalidReference(f"invalid model reference {text!r}: write {REFERENCE_SYNTAX}; versions start at 1",
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
        .where(ModelVersion.name.in_([ref_name, ref_name + DEFAULT_SUFFIX]), ModelVersion.yanked_reason.is_(None)) \
        .group_by(ModelVersion.name)
    if wanted is not None:
        newest = select(ModelVersion.name, ModelVersion.version) \
            .where(ModelVersion.name.in_([ref_name, ref_name + DEFAULT_SUFFIX]), ModelVersion.version == wanted)
    chosen = newest.subquery()
    rows = session.execute(
        select(ModelVersion.name, ModelVersion.version, ModelVersion.kind, Module.sha256, Module.name, Module.location,
               ModelVersion.yanked_reason)
        .join(chosen, (chosen.c.name == ModelVersion.name) & (chosen.c.version == ModelVersion.version))
        .join(ModelModule, (ModelModule.model_version_id == ModelVersion.id) & (ModelModule.toolchain == toolchain))
        .join(Module, Module.id == ModelModule.module_id)).all()
    exact: Sequence[Any] = [r for r in rows if r[0] == ref_name]
    if not exact and rows and session.get(ModelName, ref_name) is None:  # NAME for NAME_nestml
        exact = rows
    if not exact:
        return None
    name, version, kind, sha, module_name, location, yanked = exact[0]
    return Resolution(name, version, kind, sha, module_name, location, toolchain, yanked)


def find_name(session: Session, name: str) -> str | None:
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
            names = {n + suffix for bs in build.sources for n in declared_models(bs.source)}
            if not names & {registers, registers + DEFAULT_SUFFIX}:
                continue
        found.append(build)
    active = [b for b in found if b.status in (BuildStatus.QUEUED, BuildStatus.RUNNING)]
    return (active or found or [None])[0]  # type: ignore[list-item]


NEAR_MISS = 0.9  # how alike (difflib's ratio) a full NESTML model name must be to another to be a typo of it


def _pairs_with(names: list[str], name: str) -> list[str]:
    """Registered paired models (``A__with_B``) one of whose halves is ``name`` (or ``name_nestml``)."""
    wanted = {name, name + DEFAULT_SUFFIX}
    return [n for n in names if PAIR_MARK in n and wanted & set(n.split(PAIR_MARK))]


def _close_names(names: list[str], name: str) -> list[str]:
    """Near misses of ``name``: for a whole NESTML model name (``..._neuron``, ``..._synapse``) only typos
    of another; for a shorter name, also the names it abbreviates."""
    cutoff = NEAR_MISS if name.removesuffix(DEFAULT_SUFFIX).endswith(("_neuron", "_synapse")) else 0.6
    stripped = {n.removesuffix(DEFAULT_SUFFIX): n for n in names}
    close = difflib.get_close_matches(name, names, n=5, cutoff=cutoff) + [
        stripped[s] for s in difflib.get_close_matches(name, list(stripped), n=5, cutoff=cutoff)]
    return list(dict.fromkeys(close))[:5]


def unknown_name(session: Session, reference: str, name: str, toolchain: str) -> ResolveError:
    names = list(session.scalars(select(ModelName.name)))
    paired = _pairs_with(names, name)
    close = list(dict.fromkeys(paired + _close_names(names, name)))[:8]
    details: dict[str, Any] = {"reference": reference, "toolchain": toolchain, "close_names": close}
    build = _unfinished_build(session, toolchain, registers=name)
    if build is not None:
        details["build"] = _build_info(build)
        if build.status == BuildStatus.FAILED:
            return UnknownModel(f"no model {name!r} in the registry: its build {build.id} failed: "
                                f"{first_error(build)}; fix the source and push it again", details)
        return UnknownModel(f"model {name!r} is not in the registry yet: its build {build.id} is {build.status}; "
                            f"wait for it to finish (GET /v1/builds/{build.id})", details)
    if paired:
        return UnknownModel(f"no model {name!r} of its own in the registry: it was published paired, as "
                            f"{', '.join(paired)}; use that name (NEST registers paired models under it)", details)
    base = name.removesuffix(DEFAULT_SUFFIX)
    hint = (f"did you mean {', '.join(close)}?" if close else
            f"push its .nestml source first: nestml-registry push FILE.nestml (the file with 'model {base}:')")
    return UnknownModel(f"no model {name!r} (nor {name + DEFAULT_SUFFIX!r}) in the registry: {hint}", details)


def resolve(session: Session, reference: str, toolchain: str) -> Resolution:
    """The module to load for ``reference`` on ``toolchain``: the newest version unless ``@VERSION``.
    Raises :class:`ResolveError` whose message and ``details`` say what exists instead."""
    ref_name, wanted = parse_reference(reference)
    found = _resolve_quickly(session, ref_name, wanted, toolchain)
    if found is not None:
        return found
    name = find_name(session, ref_name)
    if name is None:
        raise unknown_name(session, reference, ref_name, toolchain)
    versions = list(session.scalars(select(ModelVersion).where(ModelVersion.name == name)
                                    .order_by(ModelVersion.version)))
    numbers = [v.version for v in versions]
    details: dict[str, Any] = {"reference": reference, "model": name, "toolchain": toolchain, "versions": numbers}
    if not versions:  # a name row without versions: only if a publish was rolled back by hand
        raise UnknownModel(f"model {name!r} has no published version: push its source", details)
    if wanted is not None and wanted not in numbers:
        raise UnknownModel(f"model {name!r} has no version {wanted}: it has versions "
                           f"{', '.join(map(str, numbers))}; use one of them or leave out @VERSION for the newest",
                           details)
    chosen = _newest_not_yanked(versions, reference) if wanted is None else versions[numbers.index(wanted)]
    link = session.get(ModelModule, (chosen.id, toolchain))
    if link is not None:
        module = link.module
        return Resolution(name, chosen.version, chosen.kind, module.sha256, module.name, module.location, toolchain,
                          chosen.yanked_reason)
    toolchains = sorted(session.scalars(select(ModelModule.toolchain)
                                        .where(ModelModule.model_version_id == chosen.id)))
    details["toolchains"] = toolchains
    what = f"{name}@{chosen.version}"
    build = _unfinished_build(session, toolchain, source_sha256=chosen.source_sha256) \
        if chosen.source_sha256 else None
    if build is not None:
        details["build"] = _build_info(build)
        if build.status == BuildStatus.FAILED:
            raise NotBuilt(f"{what} has no module for toolchain {toolchain}: its build {build.id} for this "
                           f"toolchain failed: {first_error(build)}", details)
        raise NotBuilt(f"{what} has no module for toolchain {toolchain} yet: its build {build.id} is "
                       f"{build.status}; wait for it to finish (GET /v1/builds/{build.id})", details)
    built_for = ", ".join(toolchains) or "no toolchain"
    raise NotBuilt(f"{what} has no module for toolchain {toolchain}; it is built for {built_for}. Push its source "
                   "to a registry with a worker for this toolchain, or run on a machine with one of those",
                   details)


def _newest_not_yanked(versions: list[ModelVersion], reference: str) -> ModelVersion:
    left = [v for v in versions if v.yanked_reason is None]
    if left:
        return left[-1]
    name = versions[-1].name
    yanked = "; ".join(f"{name}@{v.version}: {v.yanked_reason}" for v in versions)
    raise UnknownModel(f"every version of {name!r} is yanked ({yanked}); pin one as {name}@VERSION to use it anyway",
                       {"reference": reference, "model": name, "versions": [v.version for v in versions]})


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
                           {"errors": [{"code": e.code, "message": e.message, **e.details} for e in errors]})
    by_model: dict[str, dict[int, list[str]]] = {}
    for ref, res in zip(references, results, strict=True):
        by_model.setdefault(res.model, {}).setdefault(res.version, []).append(ref)
    conflicts: list[dict[str, Any]] = [{"model": model, "versions": {str(v): refs for v, refs in sorted(vs.items())}}
                 for model, vs in by_model.items() if len(vs) > 1]
    if conflicts:
        text = "; ".join(f"{c['model']} as " + " and ".join(f"version {v} ({', '.join(refs)})"
                                                            for v, refs in c["versions"].items())
                         for c in conflicts)
        raise VersionConflict(f"one simulation asks for two versions of a model: {text}. One NEST process can load "
                              "only one version of a model: refer to the same version everywhere (NAME@VERSION)",
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
        raise ModuleClash(f"the models resolve to modules that register the same names: {text}; NEST cannot load "
                          "both. Push those models' sources together into one module and refer to its versions",
                          {"module_conflicts": clashes})
