"""Publishing a succeeded build: the models its module registers become versions of their names.

On SQLite use a session that begins IMMEDIATE (the default of ``db.make_sessionmaker``); on PostgreSQL
``publish`` locks the model's name row, so publishers of one name are serialised while publishers of
different names run side by side. The caller owns the transaction."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nestml_registry.compiler.request import PAIR_MARK
from nestml_registry.registry import metadata, model_text
from nestml_registry.registry.breaks import describe_breaks, dropped_names
from nestml_registry.registry.db import insert_ignoring_conflicts
from nestml_registry.registry.errors import BreakingChange, InvalidInput, NameOwned
from nestml_registry.registry.owners import family_of, require_families
from nestml_registry.registry.records import declared_models, record_event
from nestml_registry.registry.resolving import DEFAULT_SUFFIX
from nestml_registry.registry.tables import (
    KINDS,
    LOCAL_OWNER,
    Build,
    ModelModule,
    ModelName,
    ModelVersion,
    Module,
)

logger = logging.getLogger(__name__)
DIGEST_VERSION = 1
MODEL_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Published:
    name: str
    kind: str
    version: int
    created: bool  # False: the same content was published before, its version is reused
    breaks: dict[str, Any] = field(default_factory=dict)  # breaking_changes() of a new version


def breaking_changes(session: Session, version: ModelVersion) -> dict[str, Any]:
    """What ``version`` drops of the version before it that unpinned references resolved to (the newest
    earlier one not yanked): ``{"from_version": N, "parameters": [...], "state": [...], "input_ports": [...]}``
    with only the kinds it drops, or ``{}``. A renamed name is dropped too: every simulation that names it
    breaks."""
    before = session.scalars(select(ModelVersion).where(
        ModelVersion.name == version.name, ModelVersion.version < version.version,
        ModelVersion.yanked_at.is_(None)).order_by(ModelVersion.version.desc()).limit(1)).first()
    if before is None:
        return {}
    out = {key: names for key, names in dropped_names(before, version).items() if names}
    return {"from_version": before.version, **out} if out else {}


def _breaking_message(name: str, version: int, breaks: dict[str, Any]) -> str:
    old = breaks["from_version"]
    return (f"{name}@{version} would drop what {name}@{old} has ({describe_breaks(breaks)}): every simulation "
            "that sets or records them by name breaks when it follows the newest version. If that is meant, push "
            f"again with --breaking (whoever needs the old model pins {name}@{old}); else keep those names (a new "
            "name for a different model is another choice)")


def content_digest(source_sha256s: Iterable[str], suffix: str, pairs: Sequence[dict[str, Any]]) -> str:
    """sha256 over what decides a model's behaviour: its sources, the name suffix and its pairs."""
    doc = {"v": DIGEST_VERSION, "sources": sorted(set(source_sha256s)), "suffix": suffix,
           "pairs": sorted(json.dumps(p, sort_keys=True) for p in pairs)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _model_digest(model: dict[str, Any], files: dict[str, tuple[str, set[str]]], suffix: str,
                  pairs: list[dict[str, Any]]) -> tuple[str, str | None, str | None]:
    """(content digest, source sha256, the digest an older registry gave it) of one model of a build;
    ``files`` maps each source file name to its sha256 and the models it declares. A paired model
    (``N__with_S``) depends on its partner's source too; the plain neuron a pair's module also registers
    does not (it is the neuron built alone), though registries before this one counted its pairs."""
    own = model.get("source_sha256") or files.get(model.get("source") or "", (None, set()))[0]
    base = model.get("nestml_name")
    if own is None or (pairs and base is None):  # unknown: every source and pair of the build counts
        return content_digest([sha for sha, _ in files.values()], suffix, pairs), own, None
    mine = [p for p in pairs if base in (p.get("neuron"), p.get("synapse"))]
    partners = {p.get(role) for p in mine for role in ("neuron", "synapse")}
    shas = [own] + [sha for sha, declared in files.values() if declared & partners]
    paired = content_digest(shas, suffix, mine)
    if mine and PAIR_MARK not in str(model.get("name") or ""):
        return content_digest([own], suffix, []), own, paired
    return paired, own, None


def publish(session: Session, build: Build, module_row: Module, models: list[dict[str, Any]],
            actor: str | int | None, *, admin: bool = False, built_by: str | None = None) -> list[Published]:
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
    files = {bs.name: (bs.source.sha256, declared_models(bs.source)) for bs in build.sources}
    texts = {bs.source.sha256: bs.source.text for bs in build.sources}
    owner = LOCAL_OWNER if actor is None else str(actor)
    registered = {m["name"] for m in models} | {v for m in models for v in m.get("variants") or []}
    module_row.registers = sorted(set(module_row.registers or []) | registered)
    published = []
    for model in sorted(models, key=lambda m: m["name"]):  # one lock order for every publisher
        name, kind = model["name"], model.get("kind")
        if not MODEL_NAME_RE.fullmatch(name or "") or kind not in KINDS:
            raise InvalidInput(f"cannot publish model {name!r} of kind {kind!r}: a model needs a NEST name "
                               f"(letters, digits, '_') and a kind ({' or '.join(KINDS)})")
        digest, source_sha, older = _model_digest(model, files, suffix, pairs)
        _claim_name(session, name, family_of(name, suffix), owner, admin)
        version, created = _version_of(session, model, digest, source_sha, texts.get(source_sha or ""), owner,
                                       older)
        breaks = breaking_changes(session, version) if created else {}
        if breaks and not build.allow_breaking:
            raise BreakingChange(_breaking_message(name, version.version, breaks), {"model": name, **breaks})
        link = session.get(ModelModule, (version.id, build.toolchain))
        if link is None:
            session.add(ModelModule(model_version_id=version.id, toolchain=build.toolchain, module_id=module_row.id))
        elif link.module_id != module_row.id:
            logger.info("%s@%d already has module %d on %s; keeping it", name, version.version, link.module_id,
                        build.toolchain)
        published.append(Published(name, kind, version.version, created, breaks))
    session.flush()
    record_event(session, actor, "publish", module_row.sha256, {
        "build": build.id, "toolchain": build.toolchain, "built_by": built_by,
        "models": [{"name": p.name, "version": p.version, "created": p.created, **({"breaks": p.breaks} if p.breaks
                                                                                     else {})} for p in published]})
    return published


def _claim_name(session: Session, name: str, family: str, owner: str, admin: bool) -> None:
    """The name row of ``name``, created for ``owner`` if new and locked for this transaction; raises
    :class:`NameOwned` when someone else owns it or another name of its family (unless ``admin``)."""
    require_families(session, {family}, owner, admin)
    session.execute(insert_ignoring_conflicts(session, ModelName, [{"name": name, "owner": owner, "family": family}],
                                              ["name"]))
    name_row = session.execute(select(ModelName).where(ModelName.name == name).with_for_update()
                               .execution_options(populate_existing=True)).scalar_one()
    if (name_row.owner or LOCAL_OWNER) != owner and not admin:
        raise NameOwned(
            f"model name {name!r} belongs to {name_row.owner or LOCAL_OWNER!r}, so {owner!r} cannot publish a new "
            "version of it: rename the model in its source (the 'model NAME:' line), or ask its owner or an "
            "admin to publish it (an admin can transfer it: nestml-registry owner set NAME USER)",
            {"model": name, "owner": name_row.owner or LOCAL_OWNER, "actor": owner})


def _version_of(session: Session, model: dict[str, Any], digest: str, source_sha: str | None,
                text: str | None, owner: str, older: str | None = None) -> tuple[ModelVersion, bool]:
    """The version of ``model`` with this content digest (or the ``older`` one, the oldest version first),
    and whether it is new (the next number, with the description and search words of its source ``text``,
    published by ``owner``)."""
    name = model["name"]
    version = session.scalars(select(ModelVersion).where(
        ModelVersion.name == name, ModelVersion.content_digest.in_([d for d in (digest, older) if d]))
        .order_by(ModelVersion.version).limit(1)).one_or_none()
    if version is not None:
        return version, False
    latest = session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.name == name)) or 0
    version = ModelVersion(
        name=name, version=latest + 1, content_digest=digest, nestml_name=model.get("nestml_name"),
        kind=model.get("kind"), source_sha256=source_sha, parameters=model.get("parameters") or [],
        state=model.get("state") or [], input_ports=model.get("input_ports") or [],
        receptor_types=model.get("receptor_types") or {}, variants=model.get("variants") or [],
        published_by=owner)
    description = model_text.description_of(text or "", model.get("nestml_name"))
    version.description = description
    version.keywords = metadata.version_words([name, model.get("nestml_name")], description,
                                              [*version.parameters, *version.state], text or "",
                                              model.get("nestml_name"))
    session.add(version)
    session.flush()
    return version, True
