"""Fixtures and helpers for the registry tests: a fresh database on SQLite and on PostgreSQL, migrated
to head with ``nestml_registry.registry.db.upgrade``, and the functions that run in child processes (spawned, so they
live in an importable module).

The PostgreSQL server is ``NESTML_REGISTRY_TEST_POSTGRES_URL`` (default: trust auth as ``postgres`` on
127.0.0.1:5432); each test gets its own database ``nr_test_<hex>``, dropped WITH (FORCE) afterwards.

This module does not import pytest (see ``database_fixtures``): spawned children import it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nestml_registry.registry import db, publishing, queue, records
from nestml_registry.registry.tables import Build, BuildStatus, Module, utcnow

PG_URL = os.environ.get("NESTML_REGISTRY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TOOLCHAIN = "nest3.10.0-linux-x86_64-gcc12.2.0-abi0-572123386539"
OTHER_TOOLCHAIN = "nest3.10.0-linux-aarch64-gcc12.2.0-abi0-0123456789ab"
BACKENDS = ["sqlite", "postgresql"]
# scripts/test.sh sets this when it has started a server: then a PostgreSQL that does not answer fails the
# tests that need one, where elsewhere it skips them
PG_REQUIRED_ENV = "NESTML_REGISTRY_TEST_POSTGRES_REQUIRED"


def backend_params() -> list[Any]:
    """``params`` of a fixture parametrized by database backend: PostgreSQL's are in the slow lane."""
    import pytest

    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]


# -- databases --------------------------------------------------------------------------------------


def _pg_admin() -> Engine:
    url = make_url(PG_URL).set(database="postgres").render_as_string(hide_password=False)
    return db.make_engine(url, isolation_level="AUTOCOMMIT")


def create_database(backend: str, tmp_path: Path) -> str:
    """A new, empty database; its URL."""
    if backend == "sqlite":
        return db.default_url(tmp_path / "home")
    name = f"nr_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        import pytest

        why = (f"no test database on the PostgreSQL server {PG_URL} ({str(exc).splitlines()[0]}): start PostgreSQL "
               "(trust auth for user postgres on 127.0.0.1:5432), set NESTML_REGISTRY_TEST_POSTGRES_URL, or run "
               "scripts/test.sh, which starts one")
        if os.environ.get(PG_REQUIRED_ENV):
            pytest.fail(why)
        pytest.skip(why)
    finally:
        admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def set_connections(url: str, allowed: bool) -> None:
    """ALLOW_CONNECTIONS off, and every session of the database ended: for everyone, superusers too."""
    name = make_url(url).database
    admin = db.make_engine(PG_URL)
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}'))
            if not allowed:
                c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n "
                               "AND pid <> pg_backend_pid()"), {"n": name})
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    if db.is_sqlite(url):
        return
    name = make_url(url).database
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def database_fixtures() -> tuple[Any, Any, Any, Any]:
    """The fixtures ``empty_db_url`` (a fresh database never migrated, on each backend), ``db_url`` (the same,
    migrated to head), ``engine`` and ``sessions``. A test module assigns them at its top level:
    ``empty_db_url, db_url, engine, sessions = database_fixtures()``. pytest is imported here and not when
    this module is imported, so that the spawned child processes start faster."""
    import pytest

    @pytest.fixture(params=backend_params())
    def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
        url = create_database(request.param, tmp_path)
        try:
            yield url
        finally:
            drop_database(url)

    @pytest.fixture
    def db_url(empty_db_url: str) -> str:
        db.upgrade(empty_db_url)
        return empty_db_url

    @pytest.fixture
    def engine(db_url: str) -> Iterator[Engine]:
        engine = db.make_engine(db_url)
        try:
            yield engine
        finally:
            engine.dispose()

    @pytest.fixture
    def sessions(engine: Engine) -> sessionmaker[Session]:
        return db.make_sessionmaker(engine)

    return empty_db_url, db_url, engine, sessions


# -- data -------------------------------------------------------------------------------------------


def source(name: str, text_: str) -> tuple[str, str, str]:
    return name, hashlib.sha256(text_.encode()).hexdigest(), text_


def neuron_text(model: str = "custom_izh_neuron", variant: int = 0) -> str:
    return (f"model {model}:\n    parameters:\n        a real = {0.02 + variant / 1000}\n"
            "    state:\n        V_m mV = -65 mV\n")


def key_of(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def request_doc(module: str = "custom_izh_neuron_nestml_module", suffix: str = "_nestml",
                pairs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"module": module, "suffix": suffix, "pairs": pairs or []}


def model_dict(name: str = "custom_izh_neuron_nestml", source_file: str = "izh.nestml", kind: str = "neuron",
               **extra: Any) -> dict[str, Any]:
    base = name.split("__with_")[0].removesuffix("_nestml")
    return {"name": name, "kind": kind, "nestml_name": base, "source": source_file,
            "parameters": [{"name": "a", "unit": "real", "value": 0.02}],
            "state": [{"name": "V_m", "unit": "mV", "value": -65.0}],
            "input_ports": [{"name": "spikes", "type": "spike"}], "receptor_types": {}, "variants": [], **extra}


def fake_module(session: Session, seed: str, name: str = "custom_izh_neuron_nestml_module",
                toolchain: str = TOOLCHAIN) -> Module:
    sha = hashlib.sha256(seed.encode()).hexdigest()
    return records.get_or_create_module(session, sha, name, 1000, toolchain, f"{sha[:2]}/{sha}/{name}.so")


def published_build(session: Session, *, files: list[tuple[str, str, str]], models: list[dict[str, Any]],
                    actor: str | None = "alice", toolchain: str = TOOLCHAIN, module: str | None = None,
                    suffix: str = "_nestml", pairs: list[dict[str, Any]] | None = None, admin: bool = False,
                    ) -> tuple[Build, list[publishing.Published]]:
    """A succeeded build of ``files`` (with a fake module) whose ``models`` are published."""
    module = module or "custom_izh_neuron_nestml_module"
    key = key_of(files, module, suffix, pairs, toolchain)
    build, _ = queue.enqueue(session, key, toolchain, request_doc(module, suffix, pairs), files)
    mod = fake_module(session, key, module, toolchain)
    build.status, build.module, build.finished_at = BuildStatus.SUCCEEDED, mod, utcnow()
    session.flush()
    return build, publishing.publish(session, build, mod, models, actor, admin=admin)


# -- child processes (spawned) ----------------------------------------------------------------------


class Children:
    """A pool of spawned worker processes that run test functions at the same moment (a barrier).
    One pool serves every test of a module: spawning costs each process about half a second of CPU."""

    def __init__(self, size: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.size = size
        self._manager = ctx.Manager()
        self._pool = ctx.Pool(size)

    def run(self, target: Any, args_list: list[tuple[Any, ...]]) -> list[Any]:
        """``target(*args, barrier)`` for each args, each in its own process, together; their results."""
        # every call waits at the barrier until all have arrived, so each one holds a process of its own
        assert len(args_list) <= self.size, f"{len(args_list)} calls need {len(args_list)} processes"
        barrier = self._manager.Barrier(len(args_list))
        pending = [self._pool.apply_async(target, (*args, barrier)) for args in args_list]
        return [p.get(timeout=300) for p in pending]

    def close(self) -> None:
        self._pool.close()
        self._pool.join()
        self._manager.shutdown()


def children_fixture(size: int) -> Any:
    """A module-scoped fixture ``children``: a :class:`Children` pool of ``size`` processes."""
    import pytest

    @pytest.fixture(scope="module")
    def children() -> Iterator[Children]:
        pool = Children(size)
        try:
            yield pool
        finally:
            pool.close()

    return children


def child_upgrade(url: str, barrier: Any) -> str | None:
    """Migrate the database to head at the same moment as the siblings."""
    barrier.wait(timeout=120)
    db.upgrade(url)
    return db.current_revision(url)


def child_enqueue(url: str, key: str, barrier: Any) -> tuple[int, bool]:
    """Enqueue the same build as every sibling, all at once: (build id, created)."""
    engine = db.make_engine(url)
    try:
        sessions = db.make_sessionmaker(engine)
        barrier.wait(timeout=120)
        with sessions.begin() as s:
            build, created = queue.enqueue(s, key, TOOLCHAIN, request_doc(), [source("izh.nestml", neuron_text())])
            return build.id, created
    finally:
        engine.dispose()


def child_drain(url: str, worker_id: str, barrier: Any) -> list[int]:
    """Claim and finish builds until none is left: the ids this worker claimed."""
    engine = db.make_engine(url)
    try:
        sessions = db.make_sessionmaker(engine)
        barrier.wait(timeout=120)
        mine = []
        while True:
            with sessions.begin() as s:
                build = queue.claim(s, worker_id, [TOOLCHAIN], 300)
            if build is None:
                return mine
            mine.append(build.id)
            with sessions.begin() as s:
                assert queue.renew(s, build.id, worker_id, 300, stage="generating code")
            with sessions.begin() as s:
                assert queue.finish(s, build.id, worker_id, "failed", [], "fake log", error="fake")
    finally:
        engine.dispose()


def child_publish(url: str, index: int, barrier: Any) -> int:
    """Publish content number ``index`` of one model name, at the same moment as the siblings: its version."""
    engine = db.make_engine(url)
    try:
        sessions = db.make_sessionmaker(engine)
        files = [source("izh.nestml", neuron_text(variant=index))]
        barrier.wait(timeout=120)
        with sessions.begin() as s:
            _, published = published_build(s, files=files, models=[model_dict()], actor="alice")
            return published[0].version
    finally:
        engine.dispose()


def child_open(url: str, barrier: Any) -> str:
    """Open the database at the same moment as the siblings (a new SQLite file: all switch it to WAL)."""
    barrier.wait(timeout=120)
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar())
    finally:
        engine.dispose()
