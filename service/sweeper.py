"""The sweep of expired leases, run by the API process too: a build whose worker died goes back to
the queue (or fails after its attempts) even when no worker is alive to sweep it.

    sweeper = LeaseSweeper(sessions, every=20.0)
    sweeper.start()     # a daemon thread
    sweeper.stop()
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from registry import queue

logger = logging.getLogger(__name__)


class LeaseSweeper(threading.Thread):
    def __init__(self, sessions: sessionmaker[Session], every: float) -> None:
        super().__init__(name="lease-sweeper", daemon=True)
        self.sessions, self.every = sessions, every
        self.swept = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            try:
                with self.sessions.begin() as s:
                    self.swept += len(queue.sweep(s))
            except SQLAlchemyError as exc:  # the database is away: /healthz says so; sweep at the next turn
                logger.warning("sweeping expired leases failed: %s", str(getattr(exc, "orig", exc)).strip()[:200])

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
