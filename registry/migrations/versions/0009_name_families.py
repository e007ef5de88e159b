"""name families: a model name belongs to the family of the NESTML model it was generated from (``X``,
``X_nestml``, ``X_nestml__with_S_nestml`` are one family ``X``), and ownership is decided per family

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_names") as batch:
        batch.add_column(sa.Column("family", sa.String(255), nullable=True))
        batch.create_index(op.f("ix_model_names_family"), ["family"])
    # the NESTML name of the name's first version; a name without versions is a family of its own
    op.execute("UPDATE model_names SET family = (SELECT v.nestml_name FROM model_versions v "
               "WHERE v.name = model_names.name AND v.nestml_name IS NOT NULL ORDER BY v.version LIMIT 1)")
    op.execute("UPDATE model_names SET family = name WHERE family IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("model_names") as batch:
        batch.drop_index(op.f("ix_model_names_family"))
        batch.drop_column("family")
