"""check verdicts, per toolchain: a characterisation also stores its version's verdict against its NEST
counterpart (``agrees``, ``differs``, ``failed``; NULL where the model has none; the whole report is kept in
the result as ``result.check``), and what changed against the same version's result on another toolchain
(``changed``); and a version is characterised once per toolchain it has a module for (a NEST or NESTML
upgrade, the MPI build), no longer once in all

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("characterisations") as batch:
        batch.add_column(sa.Column("verdict", sa.String(16), nullable=True))
        batch.add_column(sa.Column("changed", sa.Text(), nullable=True))
        batch.create_check_constraint(op.f("ck_characterisations_verdict"),
                                      "verdict IN ('agrees', 'differs', 'failed')")
        batch.drop_constraint(op.f("uq_characterisations_model_version_id"), type_="unique")
        batch.create_unique_constraint(op.f("uq_characterisations_model_version_id_toolchain"),
                                       ["model_version_id", "toolchain"])
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("given_metadata", sa.JSON(), nullable=True))
    _search_words()


def _search_words() -> None:
    from nestml_registry.registry.metadata import version_words

    bind = op.get_bind()
    versions = sa.table("model_versions", sa.column("id"), sa.column("name"), sa.column("nestml_name"),
                        sa.column("description"), sa.column("parameters", sa.JSON()), sa.column("state", sa.JSON()),
                        sa.column("source_sha256"), sa.column("keywords"))
    sources = sa.table("sources", sa.column("sha256"), sa.column("text"))
    rows = bind.execute(sa.select(versions.c.id, versions.c.name, versions.c.nestml_name, versions.c.description,
                                  versions.c.parameters, versions.c.state, sources.c.text)
                        .select_from(versions.outerjoin(sources, sources.c.sha256 == versions.c.source_sha256))).all()
    for vid, name, nestml_name, description, parameters, state, text in rows:
        bind.execute(versions.update().where(versions.c.id == vid).values(keywords=version_words(
            [name, nestml_name], description or "", [*(parameters or []), *(state or [])], text or "",
            nestml_name)))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("given_metadata")
    op.execute("DELETE FROM characterisations WHERE id NOT IN (SELECT MIN(id) FROM characterisations "
               "GROUP BY model_version_id)")
    with op.batch_alter_table("characterisations") as batch:
        batch.drop_constraint(op.f("uq_characterisations_model_version_id_toolchain"), type_="unique")
        batch.create_unique_constraint(op.f("uq_characterisations_model_version_id"), ["model_version_id"])
        batch.drop_constraint(op.f("ck_characterisations_verdict"), type_="check")
        batch.drop_column("changed")
        batch.drop_column("verdict")
