"""``GET /healthz`` (liveness, database reachability, live workers per toolchain) and ``GET /metrics``
(Prometheus text)."""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import time

from fastapi import APIRouter, Request, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nestml_registry.registry import toolchains, verdicts, workers
from nestml_registry.service.api import schemas
from nestml_registry.service.api.database import Database
from nestml_registry.service.api.deps import DatabaseDep, MetricsDep, ReaderDep, SettingsDep
from nestml_registry.service.api.errors import ApiError, error_responses
from nestml_registry.service.api.metrics import CONTENT_TYPE, sandboxed
from nestml_registry.service.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])
MIN_FREE_BYTES = 512 * 1024 ** 2  # or 2 % of the disk, whichever is more
HEALTH_MAX_AGE = 1.0  # seconds a health document is answered again


def _health(session: Session, sandbox_on: bool) -> schemas.Health:
    session.execute(text("SELECT 1")).scalar_one()
    unsandboxed = [t.id for t in toolchains.known(session) if not sandboxed(t.details)]
    rows = workers.by_toolchain(session)
    problems = [f"toolchain {r.toolchain} has {r.queued} queued build(s) and no live compile worker"
                f"{f' (none alive since {r.last_alive:%Y-%m-%d %H:%M:%S} UTC)' if r.last_alive else ''}: start one "
                "with `nestml-registry worker` on a machine of that toolchain" for r in rows if r.stranded]
    problems += verdicts.changed_problems(session)
    off = bool(unsandboxed) or not sandbox_on
    return schemas.Health(status="degraded" if problems else "ok", database="ok", sandbox="off" if off else "on",
                          unsandboxed_toolchains=unsandboxed, problems=problems,
                          workers=[schemas.ToolchainHealth(toolchain=r.toolchain, live_workers=r.live, queued=r.queued,
                                                           running=r.running, last_alive=r.last_alive,
                                                           worker_retries=r.retries) for r in rows])


def disk_problems(settings: Settings) -> list[str]:
    """What is short of space: the artifact store's disk and the home's (an SQLite database lives there)."""
    problems = []
    for what, folder in (("the artifact store", settings.store_dir), ("the registry's home", settings.home)):
        try:
            usage = shutil.disk_usage(folder)
        except OSError:
            continue
        if usage.free < max(MIN_FREE_BYTES, usage.total // 50):
            problems.append(f"the disk of {what} ({folder}) has {usage.free // 1024 ** 2} MiB free: builds and "
                            "uploads fail until space is freed")
    return problems


class RecentHealth:
    """The health document, computed at most once per ``max_age`` seconds and once for every caller that asks
    while it is being computed: however many ask at once, one database read answers them all (a health check
    stays cheap under load, where monitors and a thousand starting jobs ask together)."""

    def __init__(self, max_age: float = HEALTH_MAX_AGE) -> None:
        self._running: asyncio.Task[bytes] | None = None
        self._done_at = -math.inf
        self.max_age = max_age

    async def get(self, db: Database, settings: Settings) -> bytes:
        """The health document (JSON)."""
        task = self._running
        if task is None or (task.done() and not self._reusable(task)):
            task = self._running = asyncio.ensure_future(self._compute(db, settings))
            task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def fresh(self) -> bytes | None:
        """The document if one computed less than ``max_age`` ago is at hand (nothing is computed)."""
        task = self._running
        return task.result() if task is not None and task.done() and self._reusable(task) else None

    def _reusable(self, task: asyncio.Task[bytes]) -> bool:
        return not task.cancelled() and task.exception() is None and time.monotonic() - self._done_at < self.max_age

    def _finished(self, task: asyncio.Task[bytes]) -> None:
        self._done_at = time.monotonic()

    @staticmethod
    async def _compute(db: Database, settings: Settings) -> bytes:
        health = await db.read(_health, settings.sandbox)
        disk = await run_in_threadpool(disk_problems, settings)
        if disk:
            health = health.model_copy(update={"status": "degraded", "problems": [*health.problems, *disk]})
        return health.model_dump_json().encode()


@router.get("/healthz", response_model=schemas.Health,
            summary="Liveness, database reachability and live compile workers per toolchain",
            responses=error_responses(503))
async def healthz(request: Request, db: DatabaseDep, settings: SettingsDep) -> schemas.Health:
    """200 while the API and its database answer: ``status`` is ``degraded`` when a toolchain has queued
    builds and no live worker, a disk the registry writes to is nearly full, or a model's characterisation
    or check changed on a new toolchain (``problems`` says which).
    503 when the database does not answer. Callers that ask at the same time share one computation, and
    it is answered again for a second."""
    try:
        body = await request.app.state.health.get(db, settings)
    except SQLAlchemyError as exc:
        logger.error("health check: the database does not answer: %s", exc)
        raise ApiError(503, "database_unavailable", "the registry's database does not answer: check that the database "
                       "server runs and NESTML_REGISTRY_DATABASE_URL",
                       {"database": "unavailable", "dependency": "database"}, {"Retry-After": "5"}) from None
    return Response(body, media_type="application/json")  # type: ignore[return-value]  # (already serialised)


@router.get("/metrics", summary="Prometheus metrics (text format)", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}},
                       **error_responses(401)})
async def metrics(db: DatabaseDep, api_metrics: MetricsDep, _reader: ReaderDep) -> Response:
    return Response(await db.read(api_metrics.render), media_type=CONTENT_TYPE)
