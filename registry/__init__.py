"""The registry's database (SQLAlchemy 2 + Alembic; SQLite or PostgreSQL), build queue and artifact store.

Modules: ``db`` (engines, sessions, migrations), ``tables``, ``records`` (source, module and audit rows),
``publishing``, ``resolving``, ``listing``, ``queue`` (enqueue, claim, lease, sweep), ``tokens``, ``store``
(content-addressed files), ``errors``. Nothing here connects to a database or touches a file when imported.
"""
