"""Drop the indexes no query reads, which every report paid to keep up.

Reports are never searched by place, nor by district alone: `ix_reports_lon_lat`,
PostgreSQL's `gix_reports_location` and `ix_reports_district_code` (the leading column of
`ix_reports_district_observed`, which serves the same lookups) go. On PostgreSQL incidents are
searched by place with GiST (`gix_incidents_location`, `gix_incidents_open_location`), so
`ix_incidents_lon_lat` is SQLite's alone.

Revision ID: 3a9d7c1e5f28
Revises: 8f2c4a6e1b05
Create Date: 2026-12-05 16:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3a9d7c1e5f28"
down_revision: str | None = "8f2c4a6e1b05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_reports_lon_lat", table_name="reports")
    op.drop_index("ix_reports_district_code", table_name="reports")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX gix_reports_location")
        op.drop_index("ix_incidents_lon_lat", table_name="incidents")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_incidents_lon_lat", "incidents", ["lon", "lat"])
        op.create_index("gix_reports_location", "reports", ["location"], postgresql_using="gist")
    op.create_index("ix_reports_district_code", "reports", ["district_code"])
    op.create_index("ix_reports_lon_lat", "reports", ["lon", "lat"])
