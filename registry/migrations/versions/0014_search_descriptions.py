"""search words: each model version's search words also hold the descriptions of its parameters and state
variables (their comments), so a search for "recovery" finds the Izhikevich models

The words are made again from what each version stores (its name, description, parameters and state):
``registry.model_text.keywords``. No table changes.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from nestml_registry.registry.model_text import keywords

    bind = op.get_bind()
    versions = sa.table("model_versions", sa.column("id"), sa.column("name"), sa.column("nestml_name"),
                        sa.column("description"), sa.column("parameters", sa.JSON()), sa.column("state", sa.JSON()),
                        sa.column("keywords"))
    rows = bind.execute(sa.select(versions.c.id, versions.c.name, versions.c.nestml_name, versions.c.description,
                                  versions.c.parameters, versions.c.state)).all()
    for vid, name, nestml_name, description, parameters, state in rows:
        bind.execute(versions.update().where(versions.c.id == vid).values(
            keywords=keywords([name, nestml_name], description or "", [*(parameters or []), *(state or [])])))


def downgrade() -> None:
    """The longer words find more; nothing to undo."""
