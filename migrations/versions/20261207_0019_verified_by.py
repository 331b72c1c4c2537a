"""incidents: who verified a case last (a supervisor, or a grid worker of its village)

Revision ID: 5c2e8a1f3b64
Revises: 7e1a4c8b2d95
Create Date: 2026-12-07 23:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c2e8a1f3b64"
down_revision: str | None = "7e1a4c8b2d95"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BY_WORKER = "verified_by = 'village_worker'"


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verified_by", sa.String(length=16), nullable=True))
    op.create_index(
        "ix_incidents_worker_verified",
        "incidents",
        ["district_code", "opened_at", "township_code", "village_code", "status"],
        unique=False,
        postgresql_where=sa.text(_BY_WORKER),
        sqlite_where=sa.text(_BY_WORKER),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_incidents_worker_verified",
        table_name="incidents",
        postgresql_where=sa.text(_BY_WORKER),
        sqlite_where=sa.text(_BY_WORKER),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("verified_by")
