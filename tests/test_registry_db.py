"""The registry database: migrations to head on SQLite and PostgreSQL, engine settings, timestamps."""

from __future__ import annotations

from datetime import timezone
from pathlib import Path

import pytest
from registry_fixtures import Children, child_open, child_upgrade, children_fixture, database_fixtures
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from nestml_registry.registry import db, tokens
from nestml_registry.registry.errors import InvalidInput, SchemaOutOfDate
from nestml_registry.registry.tables import Base

empty_db_url, db_url, engine, sessions = database_fixtures()
children = children_fixture(2)

TABLES = {"toolchains", "sources", "builds", "build_sources", "modules", "model_names", "model_versions",
          "model_modules", "tokens", "audit_events", "workers", "characterisations", "registry_state"}


def test_migrate_empty_database_to_head(empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    assert db.current_revision(empty_db_url) is None
    with pytest.raises(SchemaOutOfDate, match=r"nestml-registry db upgrade"):
        db.require_current(empty_db_url)
    monkeypatch.chdir(tmp_path)  # no alembic.ini anywhere near: the configuration is built in code
    db.upgrade(empty_db_url)
    assert db.current_revision(empty_db_url) == db.head_revision() == "0015"
    db.require_current(empty_db_url)
    db.upgrade(empty_db_url)  # a second upgrade is a no-op
    engine = db.make_engine(empty_db_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
        with engine.connect() as conn:  # the migration made exactly what tables.py declares
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []
        uniques = {tuple(u["column_names"]) for u in inspect(engine).get_unique_constraints("model_versions")}
        assert {("name", "version"), ("name", "content_digest")} <= uniques
    finally:
        engine.dispose()


@pytest.mark.slow
def test_concurrent_upgrades_of_one_database(empty_db_url: str, children: Children) -> None:
    # an API and its workers may all run `db upgrade` as they start
    assert children.run(child_upgrade, [(empty_db_url,)] * 2) == [db.head_revision()] * 2


@pytest.mark.slow
def test_processes_opening_a_new_sqlite_database_at_once(tmp_path: Path, children: Children) -> None:
    # the first connections of an API and its workers all switch the new file to WAL
    for i in range(5):
        url = db.default_url(tmp_path / f"home{i}")
        assert children.run(child_open, [(url,)] * children.size) == ["wal"] * children.size


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    url = db.default_url(tmp_path / "home")
    assert url == f"sqlite:///{(tmp_path / 'home' / 'registry.db').resolve()}"
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.BUSY_TIMEOUT_MS
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_transactions_take_the_write_lock_unless_read_only(tmp_path: Path) -> None:
    import sqlite3

    url = db.default_url(tmp_path)
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        for read_only, other_writer_can_start in ((True, True), (False, False)):
            with db.make_sessionmaker(engine, read_only=read_only)() as s:
                s.execute(text("SELECT count(*) FROM tokens")).scalar()  # the transaction has begun
                other = sqlite3.connect(tmp_path / "registry.db", timeout=0, isolation_level=None)
                try:
                    other.execute("BEGIN IMMEDIATE")
                    other.execute("ROLLBACK")
                    started = True
                except sqlite3.OperationalError as exc:
                    assert "locked" in str(exc)
                    started = False
                finally:
                    other.close()
            assert started == other_writer_can_start
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO build_sources (build_id, position, source_id, name) VALUES (99, 0, 99, 'x')"))


def test_unsupported_urls_are_refused() -> None:
    with pytest.raises(InvalidInput, match=r"SQLite or PostgreSQL"):
        db.make_engine("mysql://u@h/db")
    with pytest.raises(InvalidInput, match=r"invalid database URL"):
        db.make_engine("not a url")


def test_timestamps_are_timezone_aware_utc(engine: Engine) -> None:
    sessions = db.make_sessionmaker(engine)
    with sessions.begin() as s:
        token, secret = tokens.create_token(s, "ci", "publisher")
        token_id = token.id
    with sessions() as s:
        found = tokens.find_token(s, secret)
        assert found is not None and found.id == token_id
        assert found.created_at.tzinfo is not None and found.created_at.utcoffset() == timezone.utc.utcoffset(None)
        assert found.token_hash != secret and secret not in found.token_hash


def test_tokens_are_stored_hashed_and_can_be_revoked(engine: Engine) -> None:
    sessions = db.make_sessionmaker(engine)
    with sessions.begin() as s:
        token, secret = tokens.create_token(s, "alice", "admin")
        token_id = token.id
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM tokens")).scalars().all()
    assert stored == [tokens.hash_token(secret)]
    with sessions.begin() as s:
        tokens.revoke_token(s, token_id)
    with sessions() as s:
        assert tokens.find_token(s, secret) is None
        assert tokens.find_token(s, "nrt_wrong") is None
    with pytest.raises(InvalidInput, match=r"reader, publisher, admin"), sessions.begin() as s:
        tokens.create_token(s, "x", "root")


def test_read_only_sessions_see_committed_data(engine: Engine) -> None:
    with db.make_sessionmaker(engine).begin() as s:
        tokens.create_token(s, "reader", "reader")
    with db.make_sessionmaker(engine, read_only=True)() as s:
        assert s.execute(text("SELECT count(*) FROM tokens")).scalar() == 1


def test_migration_0003_gives_every_name_a_principal(empty_db_url: str) -> None:
    """Names owned by a token id become its token's name; names published anonymously become 'local's."""
    db.upgrade(empty_db_url, "0002")
    engine = db.make_engine(empty_db_url)
    try:
        with engine.begin() as c:
            c.execute(text("INSERT INTO tokens (id, name, role, token_hash, created_at) "
                           "VALUES (7, 'alice', 'publisher', :h, CURRENT_TIMESTAMP)"), {"h": "0" * 64})
            for name, owner in (("a_nestml", "7"), ("b_nestml", None), ("c_nestml", "someone")):
                c.execute(text("INSERT INTO model_names (name, owner, created_at) VALUES (:n, :o, CURRENT_TIMESTAMP)"),
                          {"n": name, "o": owner})
            c.execute(text("INSERT INTO audit_events (at, actor, action, subject, details) "
                           "VALUES (CURRENT_TIMESTAMP, '7', 'publish', 'x', '{}')"))
        db.upgrade(empty_db_url)
        with engine.connect() as c:
            owners = dict(c.execute(text("SELECT name, owner FROM model_names")).all())
            actors = c.execute(text("SELECT actor FROM audit_events")).scalars().all()
        assert owners == {"a_nestml": "alice", "b_nestml": "local", "c_nestml": "someone"}
        assert actors == ["alice"]
    finally:
        engine.dispose()


def test_migration_0005_describes_published_versions(empty_db_url: str) -> None:
    """Versions published before 0005 get their description and search words from their stored source,
    and their publisher from the audit log."""
    db.upgrade(empty_db_url, "0004")
    engine = db.make_engine(empty_db_url)
    text_ = "# A leaky <b>neuron</b>\n# ---\nmodel leaky_neuron:\n    parameters:\n        tau_m ms = 10 ms\n"
    try:
        with engine.begin() as c:
            c.execute(text("INSERT INTO sources (id, sha256, name, text, created_at) "
                           "VALUES (1, :s, 'leaky.nestml', :t, CURRENT_TIMESTAMP)"), {"s": "a" * 64, "t": text_})
            c.execute(text("INSERT INTO model_names (name, owner, created_at) "
                           "VALUES ('leaky_neuron_nestml', 'alice', CURRENT_TIMESTAMP)"))
            c.execute(text("INSERT INTO model_versions (name, version, content_digest, nestml_name, kind, "
                           "source_sha256, parameters, state, input_ports, receptor_types, variants, created_at) "
                           "VALUES ('leaky_neuron_nestml', 1, :d, 'leaky_neuron', 'neuron', :s, :p, '[]', '[]', "
                           "'{}', '[]', CURRENT_TIMESTAMP)"),
                      {"d": "b" * 64, "s": "a" * 64, "p": '[{"name": "tau_m", "type": "ms", "default": "10 ms"}]'})
            c.execute(text("INSERT INTO audit_events (at, actor, action, subject, details) VALUES (CURRENT_TIMESTAMP, "
                           "'alice', 'publish', 'x', :d)"),
                      {"d": '{"models": [{"name": "leaky_neuron_nestml", "version": 1}]}'})
        db.upgrade(empty_db_url)
        with engine.connect() as c:
            row = c.execute(text("SELECT description, keywords, published_by FROM model_versions")).one()
        assert tuple(row) == ("A leaky <b>neuron</b>", "leaky_neuron_nestml leaky_neuron a leaky <b>neuron</b> tau_m",
                              "alice")
    finally:
        engine.dispose()


def test_migration_0014_searches_descriptions_of_variables(empty_db_url: str) -> None:
    """Versions published before 0014 are found by the descriptions of their parameters and state."""
    db.upgrade(empty_db_url, "0013")
    engine = db.make_engine(empty_db_url)
    state = '[{"name": "U_m", "type": "real", "comment": "Membrane potential recovery variable"}]'
    try:
        with engine.begin() as c:
            c.execute(text("INSERT INTO model_names (name, owner, created_at) "
                           "VALUES ('izh_neuron_nestml', 'alice', CURRENT_TIMESTAMP)"))
            c.execute(text("INSERT INTO model_versions (name, version, content_digest, nestml_name, kind, "
                           "source_sha256, parameters, state, input_ports, receptor_types, variants, created_at, "
                           "description, keywords) VALUES ('izh_neuron_nestml', 1, :d, 'izh_neuron', 'neuron', "
                           "NULL, '[]', :s, '[]', '{}', '[]', CURRENT_TIMESTAMP, 'Izhikevich', 'old words')"),
                      {"d": "b" * 64, "s": state})
        db.upgrade(empty_db_url, "0014")
        with engine.connect() as c:
            words = c.execute(text("SELECT keywords FROM model_versions")).scalar_one()
        assert words == "izh_neuron_nestml izh_neuron izhikevich u_m membrane potential recovery variable"
        db.upgrade(empty_db_url)  # 0015: and the keywords its names and comment give (registry.metadata)
        with engine.connect() as c:
            words = c.execute(text("SELECT keywords FROM model_versions")).scalar_one()
        assert words == "izh_neuron_nestml izh_neuron izhikevich izhikevich u_m membrane potential recovery variable"
    finally:
        engine.dispose()
