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


def downgrade() -> None:
    op.execute("DELETE FROM characterisations WHERE id NOT IN (SELECT MIN(id) FROM characterisations "
               "GROUP BY model_version_id)")
    with op.batch_alter_table("characterisations") as batch:
        batch.drop_constraint(op.f("uq_characterisations_model_version_id_toolchain"), type_="unique")
        batch.create_unique_constraint(op.f("uq_characterisations_model_version_id"), ["model_version_id"])
        batch.drop_constraint(op.f("ck_characterisations_verdict"), type_="check")
        batch.drop_column("changed")
        batch.drop_column("verdict")
