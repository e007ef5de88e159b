"""same code, breaking versions: a build keeps the key of what reaches code generation (comments out) and
the models it published, so a request that differs only in comments reuses its module; and whether its
submitter allowed a new version that drops parameters, state variables or input ports

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("code_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("models", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("allow_breaking", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_builds_code_key", ["code_key"])


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.drop_index("ix_builds_code_key")
        batch.drop_column("allow_breaking")
        batch.drop_column("models")
        batch.drop_column("code_key")
