"""PostgreSQL: a report's every write in one round trip, if what it was planned on still holds.

A report is planned from what was read before any lock (app/reports/service.py): the incident it
joins, at the version read, or the incident it opens, with its case number. This function then
serialises the writers near the report's point (advisory locks on the tiles around it, in key
order), checks the plan under those locks with a snapshot of its own statement (PL/pgSQL takes
one per statement), claims the idempotency key with the answer, and writes every row; or
writes nothing and says why: 'stale' (the incident changed, or one has opened nearby: read
again and plan anew) or 'replay' (the key is taken). Rows come as JSON, by column name.

It replaces burnban_lock_nearby_open_incidents, whose search it runs as its check; the search's
query is the same, on the partial GiST index of migration 0007.

Revision ID: 8f2c4a6e1b05
Revises: 2b6f9e4c8d17
Create Date: 2026-12-05 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8f2c4a6e1b05"
down_revision: str | None = "2b6f9e4c8d17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "status IN ('dispatched', 'acknowledged', 'on_site', 'resolved')"
_FILE_REPORT = "burnban_file_report(bigint[], jsonb)"
_LOCK_NEARBY = (
    "burnban_lock_nearby_open_incidents(bigint[], varchar, float8, float8, float8, "
    "timestamptz, timestamptz)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {_LOCK_NEARBY}")
    op.execute(
        f"""
CREATE FUNCTION {_FILE_REPORT} RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    lock_keys ALIAS FOR $1;
    filing ALIAS FOR $2;
    search jsonb := filing->'search';
    joins jsonb := NULLIF(filing->'joins', 'null');
    observed timestamptz := (joins->>'observed_at')::timestamptz;
    key_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(key) FROM unnest(lock_keys) key;
    IF joins IS NOT NULL THEN
        PERFORM FROM incidents WHERE id = joins->>'incident_id'
            AND version = (joins->>'version')::int AND {_OPEN} FOR UPDATE;
        IF NOT FOUND THEN
            RETURN 'stale';
        END IF;
    ELSIF EXISTS (
        SELECT FROM incidents i,
            (SELECT ST_SetSRID(ST_MakePoint((search->>'lon')::float8, (search->>'lat')::float8),
                4326)::geography AS g) p
        WHERE i.{_OPEN} AND i.category = search->>'category'
        AND i.last_observed_at BETWEEN (search->>'seen_from')::timestamptz
            AND (search->>'seen_until')::timestamptz
        AND ST_DWithin(i.location::geography, p.g, (search->>'radius_m')::float8, false)
    ) THEN
        RETURN 'stale';
    END IF;

    IF filing->'claim' <> 'null' THEN
        INSERT INTO idempotency_keys (caller_kind, caller_id, key, request_hash, status,
            response_status, response_body, created_at)
        SELECT caller_kind, caller_id, key, request_hash, status, response_status,
            response_body, created_at
        FROM jsonb_populate_record(NULL::idempotency_keys, filing->'claim')
        ON CONFLICT (caller_kind, caller_id, key) DO NOTHING
        RETURNING id INTO key_id;
        IF key_id IS NULL THEN
            RETURN 'replay';
        END IF;
    END IF;

    IF joins IS NOT NULL THEN
        -- A fire moves with the wind: the incident is where it was last seen.
        UPDATE incidents SET report_count = report_count + 1, version = version + 1,
            updated_at = (joins->>'updated_at')::timestamptz,
            lon = CASE WHEN last_observed_at <= observed
                THEN (joins->>'lon')::float8 ELSE lon END,
            lat = CASE WHEN last_observed_at <= observed
                THEN (joins->>'lat')::float8 ELSE lat END,
            location = CASE WHEN last_observed_at <= observed
                THEN ST_SetSRID(ST_MakePoint((joins->>'lon')::float8, (joins->>'lat')::float8),
                    4326)
                ELSE location END,
            last_observed_at = GREATEST(last_observed_at, observed)
        WHERE id = joins->>'incident_id';
    ELSE
        INSERT INTO incidents
        SELECT * FROM jsonb_populate_record(NULL::incidents, filing->'incident');
        INSERT INTO assignments (incident_id, district_code, agency_code, role, assigned_at,
            acknowledged_at)
        SELECT r.incident_id, r.district_code, r.agency_code, r.role, r.assigned_at,
            r.acknowledged_at
        FROM jsonb_array_elements(filing->'assignments') WITH ORDINALITY AS a(row, n),
            jsonb_populate_record(NULL::assignments, a.row) r
        ORDER BY a.n;
    END IF;
    INSERT INTO incident_events (incident_id, district_code, at, actor_id, actor_name, action,
        from_status, to_status, note)
    SELECT r.incident_id, r.district_code, r.at, r.actor_id, r.actor_name, r.action,
        r.from_status, r.to_status, r.note
    FROM jsonb_array_elements(filing->'events') WITH ORDINALITY AS e(row, n),
        jsonb_populate_record(NULL::incident_events, e.row) r
    ORDER BY e.n;
    INSERT INTO reports SELECT * FROM jsonb_populate_record(NULL::reports, filing->'report');
    INSERT INTO outbox_events (type, district_code, incident_id, payload, created_at)
    SELECT r.type, r.district_code, r.incident_id, r.payload, r.created_at
    FROM jsonb_array_elements(filing->'outbox') WITH ORDINALITY AS o(row, n),
        jsonb_populate_record(NULL::outbox_events, o.row) r
    ORDER BY o.n;
    RETURN 'filed';
END $$
"""
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {_FILE_REPORT}")
    op.execute(
        f"""
CREATE FUNCTION {_LOCK_NEARBY}
RETURNS TABLE (id varchar, distance_m float8)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(key) FROM unnest($1) key;
    RETURN QUERY SELECT i.id, ST_Distance(i.location::geography, p.g, false) AS distance_m
    FROM incidents i, (SELECT ST_SetSRID(ST_MakePoint($3, $4), 4326)::geography AS g) p
    WHERE i.{_OPEN} AND i.category = $2 AND i.last_observed_at BETWEEN $6 AND $7
    AND ST_DWithin(i.location::geography, p.g, $5, false)
    ORDER BY 2, i.opened_at, i.id;
END $$
"""
    )
