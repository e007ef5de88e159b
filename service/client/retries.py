"""When the client tries a request again: idempotent requests (GET) that met a busy or restarting
server (502, 503, 504, or a connection refused or cut), after exponential waits with full jitter,
never sooner than the server's ``Retry-After``, for at most a time budget.

So a thousand simulation ranks that ask for their modules at once spread themselves out instead of
failing, and a client never waits longer than ``budget`` seconds on retries.

    policy = RetryPolicy(budget=120.0)
    for attempt in itertools.count():
        ...
        delay = policy.delay(attempt, elapsed, retry_after)   # None: give up, raise the error
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

RETRY_STATUSES = frozenset({502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
NOT_TRANSIENT = frozenset({"no_worker"})  # a 503 that waiting a few seconds does not cure
BUDGET_ENV = "NESTML_REGISTRY_RETRY_SECONDS"


def _budget_from_env() -> float:
    raw = os.environ.get(BUDGET_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else 120.0
    except ValueError:
        return 120.0


@dataclass(frozen=True)
class RetryPolicy:
    budget: float = 120.0  # seconds of waiting between attempts, at most (0: never retry)
    first: float = 0.5
    cap: float = 15.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """The default policy, with ``$NESTML_REGISTRY_RETRY_SECONDS`` as its budget."""
        return cls(budget=_budget_from_env())

    def delay(self, attempt: int, waited: float, retry_after: str | None = None) -> float | None:
        """The wait before attempt ``attempt + 1`` (``attempt`` counts from 0), or None once the waits so
        far (``waited``) and this one would pass the budget."""
        backoff = random.uniform(0.0, min(self.cap, self.first * 2 ** attempt))  # full jitter
        told = parse_retry_after(retry_after)
        delay = max(backoff, told * random.uniform(1.0, 1.5)) if told is not None else backoff
        delay = max(0.05, min(delay, self.cap))
        return None if waited + delay > self.budget else delay


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (its HTTP-date form is not used by this server: None)."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


def retryable(method: str, status: int | None, code: str | None) -> bool:
    """Whether an answer (``status``; None when no answer came) to ``method`` is worth trying again."""
    if method.upper() not in IDEMPOTENT:
        return False
    if status is None:
        return True
    return status in RETRY_STATUSES and code not in NOT_TRANSIENT
