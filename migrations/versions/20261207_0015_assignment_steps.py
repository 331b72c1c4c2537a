"""assignments: each agency's own arrival and the limits of its acknowledgement and arrival

Revision ID: 4d8f2a6c9e31
Revises: 9b2e6d4a7c15
Create Date: 2026-12-07 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.dbtypes import UtcDateTime

revision: str = "4d8f2a6c9e31"
down_revision: str | None = "9b2e6d4a7c15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("arrived_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("acknowledge_due_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("arrive_due_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("arrive_due_at")
        batch_op.drop_column("acknowledge_due_at")
        batch_op.drop_column("arrived_at")
