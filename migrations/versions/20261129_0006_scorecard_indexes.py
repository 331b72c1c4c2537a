"""Indexes for the scorecard: a district's period read from one index, and the overdue count.

Revision ID: 4c7e1a9d2f60
Revises: b2f81d0c7e55
Create Date: 2026-11-29 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4c7e1a9d2f60"
down_revision: str | None = "b2f81d0c7e55"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SCORECARD = [
    "district_code",
    "opened_at",
    "township_code",
    "category",
    "status",
    "acknowledged_at",
    "resolved_at",
    "resolve_due_at",
    "rework_count",
    "penalty_kind",
    "penalty_amount_yuan",
]
_WORKING_DUE = ["district_code", "township_code", "village_code", "due_at", "opened_at"]
_WORKING = "status IN ('dispatched', 'acknowledged', 'on_site')"


def upgrade() -> None:
    op.create_index("ix_incidents_district_scorecard", "incidents", _SCORECARD, unique=False)
    op.create_index(
        "ix_incidents_working_due",
        "incidents",
        _WORKING_DUE,
        unique=False,
        postgresql_where=sa.text(_WORKING),
        sqlite_where=sa.text(_WORKING),
    )


def downgrade() -> None:
    op.drop_index("ix_incidents_working_due", table_name="incidents")
    op.drop_index("ix_incidents_district_scorecard", table_name="incidents")
