"""yanked versions: a version its owner or an admin withdrew (with the reason, who and when); an unpinned
reference never chooses it, a pinned or locked one still resolves it (as PyPI does)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("yanked_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("yanked_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("yanked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("yanked_at")
        batch.drop_column("yanked_by")
        batch.drop_column("yanked_reason")
