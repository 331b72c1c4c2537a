"""The merge's proximity search reads only open incidents, nearest area first.

`ix_incidents_merge` (category, status, last_observed_at) answered "open incidents of a
category seen in the last hours" and then measured the distance to every one of them: on a
busy morning that is every incident of the morning, for every report (PostgreSQL's generic
plan chose it over the GiST index too). Its replacements index only the open incidents, by
place: a partial GiST index on PostgreSQL, a partial (category, lon, lat) B-tree on SQLite.
Queries name the open states as the same constants to use them.

Revision ID: 7d3f5b2e9a14
Revises: 4c7e1a9d2f60
Create Date: 2026-11-29 13:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7d3f5b2e9a14"
down_revision: str | None = "4c7e1a9d2f60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "status IN ('dispatched', 'acknowledged', 'on_site', 'resolved')"


def upgrade() -> None:
    op.drop_index("ix_incidents_merge", table_name="incidents")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX gix_incidents_open_location ON incidents "
            f"USING gist ((location::geography)) WHERE {_OPEN}"
        )
    else:
        op.execute(
            "CREATE INDEX ix_incidents_open_lon_lat ON incidents (category, lon, lat) "
            f"WHERE {_OPEN}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX gix_incidents_open_location")
    else:
        op.execute("DROP INDEX ix_incidents_open_lon_lat")
    op.create_index(
        "ix_incidents_merge",
        "incidents",
        ["category", "status", "last_observed_at"],
        unique=False,
    )
