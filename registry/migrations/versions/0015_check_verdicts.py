"""check verdicts: a characterisation also stores its version's verdict against its NEST counterpart
(``agrees``, ``differs``, ``failed``; NULL where the model has none), so that pages and listings can show
and filter by it; the whole check report is kept in the result (``result.check``)

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
        batch.create_check_constraint(op.f("ck_characterisations_verdict"),
                                      "verdict IN ('agrees', 'differs', 'failed')")


def downgrade() -> None:
    with op.batch_alter_table("characterisations") as batch:
        batch.drop_constraint(op.f("ck_characterisations_verdict"), type_="check")
        batch.drop_column("verdict")
