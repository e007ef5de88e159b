"""The build queue: idempotent enqueue, claims that never double up, leases, sweeps, retries.

The compile itself is not part of these tests: workers claim builds and finish them with fake results.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from registry_fixtures import (
    OTHER_TOOLCHAIN,
    TOOLCHAIN,
    Children,
    child_drain,
    child_enqueue,
    children_fixture,
    database_fixtures,
    fake_module,
    key_of,
    neuron_text,
    request_doc,
    source,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nestml_registry.registry import queue, tokens
from nestml_registry.registry.errors import InvalidInput
from nestml_registry.registry.tables import Build, BuildSource, BuildStatus, Source, utcnow

empty_db_url, db_url, engine, sessions = database_fixtures()
children = children_fixture(20)

FILES = [source("b.nestml", neuron_text("b_neuron")), source("a.nestml", neuron_text("a_neuron"))]


def _enqueue(s: Session, n: int, toolchain: str = TOOLCHAIN, **kw: int) -> Build:
    build, created = queue.enqueue(s, key_of(n, toolchain), toolchain, request_doc(), [source(
        f"m{n}.nestml", neuron_text(f"m{n}_neuron"))], **kw)
    assert created
    return build


def test_enqueue_is_idempotent_on_the_key(sessions: sessionmaker[Session]) -> None:
    key = key_of("one")
    with sessions.begin() as s:
        first, created = queue.enqueue(s, key, TOOLCHAIN, request_doc(), FILES, submitted_by=None)
        assert created and first.status == BuildStatus.QUEUED and first.attempts == 0
        assert queue.sources_of(first) == FILES  # in the given order
    with sessions.begin() as s:
        again, created = queue.enqueue(s, key, TOOLCHAIN, request_doc(), FILES)
        assert not created and again.id == first.id
        assert s.scalar(select(func.count()).select_from(Build)) == 1
        assert s.scalar(select(func.count()).select_from(Source)) == 2
        # another build sharing one source stores that source once
        token, _ = tokens.create_token(s, "ci", "publisher")
        other, _ = queue.enqueue(s, key_of("two"), TOOLCHAIN, request_doc(), FILES[:1], submitted_by=token.id)
        assert other.submitted_by == token.id
        assert s.scalar(select(func.count()).select_from(Source)) == 2
        assert s.scalar(select(func.count()).select_from(BuildSource)) == 3
        assert queue.queue_depth(s) == 2


def test_enqueue_checks_its_input(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        with pytest.raises(InvalidInput, match="build key"):
            queue.enqueue(s, "short", TOOLCHAIN, request_doc(), FILES)
        with pytest.raises(InvalidInput, match="at least one source"):
            queue.enqueue(s, key_of(1), TOOLCHAIN, request_doc(), [])
        name, _, text = FILES[0]
        with pytest.raises(InvalidInput, match="not the digest of its text"):
            queue.enqueue(s, key_of(1), TOOLCHAIN, request_doc(), [(name, "0" * 64, text)])


@pytest.mark.slow
def test_twenty_concurrent_identical_enqueues_make_one_build(db_url: str, sessions: sessionmaker[Session],
                                                            children: Children) -> None:
    key = key_of("concurrent")
    results = children.run(child_enqueue, [(db_url, key)] * 20)
    assert len({build_id for build_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Build)) == 1
        assert s.scalar(select(func.count()).select_from(Source)) == 1
        assert s.scalar(select(func.count()).select_from(BuildSource)) == 1
        assert queue.queue_depth(s) == 1


@pytest.mark.slow
def test_two_workers_drain_the_queue_without_claiming_a_build_twice(
        db_url: str, sessions: sessionmaker[Session], children: Children) -> None:
    with sessions.begin() as s:
        ids = [_enqueue(s, n).id for n in range(10)]
    claimed = children.run(child_drain, [(db_url, "worker-a"), (db_url, "worker-b")])
    everything = claimed[0] + claimed[1]
    assert sorted(everything) == sorted(ids)  # each build claimed exactly once
    with sessions() as s:
        builds = s.scalars(select(Build)).all()
        assert {b.status for b in builds} == {BuildStatus.FAILED}
        assert {b.attempts for b in builds} == {1}
        assert {b.lease_owner for b in builds} <= {"worker-a", "worker-b"}
        assert queue.counts_by_status(s) == {"queued": 0, "running": 0, "succeeded": 0, "failed": 10}


def test_claim_takes_the_oldest_build_of_its_toolchains(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        other = _enqueue(s, 1, OTHER_TOOLCHAIN)
        first = _enqueue(s, 2)
        second = _enqueue(s, 3)
    with sessions.begin() as s:
        assert queue.claim(s, "w1", [], 60) is None
        assert queue.claim(s, "w1", ["nest9-unknown"], 60) is None
        got = queue.claim(s, "w1", [TOOLCHAIN], 60)
        assert got is not None and got.id == first.id
        assert got.status == BuildStatus.RUNNING and got.attempts == 1 and got.lease_owner == "w1"
        assert got.started_at is not None and got.lease_expires_at > utcnow()
    with sessions.begin() as s:
        got = queue.claim(s, "w2", [TOOLCHAIN], 60)
        assert got is not None and got.id == second.id
        assert queue.claim(s, "w2", [TOOLCHAIN], 60) is None
        assert queue.queue_depth(s) == 1 and queue.queue_depth(s, [TOOLCHAIN]) == 0
        got = queue.claim(s, "w3", [TOOLCHAIN, OTHER_TOOLCHAIN], 60)
        assert got is not None and got.id == other.id


def test_lease_expiry_requeues_then_fails_after_max_attempts(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        build_id = _enqueue(s, 1, max_attempts=3).id
    for attempt in (1, 2, 3):
        worker = f"host:{attempt}"
        with sessions.begin() as s:
            got = queue.claim(s, worker, [TOOLCHAIN], 30)
            assert got is not None and got.id == build_id and got.attempts == attempt
        with sessions.begin() as s:
            assert queue.sweep(s) == []  # the lease still runs
            assert queue.sweep(s, now=utcnow() + timedelta(seconds=60)) == [build_id]
            build = queue.get_build(s, build_id)
        if attempt < 3:
            assert build.status == BuildStatus.QUEUED and build.lease_owner is None
            assert worker in build.stage
        else:
            assert build.status == BuildStatus.FAILED and build.finished_at is not None
            assert "lost its worker 3 times" in build.error and "host:3" in build.error
            assert "retry" in build.error
    with sessions.begin() as s:
        assert queue.claim(s, "host:4", [TOOLCHAIN], 30) is None
        assert queue.sweep(s, now=utcnow() + timedelta(days=1)) == []


def test_a_worker_that_lost_its_lease_can_neither_renew_nor_finish(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        build_id = _enqueue(s, 1).id
    with sessions.begin() as s:
        assert queue.claim(s, "old", [TOOLCHAIN], 10) is not None
    with sessions.begin() as s:
        assert queue.renew(s, build_id, "old", 10, stage="generating code")
        assert queue.get_build(s, build_id).stage == "generating code"
        assert not queue.renew(s, build_id, "someone-else", 10)
        assert queue.sweep(s, now=utcnow() + timedelta(seconds=60)) == [build_id]
    with sessions.begin() as s:
        assert queue.claim(s, "new", [TOOLCHAIN], 60) is not None
    with sessions.begin() as s:
        assert not queue.renew(s, build_id, "old", 10)
        assert not queue.finish(s, build_id, "old", "failed", [], "stale log", error="stale")
        assert queue.renew(s, build_id, "new", 60, stage="building C++")
        module = fake_module(s, "m1")
        assert queue.finish(s, build_id, "new", BuildStatus.SUCCEEDED, [], "the log", module)
        assert not queue.finish(s, build_id, "new", "failed", [], "twice")  # finished once only
    with sessions() as s:
        build = queue.get_build(s, build_id)
        assert build.status == BuildStatus.SUCCEEDED and build.attempts == 2
        assert build.module is not None and build.module.sha256 == module.sha256
        assert build.log == "the log" and build.error is None and build.finished_at is not None


def test_finish_checks_its_input_and_records_the_first_error(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        build_id = _enqueue(s, 1).id
        assert queue.claim(s, "w", [TOOLCHAIN], 60) is not None
        with pytest.raises(InvalidInput, match="succeeded or failed"):
            queue.finish(s, build_id, "w", "running", [], None)
        with pytest.raises(InvalidInput, match="needs its module"):
            queue.finish(s, build_id, "w", "succeeded", [], None)
        diags = [{"file": "m1.nestml", "line": 2, "severity": "warning", "message": "meh"},
                 {"file": "m1.nestml", "line": 8, "severity": "error", "message": "No free-standing units"}]
        assert queue.finish(s, build_id, "w", "failed", diags, "log")
        build = queue.get_build(s, build_id)
        assert build.error == "No free-standing units" and build.diagnostics == diags


def test_existing_builds_are_returned_as_they_are_and_failed_ones_retried_on_request(
        sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        ok, failed = _enqueue(s, 1), _enqueue(s, 2)
        for build in (ok, failed):
            assert queue.claim(s, "w", [TOOLCHAIN], 60).id == build.id
        assert queue.finish(s, ok.id, "w", "succeeded", [], "log", fake_module(s, "m1"))
        assert queue.finish(s, failed.id, "w", "failed", [], "log", error="boom")
    with sessions.begin() as s:
        same, created = queue.enqueue(s, ok.key, TOOLCHAIN, request_doc(), queue.sources_of(ok), retry=True)
        assert not created and same.status == BuildStatus.SUCCEEDED and same.module is not None
        same, created = queue.enqueue(s, failed.key, TOOLCHAIN, request_doc(), queue.sources_of(failed))
        assert not created and same.status == BuildStatus.FAILED and same.error == "boom"
        again, created = queue.enqueue(s, failed.key, TOOLCHAIN, request_doc(), queue.sources_of(failed),
                                       retry=True)
        assert created and again.id == failed.id and again.status == BuildStatus.QUEUED
        assert again.attempts == 0 and again.error is None and again.lease_owner is None
        assert queue.counts_by_status(s) == {"queued": 1, "running": 0, "succeeded": 1, "failed": 0}
        assert queue.claim(s, "w2", [TOOLCHAIN], 60).id == failed.id


def test_one_submitters_many_builds_do_not_starve_anothers(sessions: sessionmaker[Session]) -> None:
    """Round robin by submitter: with one worker, the second submitter's build is next, not sixth;
    a submitter with a build running waits behind one with none."""
    with sessions.begin() as s:
        alice, _ = tokens.create_token(s, "alice", "publisher")
        bob, _ = tokens.create_token(s, "bob", "publisher")
        alices = [_enqueue(s, 100 + i, submitted_by=alice.id) for i in range(5)]
        bobs = _enqueue(s, 200, submitted_by=bob.id)
        anonymous = _enqueue(s, 300)
    order = []
    for _ in range(4):  # one worker: claim, finish, claim...
        with sessions.begin() as s:
            got = queue.claim(s, "w1", [TOOLCHAIN], 60)
            assert got is not None
            order.append(got.id)
            assert queue.finish(s, got.id, "w1", BuildStatus.FAILED, [], None)
    assert order == [alices[0].id, bobs.id, anonymous.id, alices[1].id]
    with sessions.begin() as s:  # two workers: alice has one running, so bob's new build goes first
        running = queue.claim(s, "w1", [TOOLCHAIN], 60)
        assert running is not None and running.id == alices[2].id
        later = _enqueue(s, 201, submitted_by=bob.id)
    with sessions.begin() as s:
        got = queue.claim(s, "w2", [TOOLCHAIN], 60)
        assert got is not None and got.id == later.id


def test_leases_and_liveness_are_on_the_registrys_clock(sessions: sessionmaker[Session],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker whose machine's clock is 10 minutes fast or 5 minutes slow: its lease and its liveness are
    measured by the database's clock (on SQLite, embedded, that is this machine's), and it is flagged."""
    from nestml_registry.registry import clock, tables, workers

    real = tables.utcnow
    for n, offset in ((9001, timedelta(minutes=10)), (9002, timedelta(minutes=-5))):
        with sessions.begin() as s:
            postgres = s.get_bind().dialect.name == "postgresql"
            build_id = _enqueue(s, n).id
        if postgres:  # the worker's Python clock is off; the database's is not
            monkeypatch.setattr(tables, "utcnow", lambda offset=offset: real() + offset)
        worker = f"w{n}"
        with sessions.begin() as s:
            claimed = queue.claim(s, worker, [TOOLCHAIN], 60)
            assert claimed is not None and claimed.id == build_id
            workers.beat(s, workers.Beat(worker, TOOLCHAIN, "h", 1, 30.0, build_id, sent_at=real() + offset))
        with sessions.begin() as s:
            lease_left = (queue.get_build(s, build_id).lease_expires_at - clock.now(s)).total_seconds()
            assert 50 < lease_left <= 61, (offset, lease_left)
            assert build_id not in queue.sweep(s)  # not expired on the registry's clock
            assert workers.of_toolchain(s, TOOLCHAIN)[0] >= 1
            note = s.get(tables.WorkerRow, worker).last_error or ""
            assert "clock is" in note and ("ahead of" if offset > timedelta(0) else "behind") in note, note
        monkeypatch.undo()
    assert clock.skew_note(real(), real() + timedelta(seconds=5)) is None
