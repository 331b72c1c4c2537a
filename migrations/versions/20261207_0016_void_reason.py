"""incidents: why a supervisor voided a case

Revision ID: 8a3c5e7f1b42
Revises: 4d8f2a6c9e31
Create Date: 2026-12-07 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8a3c5e7f1b42"
down_revision: str | None = "4d8f2a6c9e31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("void_reason", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("void_reason")
