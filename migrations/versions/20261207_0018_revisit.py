"""incidents: when a supervisor last looked back at a closed case (回头看)

Revision ID: 7e1a4c8b2d95
Revises: 2f6b9d1c4a87
Create Date: 2026-12-07 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.dbtypes import UtcDateTime

revision: str = "7e1a4c8b2d95"
down_revision: str | None = "2f6b9d1c4a87"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revisited_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("revisited_at")
