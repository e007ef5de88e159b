"""initial schema: sources, builds, modules, models, versions, tokens, audit events

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
        sa.UniqueConstraint("sha256", name="uq_sources_sha256"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_tokens_token_hash"),
        sa.CheckConstraint("role IN ('reader', 'publisher', 'admin')", name="ck_tokens_role"),
    )
    op.create_table(
        "modules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("toolchain", sa.String(200), nullable=False),
        sa.Column("location", sa.String(1024), nullable=False),
        sa.Column("registers", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_modules"),
        sa.UniqueConstraint("sha256", name="uq_modules_sha256"),
    )
    op.create_index("ix_modules_toolchain", "modules", ["toolchain"])
    op.create_table(
        "builds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("toolchain", sa.String(200), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        _ts("lease_expires_at", nullable=True),
        _ts("heartbeat_at", nullable=True),
        sa.Column("stage", sa.Text(), nullable=True),
        sa.Column("diagnostics", sa.JSON(), nullable=False),
        sa.Column("log", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("module_id", sa.Integer(), nullable=True),
        sa.Column("submitted_by", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_builds"),
        sa.UniqueConstraint("key", name="uq_builds_key"),
        sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="ck_builds_status"),
        sa.ForeignKeyConstraint(["module_id"], ["modules.id"], name="fk_builds_module_id_modules"),
        sa.ForeignKeyConstraint(["submitted_by"], ["tokens.id"], name="fk_builds_submitted_by_tokens"),
    )
    op.create_index("ix_builds_module_id", "builds", ["module_id"])
    op.create_index("ix_builds_status_toolchain_created_at", "builds", ["status", "toolchain", "created_at"])
    op.create_table(
        "build_sources",
        sa.Column("build_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("build_id", "position", name="pk_build_sources"),
        sa.ForeignKeyConstraint(["build_id"], ["builds.id"], name="fk_build_sources_build_id_builds",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name="fk_build_sources_source_id_sources"),
    )
    op.create_index("ix_build_sources_source_id", "build_sources", ["source_id"])
    op.create_table(
        "model_names",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("name", name="pk_model_names"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_digest", sa.String(64), nullable=False),
        sa.Column("nestml_name", sa.String(255), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("input_ports", sa.JSON(), nullable=False),
        sa.Column("receptor_types", sa.JSON(), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
        sa.UniqueConstraint("name", "content_digest", name="uq_model_versions_name_content_digest"),
        sa.CheckConstraint("kind IN ('neuron', 'synapse')", name="ck_model_versions_kind"),
        sa.CheckConstraint("version > 0", name="ck_model_versions_version_positive"),
        sa.ForeignKeyConstraint(["name"], ["model_names.name"], name="fk_model_versions_name_model_names"),
    )
    op.create_table(
        "model_modules",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("toolchain", sa.String(200), nullable=False),
        sa.Column("module_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("model_version_id", "toolchain", name="pk_model_modules"),
        sa.ForeignKeyConstraint(["model_version_id"], ["model_versions.id"],
                                name="fk_model_modules_model_version_id_model_versions", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["module_id"], ["modules.id"], name="fk_model_modules_module_id_modules"),
    )
    op.create_index("ix_model_modules_module_id", "model_modules", ["module_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        _ts("at"),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])


def downgrade() -> None:
    for table in ("audit_events", "model_modules", "model_versions", "model_names", "build_sources", "builds",
                  "modules", "tokens", "sources"):
        op.drop_table(table)
