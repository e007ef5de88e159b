"""The build queue, shared through the database by any number of worker processes on any number of
machines. A worker claims a build with a lease, renews the lease while it compiles, and finishes the
build; a build whose worker died (its lease expired) is put back in the queue by ``sweep``, at most
``max_attempts`` times.

Nothing here commits: the caller owns the transaction. Call ``claim``, ``renew``, ``finish`` and
``sweep`` each in its own short transaction and commit at once, e.g.
``with sessionmaker.begin() as s: build = claim(s, ...)``: until the commit, the claimed row is locked
(PostgreSQL) or the whole database is (SQLite), and other workers cannot see the claim. Never keep a
transaction open while compiling.

Correctness does not rest on the locks: every state change is a conditional ``UPDATE ... WHERE
status = ... AND lease_owner = ...`` whose row count says whether it happened, so no build is ever
claimed twice and a worker that lost its lease can neither renew nor finish. The locks (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) only keep claimers from colliding.

Run ``sweep`` every few seconds from any process (several sweepers at once are fine).
A worker id must be unique to one worker process (e.g. ``f"{hostname}:{pid}:{uuid4().hex[:8]}"``).
Lease times come from the clocks of the machines involved: keep them in sync (NTP) and leases much
longer than any clock difference.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from nestml_registry.registry import clock
from nestml_registry.registry.agreement import identity
from nestml_registry.registry.db import insert_ignoring_conflicts
from nestml_registry.registry.errors import InvalidInput, NotFound
from nestml_registry.registry.records import get_or_create_sources
from nestml_registry.registry.tables import Build, BuildSource, BuildStatus, Module

logger = logging.getLogger(__name__)

KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_NO_SYNC = {"synchronize_session": False}


def get_build(session: Session, build_id: int) -> Build:
    """The build ``build_id``, freshly read from the database."""
    build = session.execute(select(Build).where(Build.id == build_id)
                            .execution_options(populate_existing=True)).scalar_one_or_none()
    if build is None:
        raise NotFound(f"no build {build_id}: `nestml-registry builds` lists the recent ones (GET /v1/builds); "
                       "`nestml-registry push FILE.nestml` (POST /v1/builds) starts a new one")
    return build


def get_build_by_key(session: Session, key: str) -> Build | None:
    return session.execute(select(Build).where(Build.key == key)
                           .execution_options(populate_existing=True)).scalar_one_or_none()


def sources_of(build: Build) -> list[tuple[str, str, str]]:
    """``(name, sha256, text)`` of a build's sources, in order: what a worker compiles."""
    return [(bs.name, bs.source.sha256, bs.source.text) for bs in build.sources]


# the diagnostic codes of a build that compiled but whose models its submitter may not publish
PUBLISH_REFUSALS = frozenset({"name_owned"})
# ... or may publish only when they say so (``allow_breaking``: a new version that drops names)
BREAKING = "breaking_change"


def enqueue(session: Session, key: str, toolchain: str, request: dict[str, Any],
            sources: Iterable[tuple[str, str, str]], submitted_by: int | None = None, max_attempts: int = 3,
            *, retry: bool = False, code_key: str | None = None, allow_breaking: bool = False) -> tuple[Build, bool]:
    """The build for ``key``, queued if there was none: ``(build, created)``.

    Idempotent on the build key: identical concurrent calls get the same row and only one is
    ``created``. An existing build is returned as it is (a succeeded one with its module), except a
    failed one with ``retry=True``: it is queued again (``created`` is then True for the one caller
    that did it). ``sources`` are ``(name, sha256, text)`` in the order the compiler takes them.
    ``allow_breaking`` lets the build publish versions that drop names; a build refused at publishing for
    that reason is queued again when its request comes with it.
    """
    if not KEY_RE.fullmatch(key or ""):
        raise InvalidInput(f"invalid build key {key!r}: give the compiler's build key (64 hex digits)")
    if max_attempts < 1:
        raise InvalidInput(f"max_attempts is {max_attempts}: a build needs at least one attempt")
    given = list(sources)
    if not given:
        raise InvalidInput("a build needs at least one source: give the .nestml files to compile")
    rows = get_or_create_sources(session, given)
    stmt = insert_ignoring_conflicts(session, Build, [{
        "key": key, "status": BuildStatus.QUEUED, "toolchain": toolchain, "request": request,
        "created_at": clock.now(session), "attempts": 0, "max_attempts": max_attempts, "diagnostics": [],
        "submitted_by": submitted_by, "stage": "queued", "code_key": code_key,
        "allow_breaking": allow_breaking}], ["key"]).returning(Build.id)
    new_id = session.execute(stmt).scalar_one_or_none()
    if new_id is not None:
        session.add_all(BuildSource(build_id=new_id, position=i, source_id=row.id, name=name)
                        for i, ((name, _, _), row) in enumerate(zip(given, rows, strict=True)))
        session.flush()
        logger.info("queued build %d (%s) for %s", new_id, key[:12], toolchain)
        return get_build(session, new_id), True
    build = get_build_by_key(session, key)
    assert build is not None  # the conflicting row exists: rows are never deleted
    # a build refused at publishing was refused for its submitter, not for its text: another submitter's
    # identical request builds it again for them
    codes = {d.get("code") for d in build.diagnostics or [] if isinstance(d, dict)}
    refused = build.status == BuildStatus.FAILED and build.submitted_by != submitted_by and bool(
        codes & PUBLISH_REFUSALS)
    allowed = allow_breaking and BREAKING in codes
    if (retry or refused or allowed) and build.status == BuildStatus.FAILED:
        extra: dict[str, Any] = {"submitted_by": submitted_by} if refused or allowed else {}
        if allowed:
            extra["allow_breaking"] = True
        requeued = session.execute(update(Build).where(Build.id == build.id, Build.status == BuildStatus.FAILED)  # type: ignore[attr-defined]  # a CursorResult
                                   .values(status=BuildStatus.QUEUED, attempts=0, max_attempts=max_attempts,
                                           lease_owner=None, lease_expires_at=None, heartbeat_at=None,
                                           started_at=None, finished_at=None, stage="queued again", error=None,
                                           diagnostics=[], log=None, module_id=None, reports=None, reported_by=None,
                                           **extra)
                                   .execution_options(**_NO_SYNC)).rowcount == 1
        if requeued:
            logger.info("queued failed build %d (%s) again", build.id, key[:12])
        return get_build(session, build.id), requeued
    return build, False


def requeue(session: Session, build_id: int, stage: str) -> bool:
    """Queue a finished build again (its attempts start over, and workers' earlier reports are forgotten; a
    succeeded one keeps naming its module, which the new attempt stores again); False when it is not finished."""
    return session.execute(update(Build).where(Build.id == build_id,  # type: ignore[attr-defined]  # a CursorResult
                                               Build.status.in_([BuildStatus.SUCCEEDED, BuildStatus.FAILED]))
                           .values(status=BuildStatus.QUEUED, attempts=0, lease_owner=None, lease_expires_at=None,
                                   heartbeat_at=None, started_at=None, finished_at=None, stage=stage, error=None,
                                   diagnostics=[], log=None, reports=None, reported_by=None)
                           .execution_options(**_NO_SYNC)).rowcount == 1


def _fair_order(toolchains: Sequence[str], worker_id: str = "") -> Select[Any]:
    """Queued builds for ``toolchains`` in the order they should be served: first those of submitters with
    the fewest builds running now, among them the submitter served longest ago (round robin), then the
    oldest. So one publisher's fifty slow builds cannot hold every worker while another's one waits."""
    other = aliased(Build)
    same_submitter = other.submitted_by.is_not_distinct_from(Build.submitted_by)
    running = (select(func.count()).where(same_submitter, other.status == BuildStatus.RUNNING)
               .correlate(Build).scalar_subquery())
    last_served = (select(func.max(other.started_at)).where(same_submitter, other.started_at.is_not(None))
                   .correlate(Build).scalar_subquery())
    # a build waiting for workers to agree is not for one of those that built it already (registry.agreement)
    fresh = or_(Build.reported_by.is_(None), ~Build.reported_by.contains(f"|{identity(worker_id)}|", autoescape=True))
    return (select(Build.id).where(Build.status == BuildStatus.QUEUED, Build.toolchain.in_(list(toolchains)), fresh)
            .order_by(running, last_served.is_not(None), last_served, Build.created_at, Build.id))


def claim(session: Session, worker_id: str, toolchains: Sequence[str], lease_seconds: float) -> Build | None:
    """Take the next queued build for one of ``toolchains`` (fairly among submitters, see
    :func:`_fair_order`): it becomes running, leased to ``worker_id`` for ``lease_seconds``. None when
    there is nothing to do. Commit right after."""
    if not toolchains:
        return None
    if not worker_id:
        raise InvalidInput("a worker id is needed to claim a build: give each worker process a unique id")
    for _ in range(10):  # a candidate taken by a concurrent claimer: look for the next one
        candidate = session.execute(_fair_order(toolchains, worker_id).limit(1)
                                    .with_for_update(skip_locked=True, of=Build)).scalar_one_or_none()
        if candidate is None:
            return None
        now = clock.now(session)
        taken = session.execute(  # type: ignore[attr-defined]  # a CursorResult
            update(Build).where(Build.id == candidate, Build.status == BuildStatus.QUEUED)
            .values(status=BuildStatus.RUNNING, attempts=Build.attempts + 1, lease_owner=worker_id,
                    lease_expires_at=now + timedelta(seconds=lease_seconds), started_at=now, heartbeat_at=now,
                    finished_at=None, stage="claimed")
            .execution_options(**_NO_SYNC)).rowcount == 1
        if taken:
            build = get_build(session, candidate)
            logger.info("worker %s claimed build %d (attempt %d of %d)", worker_id, build.id, build.attempts,
                        build.max_attempts)
            return build
    return None


def renew(session: Session, build_id: int, worker_id: str, lease_seconds: float, stage: str | None = None) -> bool:
    """Extend the lease of a running build (and record its stage). False: this worker lost the lease
    (the build was swept and requeued, perhaps claimed by another worker): stop working on it."""
    now = clock.now(session)
    values: dict[str, Any] = {"lease_expires_at": now + timedelta(seconds=lease_seconds), "heartbeat_at": now}
    if stage is not None:
        values["stage"] = stage
    return session.execute(  # type: ignore[attr-defined]  # a CursorResult
        update(Build).where(Build.id == build_id, Build.status == BuildStatus.RUNNING, Build.lease_owner == worker_id)
        .values(**values).execution_options(**_NO_SYNC)).rowcount == 1


def finish(session: Session, build_id: int, worker_id: str, status: BuildStatus | str, diagnostics: list[dict],
           log: str | None, module_row: Module | None = None, error: str | None = None,
           timings: dict[str, float] | None = None) -> bool:
    """Record the outcome of a build this worker holds the lease of. False (nothing written): the
    worker lost the lease and its result must be dropped. A succeeded build needs its module row; a
    failed one gets ``error`` or else its first error diagnostic. Publish the models in the same
    transaction, after this returned True. ``timings``: seconds per stage (codegen, build, load)."""
    try:
        status = BuildStatus(status)
    except ValueError as exc:
        raise InvalidInput(f"a build finishes as succeeded or failed, not {status!r}") from exc
    if status not in (BuildStatus.SUCCEEDED, BuildStatus.FAILED):
        raise InvalidInput(f"a build finishes as succeeded or failed, not {status.value!r}")
    if status == BuildStatus.SUCCEEDED and module_row is None:
        raise InvalidInput("a succeeded build needs its module: store the .so and pass its module row")
    if module_row is not None and module_row.id is None:
        session.flush()
    if status == BuildStatus.FAILED and error is None:
        error = next((d.get("message") for d in diagnostics if d.get("severity") == "error"),
                     "the build failed without an error message; see its log")
    now = clock.now(session)
    done = session.execute(  # type: ignore[attr-defined]  # a CursorResult
        update(Build).where(Build.id == build_id, Build.status == BuildStatus.RUNNING, Build.lease_owner == worker_id)
        .values(status=status, finished_at=now, heartbeat_at=now, lease_expires_at=None, stage=status.value,
                built_by=worker_id,
                diagnostics=list(diagnostics), log=log, error=error if status == BuildStatus.FAILED else None,
                module_id=module_row.id if module_row is not None else None,
                timings={k: round(float(v), 3) for k, v in (timings or {}).items()} or None)
        .execution_options(**_NO_SYNC)).rowcount == 1
    if done:
        logger.info("build %d %s (worker %s)", build_id, status.value, worker_id)
    else:
        logger.warning("worker %s lost the lease of build %d; its result is dropped", worker_id, build_id)
    return done


def holds(session: Session, build_id: int, worker_id: str) -> bool:
    """Whether ``worker_id`` holds the lease of the running build ``build_id``."""
    return session.scalar(select(Build.id).where(Build.id == build_id, Build.status == BuildStatus.RUNNING,
                                                 Build.lease_owner == worker_id)) is not None


def sweep(session: Session, now: datetime | None = None) -> list[int]:
    """Builds whose lease expired: queued again while attempts remain, else failed. Returns their ids."""
    now = now or clock.now(session)
    expired = session.execute(
        select(Build.id, Build.attempts, Build.max_attempts, Build.lease_owner)
        .where(Build.status == BuildStatus.RUNNING, Build.lease_expires_at < now).order_by(Build.id)).all()
    touched = []
    for build_id, attempts, max_attempts, owner in expired:
        still_expired = update(Build).where(Build.id == build_id, Build.status == BuildStatus.RUNNING,
                                            Build.lease_owner.is_not_distinct_from(owner),
                                            Build.lease_expires_at < now)
        if attempts < max_attempts:
            stmt = still_expired.values(
                status=BuildStatus.QUEUED, lease_owner=None, lease_expires_at=None, heartbeat_at=None,
                stage=f"queued again: worker {owner} stopped renewing its lease (attempt {attempts} of {max_attempts})")
        else:
            stmt = still_expired.values(
                status=BuildStatus.FAILED, finished_at=now, lease_expires_at=None, stage="failed",
                error=(f"the build lost its worker {attempts} times (the last was {owner}): each time the worker "
                       "stopped renewing its lease before the build finished: its process was killed or crashed "
                       "(a restart, the machine going down, running out of memory) or it could not reach the "
                       "database for longer than its lease. Look at the workers' logs (and /healthz), then "
                       "submit the build again with retry"))
        if session.execute(stmt.execution_options(**_NO_SYNC)).rowcount == 1:  # type: ignore[attr-defined]  # a CursorResult
            touched.append(build_id)
            logger.warning("build %d: lease of worker %s expired (attempt %d of %d); %s", build_id, owner, attempts,
                           max_attempts, "queued again" if attempts < max_attempts else "failed")
    return touched


def queue_depth(session: Session, toolchains: Sequence[str] | None = None) -> int:
    """How many builds wait to be claimed (for ``toolchains`` only, if given)."""
    query = select(func.count()).select_from(Build).where(Build.status == BuildStatus.QUEUED)
    if toolchains is not None:
        query = query.where(Build.toolchain.in_(list(toolchains)))
    return session.scalar(query) or 0


def counts_by_status(session: Session) -> dict[str, int]:
    """The number of builds in each status (every status present, zero included)."""
    counts = {s.value: 0 for s in BuildStatus}
    for status, n in session.execute(select(Build.status, func.count()).group_by(Build.status)):
        counts[BuildStatus(status).value] = n
    return counts
