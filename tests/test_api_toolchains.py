"""The toolchains table (migration 0002) and registry.toolchains, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from registry_fixtures import TOOLCHAIN, database_fixtures
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from nestml_registry.registry import db, toolchains
from nestml_registry.registry.errors import InvalidInput
from nestml_registry.registry.tables import Base

empty_db_url, db_url, engine, sessions = database_fixtures()


def test_migration_0002_makes_the_toolchains_table_of_tables_py(empty_db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    db.upgrade(empty_db_url, "0001")
    engine = db.make_engine(empty_db_url)
    try:
        with engine.begin() as conn:  # data from before the migration survives it
            conn.execute(text("INSERT INTO tokens (name, role, token_hash, created_at) "
                              "VALUES ('ci', 'reader', :h, CURRENT_TIMESTAMP)"), {"h": "0" * 64})
        db.upgrade(empty_db_url)
        assert db.current_revision(empty_db_url) == db.head_revision()
        assert "toolchains" in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM tokens")).scalar() == 1
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []
        db.upgrade(empty_db_url)  # a no-op
    finally:
        engine.dispose()
    from alembic import command

    command.downgrade(db.alembic_config(empty_db_url), "0001")
    engine = db.make_engine(empty_db_url)
    try:
        assert "toolchains" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_register_and_known(engine: Engine, sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        assert toolchains.known(s) == [] and toolchains.latest(s) is None
    other = TOOLCHAIN.replace("x86_64", "aarch64")
    with sessions.begin() as s:
        first = toolchains.register(s, {"id": TOOLCHAIN, "nest_version": "3.10.0"})
        first_seen = first.first_seen
    time.sleep(0.01)  # distinct timestamps on a coarse clock
    with sessions.begin() as s:
        toolchains.register(s, {"id": other, "nest_version": "3.10.0"})
    with sessions() as s:
        assert [t.id for t in toolchains.known(s)] == [other, TOOLCHAIN]
        assert toolchains.latest(s).id == other
    time.sleep(0.01)
    with sessions.begin() as s:  # a worker of the first toolchain starts again
        again = toolchains.register(s, {"id": TOOLCHAIN, "nest_version": "3.10.0", "extra": 1})
        assert again.first_seen == first_seen and again.last_seen > first_seen
    with sessions() as s:
        known = toolchains.known(s)
        assert [t.id for t in known] == [TOOLCHAIN, other]
        assert known[0].details == {"id": TOOLCHAIN, "nest_version": "3.10.0", "extra": 1}
        assert known[0].last_seen.tzinfo is not None


@pytest.mark.parametrize("details", [{}, {"id": ""}, {"id": "a/b"}, {"id": "x" * 201}, {"id": 3}, "not a dict"])
def test_register_refuses_invalid_ids(sessions: sessionmaker[Session], details: object) -> None:
    with pytest.raises(InvalidInput, match="toolchain"), sessions.begin() as s:
        toolchains.register(s, details)  # type: ignore[arg-type]
