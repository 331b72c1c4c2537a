"""incident handling: step times, resolve limit, rework, enforcement record; list indexes

Revision ID: 9e4a2b6c1d73
Revises: 7c3d9e1f4b20
Create Date: 2026-11-29 09:02:41.530118
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.dbtypes import UtcDateTime

revision: str = "9e4a2b6c1d73"
down_revision: str | None = "7c3d9e1f4b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The single-column indexes the composite list indexes make redundant (they are their prefix).
_SUPERSEDED = (
    ("incidents", "ix_incidents_district_code", ["district_code"]),
    ("incidents", "ix_incidents_township_code", ["township_code"]),
    ("incidents", "ix_incidents_village_code", ["village_code"]),
    ("assignments", "ix_assignments_agency_code", ["agency_code"]),
)


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolve_due_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("arrived_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("verified_at", UtcDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("rework_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("penalty_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("penalty_amount_yuan", sa.Numeric(precision=12, scale=2), nullable=True)
        )
        batch_op.add_column(sa.Column("legal_basis", sa.Text(), nullable=True))
    # Incidents opened before this revision had only the acknowledge limit on record.
    op.execute("UPDATE incidents SET resolve_due_at = due_at WHERE resolve_due_at IS NULL")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.alter_column("resolve_due_at", existing_type=UtcDateTime(), nullable=False)
        for table, name, _ in _SUPERSEDED:
            if table == "incidents":
                batch_op.drop_index(name)
        batch_op.create_index(
            "ix_incidents_district_opened", ["district_code", "opened_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_incidents_township_opened", ["township_code", "opened_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_incidents_village_opened", ["village_code", "opened_at", "id"], unique=False
        )
        batch_op.create_index("ix_incidents_status_due", ["status", "due_at"], unique=False)
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_agency_code")
        batch_op.create_index(
            "ix_assignments_agency_incident", ["agency_code", "incident_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_agency_incident")
        batch_op.create_index("ix_assignments_agency_code", ["agency_code"], unique=False)
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_status_due")
        batch_op.drop_index("ix_incidents_village_opened")
        batch_op.drop_index("ix_incidents_township_opened")
        batch_op.drop_index("ix_incidents_district_opened")
        for table, name, columns in _SUPERSEDED:
            if table == "incidents":
                batch_op.create_index(name, columns, unique=False)
        batch_op.drop_column("legal_basis")
        batch_op.drop_column("penalty_amount_yuan")
        batch_op.drop_column("penalty_kind")
        batch_op.drop_column("outcome")
        batch_op.drop_column("rework_count")
        batch_op.drop_column("verified_at")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("arrived_at")
        batch_op.drop_column("acknowledged_at")
        batch_op.drop_column("resolve_due_at")
