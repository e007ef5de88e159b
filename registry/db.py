"""Engines, sessions and schema migrations.

SQLite (the default, one machine) and PostgreSQL (a lab: several API and worker machines) are both
supported. On SQLite every connection uses WAL, a 30 s busy timeout and foreign keys, and SQLAlchemy
rather than the ``sqlite3`` driver emits ``BEGIN``: by default ``BEGIN IMMEDIATE``, which takes the
database's write lock when the transaction starts. Transactions are therefore serialised, a
read-then-write transaction (claim a build, give a model its next version) can never be refused half
way with "database is locked", and a waiting writer waits up to the busy timeout. Keep transactions
short. Sessions that only read can use ``make_sessionmaker(engine, read_only=True)`` (a deferred
``BEGIN``), which never waits for writers under WAL.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from nestml_registry.registry.errors import InvalidInput, RegistryError, SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30000
_SQLITE_BEGIN_OPTION = "sqlite_begin"
_SQLITE_BEGIN = {"IMMEDIATE": "BEGIN IMMEDIATE", "DEFERRED": "BEGIN"}


def default_url(home: Path) -> str:
    """The database of a registry home directory: ``sqlite:///<home>/registry.db``."""
    return f"sqlite:///{Path(home).expanduser().resolve() / 'registry.db'}"


def is_sqlite(url_or_engine: str | Engine) -> bool:
    if isinstance(url_or_engine, Engine):
        return url_or_engine.dialect.name == "sqlite"
    return _parse_url(url_or_engine).get_backend_name() == "sqlite"


def _parse_url(url: str) -> Any:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise InvalidInput(
            f"invalid database URL {url!r}: use sqlite:////abs/path/registry.db or "
            "postgresql+psycopg://user@host:5432/dbname"
        ) from exc


def make_engine(url: str, *, foreign_keys: bool = True, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings the registry relies on (see the module docstring).

    ``foreign_keys=False`` is for migrations only (SQLite batch operations rebuild tables).
    Extra keyword arguments go to :func:`sqlalchemy.create_engine`.
    """
    parsed = _parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000,
                        **kwargs.pop("connect_args", {})}
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, foreign_keys)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)
    raise InvalidInput(f"unsupported database {backend!r} in {url!r}: the registry runs on SQLite or PostgreSQL")


def _use_wal(cursor: Any) -> None:
    """Switch the database file to WAL (it stays so). Two processes opening a new database at once may
    both try; SQLite answers the loser "database is locked" at once, without its busy timeout, so wait
    and look again: the winner has switched it meanwhile."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() in ("wal", "memory"):
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _configure_sqlite(engine: Engine, foreign_keys: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the driver, decides where transactions begin (see "begin" below)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            _use_wal(cursor)
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "IMMEDIATE")
        conn.exec_driver_sql(_SQLITE_BEGIN[mode])


def make_sessionmaker(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``. Objects stay readable after commit (``expire_on_commit=False``),
    so a build returned by ``queue.claim`` can be used once its transaction is committed.

    ``read_only=True``: on SQLite, transactions begin DEFERRED and never wait for the write lock;
    a write in such a session may fail with "database is locked". No difference on PostgreSQL.
    """
    bind = engine.execution_options(**{_SQLITE_BEGIN_OPTION: "DEFERRED"}) if read_only and is_sqlite(engine) \
        else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


def read_connection(engine: Engine) -> Connection:
    """A connection for reads only (on SQLite its transactions begin DEFERRED, never waiting for writers).
    Roll it back after each read: a transaction kept open would keep seeing the database as it was."""
    conn = engine.connect()
    return conn.execution_options(**{_SQLITE_BEGIN_OPTION: "DEFERRED"}) if is_sqlite(engine) else conn


def alembic_config(url: str) -> Config:
    """An Alembic configuration built in code: works from an installed package, whatever the cwd."""
    from alembic.config import Config  # Alembic is imported only when migrating (workers start faster)

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal '%' in a password must be doubled
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (default: the newest)."""
    from alembic import command

    logger.info("migrating %s to %s", _parse_url(url).render_as_string(hide_password=True), revision)
    try:
        command.upgrade(alembic_config(url), revision)
    except OperationalError as exc:
        raise RegistryError(
            f"cannot migrate the database {_parse_url(url).render_as_string(hide_password=True)}: {exc.orig}; "
            "check that the database server runs and the URL (NESTML_REGISTRY_DATABASE_URL) is right"
        ) from exc


def head_revision() -> str:
    """The revision this code expects the database to be at."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise RegistryError(f"no migrations found in {MIGRATIONS_DIR}: reinstall the package")
    return head


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at; None for a database never migrated."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def require_current(url: str) -> None:
    """Raise :class:`SchemaOutOfDate` unless the database is at the head revision."""
    current, head = current_revision(url), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"the database is at revision {current or 'none (empty)'} but this version of nestml-registry "
            f"needs {head}: run `nestml-registry db upgrade`",
            {"current": current, "head": head},
        )


def prepare(url: str, home: Path) -> None:
    """Before a command uses the database: the embedded SQLite one (under ``home``) migrates itself;
    any other must already be current (:func:`require_current` says to run ``db upgrade``)."""
    if is_sqlite(url):
        home.mkdir(parents=True, exist_ok=True)
        upgrade(url)
        return
    try:
        require_current(url)
    except OperationalError as exc:
        raise RegistryError(
            f"cannot reach the database {_parse_url(url).render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0]}; check that the database server runs and the URL "
            "(NESTML_REGISTRY_DATABASE_URL) is right"
        ) from exc


def insert_ignoring_conflicts(session: Session, entity: Any, rows: list[dict[str, Any]],
                              index_elements: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (index_elements) DO NOTHING`` for SQLite or PostgreSQL (a statement to
    execute; add ``.returning(...)`` to learn which rows were new)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(entity).values(rows).on_conflict_do_nothing(index_elements=index_elements)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(entity).values(rows).on_conflict_do_nothing(index_elements=index_elements)
    else:  # pragma: no cover - make_engine refuses other databases
        raise InvalidInput(f"unsupported database {dialect!r}: the registry runs on SQLite or PostgreSQL")
