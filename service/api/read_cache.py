"""Answers of the hot read paths kept in the API process, as exact as reading the database every time.

Everything a resolution depends on changes only by publishing (a new version, or a module for another
toolchain), yanking, unyanking or repairing a module, and each of those records an audit event in the same
transaction, which counts it in the registry's *generation* (``registry.records.generation``; the
counter's row serialises those transactions, so generations follow commit order). An answer made at
generation G is the answer while the generation is G. A cached answer is served only after reading the generation
afresh, with a read that started after the request arrived (requests that arrive while a read runs share
the next one): whatever committed before a request arrived, in any process, is in its answer.

A thousand simulation jobs that start together thus cost a handful of one-row reads instead of a thousand
resolutions. Only successful answers are kept (an error may name a build whose state changes unaudited).

Tokens' owners are kept the same way (creating and revoking a token are audited too), except a page
session's, which also ends with time and at sign-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from nestml_registry.registry.db import read_connection
from nestml_registry.service.api.database import Database

logger = logging.getLogger(__name__)
MAX_ENTRIES = 20_000
# registry.records.generation as one statement (registry.tables.RegistryState)
_GENERATION_SQL = "SELECT generation FROM registry_state WHERE id = 1"
T = TypeVar("T")


class Generation:
    """The registry's generation, read at most once per batch of requests that arrived while the last read
    ran, and never older than a request. The read is one statement on a connection of its own (its
    transaction ended after each read, so the next sees every commit), on a thread of its own: cheap enough
    to make per batch."""

    def __init__(self) -> None:
        self._running: asyncio.Future[int] | None = None
        self._next: asyncio.Future[int] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generation")
        self._connection: Connection | None = None

    async def current(self, db: Database) -> int:
        if self._running is None or self._running.done():  # nothing in flight: a read that starts now
            self._running = asyncio.ensure_future(self._read(db))
            return await asyncio.shield(self._running)
        if self._next is None:  # one runs, begun before this request: the read after it
            self._next = asyncio.ensure_future(self._after(self._running, db))
        return await asyncio.shield(self._next)

    async def _after(self, previous: asyncio.Future[int], db: Database) -> int:
        with contextlib.suppress(Exception):  # its own callers get its error
            await previous
        self._running, self._next = self._next, None  # (later arrivals wait for this one, or the one after)
        return await self._read(db)

    async def _read(self, db: Database) -> int:
        return await asyncio.wrap_future(self._thread.submit(self._read_now, db.engine))

    def _read_now(self, engine: Engine) -> int:
        """The generation, or -1 (keep nothing) when it cannot be read: the request then reads the database
        itself, and meets the database's own error if it has one."""
        try:
            if self._connection is None:
                self._connection = read_connection(engine)
            value = self._connection.exec_driver_sql(_GENERATION_SQL).scalar()
            self._connection.rollback()  # the next read sees what committed meanwhile
        except SQLAlchemyError as exc:
            logger.debug("registry generation not read: %s", exc)
            self._close_connection()
            return -1
        return -1 if value is None else int(value)

    def _close_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._connection.close()
            self._connection = None

    def close(self) -> None:
        """Give the connection back (on the thread that uses it) and stop the thread."""
        self._thread.submit(self._close_connection).result()
        self._thread.shutdown()


def _always(value: Any) -> bool:
    return True


class ReadCache:
    """Values (response bodies, tokens' owners) by key, each valid for the generation it was made at (least
    recently used first out)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.generation = Generation()
        self._entries: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()
        self._making: dict[tuple[Hashable, int], asyncio.Future[Any]] = {}
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    async def get(self, db: Database, key: Hashable, make: Callable[[], Awaitable[T]],
                  keep: Callable[[T], bool] = _always) -> T:
        """The value for ``key`` at the current generation: kept, or ``make()`` (whose errors propagate and
        are not kept; nor is a value that ``keep`` refuses)."""
        generation = await self.generation.current(db)
        if generation < 0:
            return await make()
        found, value = self._kept(key, generation)
        if found:
            return value
        making = self._making.get((key, generation))
        if making is None:  # the first to miss makes it; who misses the same meanwhile waits for that
            self.misses += 1
            making = self._making[(key, generation)] = asyncio.ensure_future(
                self._make(key, generation, make, keep))
        return await asyncio.shield(making)

    async def fresh(self, db: Database, key: Hashable) -> Any:
        """The value kept for ``key`` if it is the current generation's, else None (nothing is made)."""
        generation = await self.generation.current(db)
        return self._kept(key, generation)[1] if generation >= 0 else None

    def _kept(self, key: Hashable, generation: int) -> tuple[bool, Any]:
        kept = self._entries.get(key)
        if kept is None or kept[0] != generation:
            return False, None
        self._entries.move_to_end(key)
        self.hits += 1
        return True, kept[1]

    async def _make(self, key: Hashable, generation: int, make: Callable[[], Awaitable[T]],
                    keep: Callable[[T], bool]) -> T:
        try:
            value = await make()
        finally:
            del self._making[(key, generation)]
        if keep(value):
            self._entries[key] = (generation, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def close(self) -> None:
        self.generation.close()
