"""The API's way to the database: every query runs on one thread pool no larger than the engine's
connection pool, each call in a session of its own that is closed before the call returns.

    db = Database(engine, connections=10, wait_seconds=10.0)
    build = await db.read(queue.get_build, 42)          # fn(session, *args) in a read session
    doc = await db.write(submit_build, request)         # fn(session, *args) in one transaction

So a request never holds a connection while it waits for anything else (a thread, its client, another
step), and a thread that runs a query never waits for a connection: the API cannot deadlock itself
however many clients come at once. Calls beyond the pool wait in the event loop, where waiting costs
nothing, for up to ``wait_seconds``; then the request is answered 503 ``at_capacity`` with
``Retry-After`` (not "the database does not answer", which is kept for a database that does not).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nestml_registry.registry.db import is_sqlite, make_engine, make_sessionmaker

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class AtCapacity(Exception):
    """Every database connection stayed busy for ``wait_seconds``: the client should come back shortly."""

    def __init__(self, waited: float, connections: int) -> None:
        super().__init__(f"the server is at capacity: every one of its {connections} database connections stayed "
                         f"busy for {waited:g} s; try again in a few seconds")
        self.waited = waited
        self.connections = connections


def api_engine(url: str, connections: int, wait_seconds: float) -> Engine:
    """The API's engine: exactly ``connections`` pooled connections for the threads that use them, plus the
    one the registry's generation is read on (:mod:`nestml_registry.service.api.read_cache`, which keeps it), no
    overflow, a pool timeout no longer than the wait for a thread, and on PostgreSQL a connect timeout, so a
    database that does not answer is reported in seconds rather than after TCP gives up."""
    kwargs: dict[str, Any] = {"pool_size": connections + 1, "max_overflow": 0, "pool_timeout": wait_seconds}
    if not is_sqlite(url):
        kwargs["connect_args"] = {"connect_timeout": max(1, int(wait_seconds))}
    return make_engine(url, **kwargs)


class Database:
    def __init__(self, engine: Engine, connections: int, wait_seconds: float) -> None:
        self.engine = engine
        self.connections = connections
        self.wait_seconds = wait_seconds
        self.sessions = make_sessionmaker(engine)
        self.read_sessions = make_sessionmaker(engine, read_only=True)
        self._executor = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="database")

    async def read(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(session, *args, **kwargs)`` in a session that only reads (on SQLite it never waits for writers)."""
        return await self._wait(self._executor.submit(self._read, fn, args, kwargs))

    async def write(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(session, *args, **kwargs)`` in one transaction: committed when it returns, rolled back if it raises."""
        return await self._wait(self._executor.submit(self._write, fn, args, kwargs))

    def write_blocking(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """:meth:`write` for a thread outside the event loop (the lease sweeper): waits for the result."""
        return self._executor.submit(self._write, fn, args, kwargs).result()

    def _read(self, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        with self.read_sessions() as session:
            return fn(session, *args, **kwargs)

    def _write(self, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        with self.sessions.begin() as session:
            return fn(session, *args, **kwargs)

    async def _wait(self, future: Future[T]) -> T:
        wrapped = asyncio.wrap_future(future)
        try:
            done, _ = await asyncio.wait({wrapped}, timeout=self.wait_seconds)
            if not done and future.cancel():  # still waiting for a thread: nothing was done
                raise AtCapacity(self.wait_seconds, self.connections)
            return await wrapped  # running: it finishes (a query is short), so let it
        except asyncio.CancelledError:  # the client went away: drop the call if it has not started
            future.cancel()
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.engine.dispose()


def open_database(url: str, connections: int, wait_seconds: float) -> Database:
    return Database(api_engine(url, connections, wait_seconds), connections, wait_seconds)
