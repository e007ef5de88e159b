"""worker bounds: the toolchains a worker token may serve, toolchains approved by an admin (one first seen
from an HTTP worker is not, until an admin approves it), the worker that built each build; and web page
sessions as tokens of their own (the cookie never holds an API token)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("toolchains") as batch:
        # every toolchain known before this revision was registered by a worker the lab ran: approved
        batch.add_column(sa.Column("approved", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("first_seen_by", sa.String(255), nullable=True))
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("toolchains", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("session_of", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_tokens_session_of_tokens"), "tokens", ["session_of"], ["id"])
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("built_by", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("built_by")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_constraint(op.f("fk_tokens_session_of_tokens"), type_="foreignkey")
        batch.drop_column("session_of")
        batch.drop_column("toolchains")
    with op.batch_alter_table("toolchains") as batch:
        batch.drop_column("first_seen_by")
        batch.drop_column("approved")
