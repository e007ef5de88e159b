"""The sweep of expired leases, run by the API process too: a build whose worker died goes back to
the queue (or fails after its attempts) even when no worker is alive to sweep it.

    sweeper = LeaseSweeper(database, metrics, every=20.0)
    sweeper.start()     # a daemon thread
    sweeper.stop()
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from nestml_registry.registry import characterisations, queue, workers
from nestml_registry.service.api.database import Database
from nestml_registry.service.api.metrics import ApiMetrics

logger = logging.getLogger(__name__)


class LeaseSweeper(threading.Thread):
    def __init__(self, database: Database, metrics: ApiMetrics, every: float) -> None:
        super().__init__(name="lease-sweeper", daemon=True)
        self.database, self.metrics, self.every = database, metrics, every
        self.swept = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            try:
                swept = self.database.write_blocking(_sweep)
            except RuntimeError:  # the database's threads are shut down: the app is stopping
                return
            except SQLAlchemyError as exc:  # the database is away: /healthz says so; sweep at the next turn
                logger.warning("sweeping expired leases failed: %s", str(getattr(exc, "orig", exc)).strip()[:200])
                continue
            self.swept += swept
            self.metrics.sweeps.inc()
            self.metrics.swept.inc(swept)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def _sweep(session: Session) -> int:
    """Expired leases back to the queue (or failed); workers silent for a week forgotten."""
    swept = len(queue.sweep(session)) + characterisations.sweep(session)
    workers.forget_dead(session)
    return swept
