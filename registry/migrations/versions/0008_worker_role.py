"""the worker role: a token for a compile worker that reaches the registry over HTTP only (it claims builds
for its toolchain, reports them and uploads their modules; nothing else)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 0001 named it so (the naming convention applied to a name that already had it)
    with op.batch_alter_table("tokens") as batch:
        batch.drop_constraint(op.f("ck_tokens_ck_tokens_role"), type_="check")
        batch.create_check_constraint(op.f("ck_tokens_ck_tokens_role"),
                                      "role IN ('reader', 'publisher', 'admin', 'worker')")


def downgrade() -> None:
    op.execute("UPDATE tokens SET revoked_at = CURRENT_TIMESTAMP WHERE role = 'worker' AND revoked_at IS NULL")
    op.execute("UPDATE tokens SET role = 'reader' WHERE role = 'worker'")
    # 0001 named it so (the naming convention applied to a name that already had it)
    with op.batch_alter_table("tokens") as batch:
        batch.drop_constraint(op.f("ck_tokens_ck_tokens_role"), type_="check")
        batch.create_check_constraint(op.f("ck_tokens_ck_tokens_role"), "role IN ('reader', 'publisher', 'admin')")
