"""Characterisations of neuron model versions: queued when a build publishes a new neuron version (or when
asked, ``nestml-registry characterise``), claimed with a lease by a worker of the toolchain whose module
it runs, finished with the result, and swept back into the queue when the worker dies, as builds are
(:mod:`nestml_registry.registry.queue`; the same conditional updates make every change happen once).

Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nestml_registry.compiler.comparison import VERDICTS
from nestml_registry.compiler.counterparts import counterpart_of
from nestml_registry.registry import clock, verdicts
from nestml_registry.registry.db import insert_ignoring_conflicts
from nestml_registry.registry.errors import InvalidInput, NotFound, UnknownModel
from nestml_registry.registry.owners import require_owner
from nestml_registry.registry.records import record_event
from nestml_registry.registry.resolving import find_name, parse_reference
from nestml_registry.registry.tables import (
    LOCAL_OWNER,
    Characterisation,
    CharacterisationStatus,
    ModelModule,
    ModelName,
    ModelVersion,
    Module,
)

logger = logging.getLogger(__name__)
Status = CharacterisationStatus
MAX_ATTEMPTS = 2
DONE = (Status.SUCCEEDED.value, Status.FAILED.value, Status.NOT_APPLICABLE.value)
_NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True)
class Claimed:
    """What a worker needs to characterise a version: the NEST name and the module to load; and to check it
    against its NEST counterpart: its NESTML name, parameters and state."""

    id: int
    model: str
    version: int
    module_sha256: str
    module_location: str
    nestml_name: str | None = None
    parameters: list[Any] = field(default_factory=list)
    state: list[Any] = field(default_factory=list)
    kind: str = "neuron"


def queue_versions(session: Session, version_ids: Iterable[int], toolchain: str, *, again: bool = False) -> int:
    """Queue a characterisation of each version on ``toolchain`` (where it has a module; one per version and
    toolchain, so a new toolchain re-validates what an older one measured); with ``again``, finished ones
    on ``toolchain`` are queued anew. Returns how many were queued."""
    ids = list(dict.fromkeys(version_ids))
    if not ids:
        return 0
    now = clock.now(session)
    rows = [{"model_version_id": i, "toolchain": toolchain, "status": Status.QUEUED.value, "attempts": 0,
             "created_at": now} for i in ids]
    queued = len(session.execute(insert_ignoring_conflicts(session, Characterisation, rows,
                                                           ["model_version_id", "toolchain"])
                                 .returning(Characterisation.id)).all())
    if again:
        queued += session.execute(  # type: ignore[attr-defined]  # a CursorResult
            update(Characterisation).where(Characterisation.model_version_id.in_(ids),
                                           Characterisation.toolchain == toolchain,
                                           Characterisation.status.in_(DONE))
            .values(status=Status.QUEUED.value, attempts=0, created_at=now, started_at=None, finished_at=None,
                    lease_owner=None, lease_expires_at=None, error=None, verdict=None, changed=None)
            .execution_options(**_NO_SYNC)).rowcount
    return queued


def queue_published(session: Session, published: Iterable[Any], toolchain: str) -> int:
    """After a build published ``published`` (registry.publishing.Published): its neuron versions, and its
    synapse versions that have a NEST counterpart to be checked against."""
    wanted = {(p.name, p.version) for p in published}
    if not wanted:
        return 0
    ids = [v.id for v in session.scalars(select(ModelVersion).where(
        ModelVersion.name.in_([n for n, _ in wanted]))) if (v.name, v.version) in wanted and measured(v)]
    return queue_versions(session, ids, toolchain)


def measured(v: ModelVersion) -> bool:
    """Whether a worker has anything to run for ``v``: a neuron is characterised (and checked against its
    counterpart); a synapse is only checked against its counterpart, if it has one."""
    return v.kind == "neuron" or counterpart_of(v.nestml_name, v.kind) is not None


def claim(session: Session, worker_id: str, toolchain: str, lease_seconds: float) -> Claimed | None:
    """The oldest queued characterisation for ``toolchain``, leased to ``worker_id``; None if there is none."""
    for _ in range(10):
        row = session.execute(
            select(Characterisation.id, ModelVersion.name, ModelVersion.version, Module.sha256, Module.location,
                   ModelVersion.nestml_name, ModelVersion.parameters, ModelVersion.state, ModelVersion.kind)
            .join(ModelVersion, ModelVersion.id == Characterisation.model_version_id)
            .join(ModelModule, (ModelModule.model_version_id == ModelVersion.id)
                  & (ModelModule.toolchain == Characterisation.toolchain))
            .join(Module, Module.id == ModelModule.module_id)
            .where(Characterisation.status == Status.QUEUED.value, Characterisation.toolchain == toolchain)
            .order_by(Characterisation.created_at, Characterisation.id).limit(1)
            .with_for_update(skip_locked=True, of=Characterisation)).first()
        if row is None:
            return None
        now = clock.now(session)
        taken = session.execute(  # type: ignore[attr-defined]  # a CursorResult
            update(Characterisation).where(Characterisation.id == row[0],
                                           Characterisation.status == Status.QUEUED.value)
            .values(status=Status.RUNNING.value, attempts=Characterisation.attempts + 1, lease_owner=worker_id,
                    lease_expires_at=now + timedelta(seconds=lease_seconds), started_at=now)
            .execution_options(**_NO_SYNC)).rowcount == 1
        if taken:
            return Claimed(row[0], row[1], row[2], row[3], row[4], row[5], list(row[6] or []), list(row[7] or []),
                           row[8])
    return None


def held_module(session: Session, char_id: int, worker_id: str) -> str | None:
    """The artifact location of the module a running characterisation held by ``worker_id`` loads."""
    return session.scalar(
        select(Module.location).join(ModelModule, ModelModule.module_id == Module.id)
        .join(Characterisation, (Characterisation.model_version_id == ModelModule.model_version_id)
              & (Characterisation.toolchain == ModelModule.toolchain))
        .where(Characterisation.id == char_id, Characterisation.lease_owner == worker_id,
               Characterisation.status == Status.RUNNING.value))


def finish(session: Session, char_id: int, worker_id: str, result: dict[str, Any], seconds: float) -> bool:
    """Record a result (status succeeded, not_applicable or failed with ``error``) of a characterisation this
    worker holds; False (nothing written) when it lost the lease."""
    status = result.get("status")
    if status not in DONE:
        raise InvalidInput(f"a characterisation finishes as {', '.join(DONE)}, not {status!r}")
    protocol = (result.get("protocol") or {}).get("version")
    verdict = (result.get("check") or {}).get("verdict") if status != Status.FAILED.value else None
    if verdict is not None and verdict not in VERDICTS:
        raise InvalidInput(f"a check's verdict is one of {', '.join(VERDICTS)}, not {verdict!r}")
    done = session.execute(  # type: ignore[attr-defined]  # a CursorResult
        update(Characterisation).where(Characterisation.id == char_id, Characterisation.lease_owner == worker_id,
                                       Characterisation.status == Status.RUNNING.value)
        .values(status=status, result=result if status != Status.FAILED.value else None,
                error=result.get("error") if status == Status.FAILED.value else None, protocol=protocol,
                finished_at=clock.now(session), lease_owner=None, lease_expires_at=None, seconds=round(seconds, 3),
                verdict=verdict)
        .execution_options(**_NO_SYNC)).rowcount == 1
    if not done:
        logger.warning("worker %s lost the lease of characterisation %d; its result is dropped", worker_id, char_id)
    else:
        _compare_toolchains(session, char_id)
    return done


def _compare_toolchains(session: Session, char_id: int) -> None:
    """Record on a finished characterisation what differs from the same version's finished result on
    another toolchain (its verdict, whether it fires, its rheobase beyond the protocol's tolerance)."""
    this = session.get(Characterisation, char_id)
    if this is None or this.status not in DONE:
        return
    others = session.scalars(select(Characterisation).where(
        Characterisation.model_version_id == this.model_version_id, Characterisation.id != this.id,
        Characterisation.status.in_(DONE)).order_by(Characterisation.finished_at.desc())).all()
    for other in others:
        found = verdicts.differences(other, this)
        if found:
            session.execute(update(Characterisation).where(Characterisation.id == this.id)
                            .values(changed=f"against toolchain {other.toolchain}: {'; '.join(found)}")
                            .execution_options(**_NO_SYNC))
            return


def sweep(session: Session, now: datetime | None = None) -> int:
    """Characterisations whose worker stopped renewing: queued again once, then failed."""
    now = now or clock.now(session)
    expired = session.execute(select(Characterisation.id, Characterisation.attempts, Characterisation.lease_owner)
                              .where(Characterisation.status == Status.RUNNING.value,
                                     Characterisation.lease_expires_at < now)).all()
    n = 0
    for char_id, attempts, owner in expired:
        stmt = update(Characterisation).where(Characterisation.id == char_id, Characterisation.lease_expires_at < now,
                                              Characterisation.status == Status.RUNNING.value)
        if attempts < MAX_ATTEMPTS:
            stmt = stmt.values(status=Status.QUEUED.value, lease_owner=None, lease_expires_at=None)
        else:
            stmt = stmt.values(status=Status.FAILED.value, lease_owner=None, lease_expires_at=None, finished_at=now,
                               error=f"its worker ({owner}) stopped {attempts} times before it finished: the "
                                     "simulation may crash or exhaust the worker; see the workers' logs")
        n += session.execute(stmt.execution_options(**_NO_SYNC)).rowcount  # type: ignore[attr-defined]
    return n


def pending(session: Session, toolchain: str) -> bool:
    return session.scalar(select(Characterisation.id).where(
        Characterisation.toolchain == toolchain,
        Characterisation.status.in_([Status.QUEUED.value, Status.RUNNING.value])).limit(1)) is not None


def version_row(session: Session, name: str, version: int) -> ModelVersion:
    row = session.scalar(select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version))
    if row is None:
        raise NotFound(f"no version {version} of {name}: `nestml-registry show {name}` lists its versions")
    return row


def request(session: Session, reference: str | None, actor: str, admin: bool, live: Sequence[str]) -> list[dict]:
    """Queue characterisations again: of ``NAME`` (its newest version), ``NAME@VERSION``, or with ``None`` of
    every neuron version ``actor`` owns (an admin: every one). Each runs on a toolchain in ``live`` (served by
    a live worker, the first preferred) that the version has a module for. One entry per version: what
    happened (``queued`` or ``skipped`` with ``reason``)."""
    versions = _requested(session, reference, actor, admin)
    links: dict[int, set[str]] = {}
    for vid, toolchain in session.execute(select(ModelModule.model_version_id, ModelModule.toolchain)
                                          .where(ModelModule.model_version_id.in_([v.id for v in versions]))):
        links.setdefault(vid, set()).add(toolchain)
    out = []
    for v in versions:
        entry: dict[str, Any] = {"model": v.name, "version": v.version}
        usable = [t for t in live if t in links.get(v.id, set())]
        if not measured(v):
            entry.update(status="skipped", reason="a synapse model with no NEST counterpart: only neuron models are "
                                                  "characterised, and synapses checked against their counterparts")
        elif not usable:
            entry.update(status="skipped", reason="no live worker serves a toolchain it has a module for: start "
                                                  "`nestml-registry worker` on such a machine, or push it again")
        else:
            queue_versions(session, [v.id], usable[0], again=True)
            entry.update(status="queued", toolchain=usable[0])
        out.append(entry)
    record_event(session, actor, "characterise", reference or "--all",
                 {"queued": sum(e["status"] == "queued" for e in out)})
    return out


def _requested(session: Session, reference: str | None, actor: str, admin: bool) -> list[ModelVersion]:
    if reference is None:
        query = select(ModelVersion).join(ModelName, ModelName.name == ModelVersion.name).where(
            ModelVersion.kind == "neuron")
        if not admin:
            query = query.where(ModelName.owner == actor) if actor != LOCAL_OWNER else \
                query.where((ModelName.owner == actor) | ModelName.owner.is_(None))
        return list(session.scalars(query.order_by(ModelVersion.name, ModelVersion.version)))
    ref_name, wanted = parse_reference(reference)
    name = find_name(session, ref_name)
    if name is None:
        raise UnknownModel(f"no model {ref_name!r}: `nestml-registry models` lists the registry's models",
                           {"reference": reference})
    require_owner(session, name, actor, admin, "characterise")
    query = select(ModelVersion).where(ModelVersion.name == name)
    query = query.where(ModelVersion.version == wanted) if wanted is not None else \
        query.order_by(ModelVersion.version.desc()).limit(1)
    rows = list(session.scalars(query))
    if not rows:
        raise NotFound(f"no version {wanted} of {name}: `nestml-registry show {name}` lists its versions",
                       {"reference": reference})
    return rows


def shown(chars: Sequence[Characterisation], toolchain: str | None = None) -> Characterisation | None:
    """Which of a version's characterisations (one per toolchain) a page shows: ``toolchain``'s, else the
    most recently finished, else the most recently queued."""
    if toolchain is not None:
        return next((c for c in chars if c.toolchain == toolchain), None)
    finished = [c for c in chars if c.status in DONE and c.finished_at is not None]
    if finished:
        return max(finished, key=lambda c: (c.finished_at, c.id))
    return chars[-1] if chars else None


def document(session: Session, name: str, version: int, toolchain: str | None = None) -> dict[str, Any]:
    """The characterisation of ``name@version`` as the API shows it, with the f-I curve and features of the
    newest older version that has them and is not yanked (``previous``)."""
    name = find_name(session, name) or name
    row = version_row(session, name, version)
    chars = list(session.scalars(select(Characterisation).where(Characterisation.model_version_id == row.id)
                                 .order_by(Characterisation.created_at, Characterisation.id)))
    char = shown(chars, toolchain)
    out: dict[str, Any] = {"model": name, "version": version, "kind": row.kind, "previous": None,
                           "toolchains": [{"toolchain": c.toolchain, "status": c.status, "verdict": c.verdict,
                                           "rheobase_pA": (c.result or {}).get("rheobase_pA"),
                                           "features": (c.result or {}).get("features") or {},
                                           "finished_at": c.finished_at, "changed": c.changed} for c in chars]}
    stored = (char.result or {}).get("check") if char is not None else None
    out["check"] = verdicts.verdict_document(stored, row.nestml_name, row.kind, f"{name}@{version}")
    out["changed"] = char.changed if char is not None else None
    if row.kind != "neuron":
        waiting = char.status if char is not None and char.status in (Status.QUEUED.value, Status.RUNNING.value) \
            else None
        return dict(out, status=waiting or Status.NOT_APPLICABLE.value, toolchain=char.toolchain if char else None,
                    reason="a synapse model: only neuron models are characterised"
                    + (f"; its check against {out['check'].get('against')} is {waiting}" if waiting else ""))
    if char is None:
        return dict(out, status="none", reason=f"not characterised yet: `nestml-registry characterise "
                                               f"{name}@{version}` queues it")
    out.update({k: v for k, v in (char.result or {}).items() if k != "check"}, status=char.status,
               error=char.error, toolchain=char.toolchain, created_at=char.created_at, finished_at=char.finished_at,
               seconds=char.seconds)
    older = session.execute(
        select(ModelVersion.version, Characterisation.result)
        .join(Characterisation, Characterisation.model_version_id == ModelVersion.id)
        .where(ModelVersion.name == name, ModelVersion.version < version, ModelVersion.yanked_at.is_(None),
               Characterisation.status == Status.SUCCEEDED.value)
        .order_by(ModelVersion.version.desc(), Characterisation.finished_at.desc()).limit(1)).first()
    if older is not None:
        res = older[1] or {}
        out["previous"] = {"version": older[0], "rheobase_pA": res.get("rheobase_pA"),
                           "fi_curve": res.get("fi_curve") or [], "features": res.get("features") or {}}
    return out
