"""The registry's time: what leases, heartbeats and liveness are measured by.

Workers run on many machines whose clocks differ; a lease set by a slow clock would look expired at
once, one set by a fast clock would outlive its worker. So every time the queue and the heartbeats
write or compare is the database server's: PostgreSQL's ``statement_timestamp()``. SQLite is embedded:
every process that opens it runs on the machine that holds the file, so that machine's clock is the
database's. A worker's own clock is only compared with it, to flag a machine whose clock is off.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import text
from sqlalchemy.orm import Session

from nestml_registry.registry.tables import utcnow

SKEW_WARNING_SECONDS = 30.0


def now(session: Session) -> datetime:
    """The database's current time (UTC, with its time zone)."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.scalar(text("SELECT statement_timestamp()"))
        return value.astimezone(timezone.utc)
    return utcnow()


def skew_note(registry_now: datetime, worker_now: datetime | None) -> str | None:
    """What to say of a worker whose clock differs from the registry's by more than a warning's worth."""
    if worker_now is None:
        return None
    if worker_now.tzinfo is None:
        worker_now = worker_now.replace(tzinfo=timezone.utc)
    skew = (worker_now - registry_now).total_seconds()
    if abs(skew) <= SKEW_WARNING_SECONDS:
        return None
    return (f"this worker's clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the registry's: leases "
            "and liveness use the registry's time, but its logs' times are off (synchronise it, e.g. with NTP)")
