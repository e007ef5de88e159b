"""Every stored module checked against its sha256, and the damaged ones repaired.

    report = verify_store(sessions, store, repair=True, copies=[cache_dir])

A file in the store that no module row names (a module stored for a build that then failed to be
recorded) is ``unregistered``: repair removes it once it is older than :data:`ORPHAN_SECONDS` (an
upload whose report is on its way has a row within seconds). A module is damaged when its file is
missing or its bytes no longer hash to its sha256. Repair takes,
in this order: a good copy (right sha256) in one of ``copies`` (the local build caches of compile
workers: ``<cache>/modules/<sha256>/<file>``), stored again through the store's temporary file and
rename; else the build that made it, queued again: the same build key gives the same module, which
the worker stores again (a worker whose cache holds it stores that copy without compiling).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nestml_registry.compiler.integrity import sha256_file
from nestml_registry.registry import queue
from nestml_registry.registry.errors import CorruptArtifact, InvalidInput, NotFound
from nestml_registry.registry.records import record_event
from nestml_registry.registry.store import ArtifactStore
from nestml_registry.registry.tables import Build, BuildStatus, Module

logger = logging.getLogger(__name__)
ORPHAN_SECONDS = 3600.0


@dataclass(frozen=True)
class Damage:
    sha256: str
    name: str
    state: str  # "missing", "corrupt" or "unregistered"
    action: str  # what repair did ("" without --repair)


@dataclass
class Report:
    checked: int = 0
    damaged: list[Damage] = field(default_factory=list)

    @property
    def unrepaired(self) -> list[Damage]:
        return [d for d in self.damaged if not d.action.startswith(("restored", "rebuild", "removed"))]


def state_of(store: ArtifactStore, location: str) -> str | None:
    """None when the stored file is intact, else ``"missing"`` or ``"corrupt"``."""
    try:
        store.open_verified(location)
    except NotFound:
        return "missing"
    except (CorruptArtifact, InvalidInput):
        return "corrupt"
    return None


def find_copy(copies: Sequence[Path], sha256: str, filename: str) -> Path | None:
    """A file of ``sha256`` named ``filename`` in one of the build caches ``copies``."""
    for root in copies:
        candidate = Path(root) / "modules" / sha256 / filename
        try:
            if candidate.is_file() and not candidate.is_symlink() and sha256_file(candidate) == sha256:
                return candidate
        except OSError:
            continue
    return None


def requeue_builder(session: Session, module_id: int, why: str) -> str | None:
    """Queue again the newest build that made the module; what was done, or None when no build made it."""
    build = session.execute(select(Build.id, Build.status).where(Build.module_id == module_id)
                            .order_by(Build.id.desc()).limit(1)).first()
    if build is None:
        return None
    if build.status in (BuildStatus.QUEUED, BuildStatus.RUNNING):
        return f"rebuild already queued (build {build.id})"
    queue.requeue(session, build.id, why)
    return f"rebuild queued (build {build.id})"


def _repair(sessions: sessionmaker[Session], store: ArtifactStore, module: tuple[int, str, str, str],
            copies: Sequence[Path]) -> str:
    module_id, sha, _, location = module
    filename = location.rsplit("/", 1)[-1]
    copy = find_copy(copies, sha, filename)
    if copy is not None:
        stored = store.put_file(copy, filename)
        if stored.sha256 == sha and state_of(store, location) is None:
            with sessions.begin() as s:
                record_event(s, "store verify", "repair", sha, {"restored_from": str(copy)})
            return f"restored from {copy}"
    with sessions.begin() as s:
        done = requeue_builder(s, module_id, "queued again: its module was damaged in the artifact store")
        record_event(s, "store verify", "repair", sha, {"action": done or "none"})
    return done or "not repaired: no build made it; push its sources again"


def verify_store(sessions: sessionmaker[Session], store: ArtifactStore, *, repair: bool = False,
                 copies: Sequence[Path] = ()) -> Report:
    """Re-hash every registered module's file; with ``repair``, restore or rebuild the damaged ones."""
    with sessions() as s:
        modules = [(m.id, m.sha256, m.name, m.location) for m in s.scalars(select(Module).order_by(Module.id))]
    report = Report()
    for module in modules:
        report.checked += 1
        state = state_of(store, module[3])
        if state is None:
            continue
        action = _repair(sessions, store, module, copies) if repair else ""
        logger.warning("module %s (%s) is %s%s", module[1], module[2], state, f": {action}" if action else "")
        report.damaged.append(Damage(module[1], module[2], state, action))
    report.damaged += _unregistered(sessions, store, {m[3] for m in modules}, repair)
    return report


def _unregistered(sessions: sessionmaker[Session], store: ArtifactStore, registered: set[str],
                  repair: bool) -> list[Damage]:
    """Files no module row names, older than :data:`ORPHAN_SECONDS`; removed with ``repair``."""
    found, cutoff = [], time.time() - ORPHAN_SECONDS
    for location, path in store.locations():
        try:
            if location in registered or path.stat().st_mtime > cutoff:
                continue
        except FileNotFoundError:
            continue
        sha, name = location.split("/")[1], location.split("/")[2]
        action = ""
        if repair:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()
            with sessions.begin() as s:
                record_event(s, "store verify", "repair", sha, {"removed": location, "why": "unregistered"})
            action = "removed (no module row names it)"
        logger.warning("stored file %s has no module row%s", location, f": {action}" if action else "")
        found.append(Damage(sha, name, "unregistered", action))
    return found
