"""named owners: a model name belongs to a principal (a token's name, or 'local' for anonymous
publishing), not to a token id, and no name is left without an owner

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOCAL = "local"


def upgrade() -> None:
    bind = op.get_bind()
    tokens: dict[int, str] = {row[0]: row[1] for row in bind.execute(sa.text("SELECT id, name FROM tokens"))}
    for table, column in (("model_names", "owner"), ("audit_events", "actor")):
        rows = bind.execute(sa.text(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL")).scalars()
        for value in list(rows):
            if value.isdigit() and int(value) in tokens:
                bind.execute(sa.text(f"UPDATE {table} SET {column} = :name WHERE {column} = :old"),
                             {"name": tokens[int(value)], "old": value})
    bind.execute(sa.text("UPDATE model_names SET owner = :local WHERE owner IS NULL"), {"local": LOCAL})


def downgrade() -> None:
    pass  # names stay with their principals: token ids cannot be told from names any more
