"""SQLite counts a district's scorecard per township from an index in township order.

SQLite groups by sorting. Grouped by township over ix_incidents_district_scorecard
(district_code, opened_at, …), a district's period comes in time order, and a year of it (half a
million incidents) was sorted for the township counts alone. Over this index, the townships
named, SQLite reads the period township after township: in the order of the groups, nothing to
sort. PostgreSQL groups by hashing, in parallel, and needs no such index: SQLite only.

Revision ID: 9a41c6e2d8b3
Revises: 7d3f5b2e9a14
Create Date: 2026-11-29 14:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9a41c6e2d8b3"
down_revision: str | None = "7d3f5b2e9a14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE INDEX ix_incidents_township_scorecard ON incidents (district_code, "
            "township_code, opened_at, status, resolved_at, resolve_due_at)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP INDEX ix_incidents_township_scorecard")
