"""When the client tries again: only idempotent requests, only answers that may pass, never sooner
than Retry-After, with jitter, within a budget."""

from __future__ import annotations

from nestml_registry.service.client.retries import RetryPolicy, parse_retry_after, retryable


def test_only_idempotent_requests_meeting_a_passing_fault_are_retried() -> None:
    assert retryable("GET", 503, "at_capacity") and retryable("GET", 503, "database_unavailable")
    assert retryable("GET", 502, None) and retryable("get", 504, None) and retryable("GET", None, "unreachable")
    assert not retryable("POST", 503, "at_capacity")  # a push may have been queued: the caller decides
    assert not retryable("GET", 503, "no_worker")  # waiting seconds does not start a worker
    assert not retryable("GET", 500, "corrupt_artifact") and not retryable("GET", 404, "not_found")


def test_waits_grow_with_jitter_respect_retry_after_and_stop_at_the_budget() -> None:
    policy = RetryPolicy(budget=30.0, first=0.5, cap=8.0)
    early = [policy.delay(0, 0.0) for _ in range(200)]
    late = [policy.delay(6, 0.0) for _ in range(200)]
    assert all(d is not None and 0.05 <= d <= 0.5 for d in early)
    assert all(d is not None and d <= 8.0 for d in late) and max(late) > 4.0  # type: ignore[operator]
    assert len(set(early)) > 150  # jittered: a thousand clients do not come back together
    told = [policy.delay(0, 0.0, "2") for _ in range(200)]
    assert all(d is not None and 2.0 <= d <= 3.0 for d in told)
    assert policy.delay(0, 29.99, "2") is None  # past the budget: give up
    assert RetryPolicy(budget=0).delay(0, 0.0) is None


def test_retry_after_is_read_in_seconds() -> None:
    assert parse_retry_after("5") == 5.0 and parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None and parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT") is None
