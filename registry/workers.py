"""Compile workers' heartbeats: who is alive for which toolchain, and for how long nobody has been.

A worker beats when it starts, every few seconds while idle and with each lease renewal while it
builds; each beat says until when it counts as alive (``expires_at``). One that stops cleanly says so;
one that dies simply stops beating. Functions take a Session and do not commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from nestml_registry.registry import characterisations, clock, queue
from nestml_registry.registry.db import insert_ignoring_conflicts
from nestml_registry.registry.tables import Build, BuildStatus, KnownToolchain, WorkerRow

logger = logging.getLogger(__name__)
KEEP_DEAD = timedelta(days=7)  # a worker that stopped beating is forgotten after this
MAX_ERROR = 500


@dataclass(frozen=True)
class Beat:
    """What a worker says of itself at a heartbeat."""

    worker_id: str
    toolchain: str
    host: str
    pid: int
    alive_for: float  # seconds it counts as alive after this beat
    build_id: int | None = None
    builds: int = 0
    retries: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None  # the worker's own clock when it beat: compared, never used


def beat(session: Session, b: Beat) -> None:
    """Record a heartbeat (the worker's row is made at its first), alive for ``alive_for`` seconds of the
    registry's clock; a worker whose own clock is far off is flagged in its ``last_error``."""
    now = clock.now(session)
    skew = clock.skew_note(now, b.sent_at)
    if skew is not None:
        logger.warning("worker %s: %s", b.worker_id, skew)
    error = b.last_error or skew
    values = {"toolchain": b.toolchain, "host": b.host[:255], "pid": b.pid, "heartbeat_at": now,
              "expires_at": now + timedelta(seconds=b.alive_for), "stopped_at": None, "build_id": b.build_id,
              "builds": b.builds, "retries": b.retries, "last_error": error[:MAX_ERROR] if error else None}
    session.execute(insert_ignoring_conflicts(session, WorkerRow, [{"id": b.worker_id, "started_at": now, **values}],
                                              ["id"]))
    session.execute(update(WorkerRow).where(WorkerRow.id == b.worker_id).values(**values)
                    .execution_options(synchronize_session=False))


def stopped(session: Session, worker_id: str) -> None:
    """The worker exits cleanly: no longer alive, from now."""
    now = clock.now(session)
    session.execute(update(WorkerRow).where(WorkerRow.id == worker_id)
                    .values(stopped_at=now, expires_at=now, build_id=None)
                    .execution_options(synchronize_session=False))


def forget_dead(session: Session, now: datetime | None = None) -> int:
    """Drop the rows of workers silent for longer than :data:`KEEP_DEAD`; how many."""
    cutoff = (now or clock.now(session)) - KEEP_DEAD
    return session.execute(delete(WorkerRow).where(WorkerRow.expires_at < cutoff)  # type: ignore[attr-defined]  # a CursorResult
                           .execution_options(synchronize_session=False)).rowcount or 0


@dataclass(frozen=True)
class ToolchainWorkers:
    """One toolchain's workers and builds, as ``/healthz`` reports them."""

    toolchain: str
    live: int
    queued: int
    running: int
    last_alive: datetime | None  # when a worker of it was last alive (now, if one is)
    retries: int  # loop retries (database or disk errors) its live workers report

    @property
    def stranded(self) -> bool:
        """Builds wait and no worker is alive to run them."""
        return self.live == 0 and self.queued > 0


def by_toolchain(session: Session, now: datetime | None = None) -> list[ToolchainWorkers]:
    """Every registered toolchain, and any toolchain with waiting builds, the newest first."""
    now = now or clock.now(session)
    live = {t: (n, r) for t, n, r in session.execute(
        select(WorkerRow.toolchain, func.count(), func.coalesce(func.sum(WorkerRow.retries), 0))
        .where(WorkerRow.expires_at > now).group_by(WorkerRow.toolchain)).all()}
    last = dict(session.execute(select(WorkerRow.toolchain, func.max(WorkerRow.expires_at))
                                .group_by(WorkerRow.toolchain)).all())
    builds: dict[tuple[str, str], int] = {
        (t, s.value if hasattr(s, "value") else s): n for t, s, n in session.execute(
            select(Build.toolchain, Build.status, func.count())
            .where(Build.status.in_([BuildStatus.QUEUED, BuildStatus.RUNNING]))
            .group_by(Build.toolchain, Build.status)).all()}
    known = list(session.scalars(select(KnownToolchain.id).order_by(KnownToolchain.last_seen.desc(),
                                                                     KnownToolchain.id)))
    names = known + sorted({t for t, _ in builds} - set(known))
    return [ToolchainWorkers(t, live.get(t, (0, 0))[0], builds.get((t, "queued"), 0), builds.get((t, "running"), 0),
                             now if t in live else last.get(t), int(live.get(t, (0, 0))[1])) for t in names]


def of_toolchain(session: Session, toolchain: str, now: datetime | None = None) -> tuple[int, datetime | None]:
    """How many workers of ``toolchain`` are alive, and when one last was."""
    now = now or clock.now(session)
    live = session.scalar(select(func.count()).select_from(WorkerRow)
                          .where(WorkerRow.toolchain == toolchain, WorkerRow.expires_at > now)) or 0
    if live:
        return live, now
    return 0, session.scalar(select(func.max(WorkerRow.expires_at)).where(WorkerRow.toolchain == toolchain))


def recent(session: Session, now: datetime | None = None) -> list[tuple[WorkerRow, bool, str | None]]:
    """Workers that have not stopped (alive first, then by toolchain), whether each is alive, and the
    stage of the build it runs."""
    now = now or clock.now(session)
    rows = session.execute(select(WorkerRow, Build.stage).outerjoin(Build, Build.id == WorkerRow.build_id)
                           .where(WorkerRow.stopped_at.is_(None))
                           .order_by(WorkerRow.toolchain, WorkerRow.id)).all()
    out = [(w, w.expires_at > now, stage if w.build_id is not None else None) for w, stage in rows]
    return sorted(out, key=lambda r: not r[1])


def work_pending(session: Session, toolchain: str) -> bool:
    """Whether a worker of ``toolchain`` may still get work: queued builds or characterisations for it, or
    running ones whose lease may run out (what a ``--burst`` worker waits for before it exits)."""
    running = queue.counts_by_status(session).get(BuildStatus.RUNNING.value, 0)
    return queue.queue_depth(session, [toolchain]) > 0 or running > 0 or characterisations.pending(session, toolchain)
