"""Indexes for counting reports by cell and period (the scorecard).

Revision ID: b2f81d0c7e55
Revises: 9e4a2b6c1d73
Create Date: 2026-11-29 09:25:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b2f81d0c7e55"
down_revision: str | None = "9e4a2b6c1d73"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = {
    "ix_reports_district_observed": ["district_code", "observed_at"],
    "ix_reports_township_observed": ["township_code", "observed_at"],
    "ix_reports_village_observed": ["village_code", "observed_at"],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.create_index(name, "reports", columns, unique=False)


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="reports")
