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
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from sqlalchemy.orm import Session

from nestml_registry.registry import records
from nestml_registry.service.database import Database

MAX_ENTRIES = 20_000


def _generation(session: Session) -> int:
    generation = records.generation(session)
    return -1 if generation is None else generation  # -1: a database without the row keeps nothing


class Generation:
    """The registry's generation, read at most once per batch of requests that arrived while the last read
    ran, and never older than a request."""

    def __init__(self) -> None:
        self._running: asyncio.Future[int] | None = None
        self._next: asyncio.Future[int] | None = None

    async def current(self, db: Database) -> int:
        if self._running is None or self._running.done():  # nothing in flight: a read that starts now
            self._running = asyncio.ensure_future(db.read(_generation))
            return await asyncio.shield(self._running)
        if self._next is None:  # one runs, begun before this request: the read after it
            self._next = asyncio.ensure_future(self._after(self._running, db))
        return await asyncio.shield(self._next)

    async def _after(self, previous: asyncio.Future[int], db: Database) -> int:
        with contextlib.suppress(Exception):  # its own callers get its error
            await previous
        self._running, self._next = self._next, None  # (later arrivals wait for this one, or the one after)
        return await db.read(_generation)


class ReadCache:
    """Response bodies by key, each valid for the generation it was made at (least recently used first out)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.generation = Generation()
        self._entries: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self._making: dict[tuple[Hashable, int], asyncio.Future[bytes]] = {}
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    async def get(self, db: Database, key: Hashable, make: Callable[[], Awaitable[bytes]]) -> bytes:
        """The body for ``key`` at the current generation: kept, or ``make()`` (whose errors propagate and
        are not kept)."""
        generation = await self.generation.current(db)
        if generation < 0:
            return await make()
        kept = self._entries.get(key)
        if kept is not None and kept[0] == generation:
            self._entries.move_to_end(key)
            self.hits += 1
            return kept[1]
        making = self._making.get((key, generation))
        if making is None:  # the first to miss makes it; who misses the same meanwhile waits for that
            self.misses += 1
            making = self._making[(key, generation)] = asyncio.ensure_future(self._make(key, generation, make))
        return await asyncio.shield(making)

    async def _make(self, key: Hashable, generation: int, make: Callable[[], Awaitable[bytes]]) -> bytes:
        try:
            body = await make()
        finally:
            del self._making[(key, generation)]
        self._entries[key] = (generation, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return body
