"""PostgreSQL: the merge's area lock and its search for open incidents in one round trip.

A report serialises the writers near its point (advisory locks on the tiles around it), then
looks for open incidents nearby. The search must come after the lock in a statement of its own:
a statement's snapshot is taken when it starts, so one that waited for the lock would not see
the incident that the writer it waited for has just committed, and would open a second one.
This function does both: PL/pgSQL runs each statement of a VOLATILE function with a snapshot of
its own. The query is app/spatial/postgis.py's as it was (positional parameters, so that a test
can prepare it as it stands here), on the partial GiST index of migration 0007.

Revision ID: 2b6f9e4c8d17
Revises: 5e8c2d7f1a39
Create Date: 2026-11-29 15:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "2b6f9e4c8d17"
down_revision: str | None = "5e8c2d7f1a39"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "i.status IN ('dispatched', 'acknowledged', 'on_site', 'resolved')"
_SIGNATURE = (
    "burnban_lock_nearby_open_incidents(bigint[], varchar, float8, float8, float8, "
    "timestamptz, timestamptz)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
CREATE FUNCTION {_SIGNATURE}
RETURNS TABLE (id varchar, distance_m float8)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- $1 lock keys (sorted), $2 category, $3 lon, $4 lat, $5 radius in metres,
    -- $6 and $7 the window the incident was last observed in
    PERFORM pg_advisory_xact_lock(key) FROM unnest($1) key;
    RETURN QUERY SELECT i.id, ST_Distance(i.location::geography, p.g, false) AS distance_m
    FROM incidents i, (SELECT ST_SetSRID(ST_MakePoint($3, $4), 4326)::geography AS g) p
    WHERE {_OPEN} AND i.category = $2 AND i.last_observed_at BETWEEN $6 AND $7
    AND ST_DWithin(i.location::geography, p.g, $5, false)
    ORDER BY 2, i.opened_at, i.id;
END $$
"""
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {_SIGNATURE}")
