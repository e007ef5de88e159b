"""Alembic's migrations of the registry's schema (one file per revision in versions/; tests migrate to head)."""
