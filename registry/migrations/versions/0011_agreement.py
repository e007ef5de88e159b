"""agreement: a lab may require that two workers (of different machines or tokens) build a module to the same
bytes before it is published; each build keeps the workers' reports until they agree

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("reports", sa.JSON(), nullable=True))  # [{"by", "sha256", "size", "location"}]
        batch.add_column(sa.Column("reported_by", sa.Text(), nullable=True))  # "|who|who|": who may not claim it


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("reported_by")
        batch.drop_column("reports")
