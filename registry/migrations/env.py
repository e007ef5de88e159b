"""Alembic environment of the registry. The URL comes from the Config that ``nestml_registry.registry.db.upgrade``
builds in code (main option ``sqlalchemy.url``); there is no alembic.ini."""

from __future__ import annotations

import logging

from alembic import context
from sqlalchemy import text

from nestml_registry.registry.db import is_sqlite, make_engine
from nestml_registry.registry.tables import Base

logger = logging.getLogger(__name__)

config = context.config
# any constant shared by every process that migrates: concurrent upgrades of one PostgreSQL database
# (an API and its workers starting together) wait for each other instead of colliding
PG_LOCK_ID = 0x6E657374_6D6C7265  # "nestmlre"
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: run migrations through registry.db.upgrade(url)")
    return url


def run_migrations_offline() -> None:
    url = _url()
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=is_sqlite(url), dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = _url()
    sqlite = is_sqlite(url)
    # SQLite batch operations rebuild tables: foreign keys must not cascade while they do
    engine = make_engine(url, foreign_keys=not sqlite)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=sqlite,
                              transactional_ddl=True)
            with context.begin_transaction():
                # SQLite: the transaction began IMMEDIATE, which serialises migrations already
                if not sqlite:
                    connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PG_LOCK_ID})
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
