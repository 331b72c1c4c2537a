"""督办: incidents' supervision (level, since, own deadline) and the overdue notices' claims

Revision ID: 2f6b9d1c4a87
Revises: 8a3c5e7f1b42
Create Date: 2026-12-07 22:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.dbtypes import UtcDateTime

revision: str = "2f6b9d1c4a87"
down_revision: str | None = "8a3c5e7f1b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUPERVISED = "supervision_level IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("supervision_level", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("supervised_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("supervision_due_at", UtcDateTime(), nullable=True))
    op.create_index(
        "ix_incidents_supervised",
        "incidents",
        [
            "district_code",
            "opened_at",
            "township_code",
            "village_code",
            "status",
            "resolved_at",
            "supervision_due_at",
            "resolve_due_at",
        ],
        unique=False,
        postgresql_where=sa.text(_SUPERVISED),
        sqlite_where=sa.text(_SUPERVISED),
    )
    op.create_table(
        "incident_overdue_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("noticed_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_incident_overdue_notices_incident_id_incidents",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_incident_overdue_notices"),
        sa.UniqueConstraint(
            "incident_id",
            "stage",
            "due_at",
            name="uq_incident_overdue_notices_incident_id_stage_due_at",
        ),
    )


def downgrade() -> None:
    op.drop_table("incident_overdue_notices")
    op.drop_index(
        "ix_incidents_supervised",
        table_name="incidents",
        postgresql_where=sa.text(_SUPERVISED),
        sqlite_where=sa.text(_SUPERVISED),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("supervision_due_at")
        batch_op.drop_column("supervised_at")
        batch_op.drop_column("supervision_level")
