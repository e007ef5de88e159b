"""model pages: each model version's description, search words and publisher (and an index for the newest
first); each build's timings per stage

The description and search words are taken from the stored source texts of the versions already
published (``registry.model_text``), and the publisher from the publish events of the audit log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("keywords", sa.Text(), nullable=True))
        batch.add_column(sa.Column("published_by", sa.String(255), nullable=True))
    op.create_index("ix_model_versions_created_at", "model_versions", ["created_at"])
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("timings", sa.JSON(), nullable=True))
    _backfill(op.get_bind())


def _backfill(bind: sa.Connection) -> None:
    from nestml_registry.registry.model_text import description_of, keywords

    versions = sa.table("model_versions", sa.column("id"), sa.column("name"), sa.column("version"),
                        sa.column("nestml_name"), sa.column("source_sha256"), sa.column("parameters", sa.JSON()),
                        sa.column("state", sa.JSON()), sa.column("description"), sa.column("keywords"),
                        sa.column("published_by"))
    sources = sa.table("sources", sa.column("sha256"), sa.column("text"))
    events = sa.table("audit_events", sa.column("id"), sa.column("actor"), sa.column("action"),
                      sa.column("details", sa.JSON()))
    publisher: dict[tuple[object, object], str] = {}
    for actor, details in bind.execute(sa.select(events.c.actor, events.c.details)
                                       .where(events.c.action == "publish").order_by(events.c.id)):
        for m in (details or {}).get("models") or []:
            if isinstance(m, dict) and (m.get("name"), m.get("version")) not in publisher and actor:
                publisher[(m.get("name"), m.get("version"))] = actor
    rows = bind.execute(sa.select(versions.c.id, versions.c.name, versions.c.version, versions.c.nestml_name,
                                  versions.c.parameters, versions.c.state, sources.c.text)
                        .select_from(versions.outerjoin(sources, sources.c.sha256 == versions.c.source_sha256))).all()
    for vid, name, number, nestml_name, parameters, state, text in rows:
        description = description_of(text or "", nestml_name)
        bind.execute(versions.update().where(versions.c.id == vid).values(
            description=description,
            keywords=keywords([name, nestml_name], description, [*(parameters or []), *(state or [])]),
            published_by=publisher.get((name, number))))


def downgrade() -> None:
    op.drop_index("ix_model_versions_created_at", "model_versions")
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("timings")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("published_by")
        batch.drop_column("keywords")
        batch.drop_column("description")
