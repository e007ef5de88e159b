"""characterisations: how each neuron model version behaves in NEST (rheobase, f-I curve, traces), queued
for the workers after a build publishes it, or by `nestml-registry characterise`

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "characterisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("toolchain", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("protocol", sa.Integer(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'not_applicable')",
                           name=op.f("ck_characterisations_status")),
        sa.ForeignKeyConstraint(["model_version_id"], ["model_versions.id"], ondelete="CASCADE",
                                name=op.f("fk_characterisations_model_version_id_model_versions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_characterisations")),
        sa.UniqueConstraint("model_version_id", name=op.f("uq_characterisations_model_version_id")),
    )
    op.create_index(op.f("ix_characterisations_status_toolchain_created_at"), "characterisations",
                    ["status", "toolchain", "created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_characterisations_status_toolchain_created_at"), table_name="characterisations")
    op.drop_table("characterisations")
