"""Spatial store for PostgreSQL + PostGIS: the database does the spatial work on GiST indexes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import shapely
from pydantic_core import to_json
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Table, bindparam, cast, func, text
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import UserDefinedType
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.models import KEY_PRINCIPAL_COLUMNS, USER_PRINCIPAL_COLUMNS
from app.dbdriver import DriverStatement, Pooled
from app.dbtypes import UtcDateTime
from app.spatial.store import (
    IS_OPEN_INCIDENT,
    CategoryRule,
    CellBounds,
    Chain,
    Counted,
    Filed,
    Filing,
    Numbering,
    OpenedCase,
    OpenIncident,
    Scene,
    WritingCaller,
    area_lock_keys,
)
from app.spatial.types import SRID

# With 100 000 villages PostgreSQL plans this prepared statement anew for each point (a
# generic plan, blind to the point, is costed higher), so its planning is paid every time:
# as a three-way join 0.14 ms against 0.05 ms of execution; with the township's and the
# district's names as subqueries by primary key, 0.04 ms.
_LOCATE = DriverStatement(
    text(
        "SELECT c.code, c.name, c.parent_code, "
        "(SELECT t.name FROM cells t WHERE t.code = c.parent_code), "
        "c.district_code, (SELECT d.name FROM cells d WHERE d.code = c.district_code) "
        "FROM cells c WHERE c.level = 'village' "
        "AND ST_Covers(c.boundary, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
        "ORDER BY c.code LIMIT 1"
    )
)

# A report's scene in one round trip: its category, the village it is in (as _LOCATE), and the
# nearest open incident of the category it may join, with its routing (each agency's name by
# its key: joined, the planner hashed the whole agencies table for two assignments). The search
# is that of store.search_for, spelt in SQL; sphere, not spheroid: the distance of
# geo.distance.haversine_m on SQLite. It reads the partial GiST index of the open incidents
# (migration 0007).
# Given a year, a report that would open an incident also takes its case number (the counter of
# incidents.service.open_case) with the names of the agencies it is routed to: one round trip
# fewer for a new incident. The counter's row is locked for this statement only, and its
# commit, the statement's own, does not wait for the WAL flush: a number lost in a crash is one
# whose report was not filed either, since the filing's commit flushes the WAL past it.
_POINT = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
_SCENE_READ = (
    "s AS (SELECT c.code, c.materials, c.lead, c.cooperating, c.acknowledge_minutes, "
    "c.resolve_minutes, c.merge_radius_m, c.merge_window_minutes, "
    "v.code AS village, v.name, v.parent_code, v.township, v.district_code, v.district, "
    "n.id, n.case_number, n.district_code AS incident_district, n.status, n.version, "
    "n.report_count, n.routed "
    "FROM categories c "
    "LEFT JOIN LATERAL (SELECT v.code, v.name, v.parent_code, "
    "(SELECT t.name FROM cells t WHERE t.code = v.parent_code) AS township, v.district_code, "
    "(SELECT d.name FROM cells d WHERE d.code = v.district_code) AS district "
    f"FROM cells v WHERE v.level = 'village' AND ST_Covers(v.boundary, {_POINT}) "
    "ORDER BY v.code LIMIT 1) v ON true "
    "LEFT JOIN LATERAL (SELECT i.id, i.case_number, i.district_code, i.status, i.version, "
    "i.report_count, (SELECT json_agg(json_build_array(a.agency_code, "
    "(SELECT g.name FROM agencies g WHERE g.code = a.agency_code), a.role)) "
    "FROM assignments a WHERE a.incident_id = i.id) AS routed "
    f"FROM incidents i WHERE i.{IS_OPEN_INCIDENT} AND i.category = c.code "
    "AND i.last_observed_at BETWEEN CAST(:observed_at AS timestamptz) "
    "- make_interval(mins => c.merge_window_minutes) "
    "AND CAST(:observed_at AS timestamptz) + make_interval(mins => c.merge_window_minutes) "
    f"AND ST_DWithin(i.location::geography, {_POINT}::geography, c.merge_radius_m, false) "
    f"ORDER BY ST_Distance(i.location::geography, {_POINT}::geography, false), "
    "i.opened_at, i.id "
    "LIMIT 1) n ON true "
    "WHERE c.code = :category{admitted}), "
    "numbered AS (INSERT INTO case_counters (district_code, year, last_seq) "
    "SELECT s.district_code, CAST(:year AS integer), 1 FROM s "
    "WHERE CAST(:year AS integer) IS NOT NULL AND s.village IS NOT NULL AND s.id IS NULL "
    "AND (CAST(:material AS text) IS NULL "
    "OR CAST(:material AS text) IN (SELECT json_array_elements_text(s.materials))) "
    "ON CONFLICT (district_code, year) DO UPDATE SET last_seq = case_counters.last_seq + 1 "
    "RETURNING last_seq) "
    "SELECT s.*, numbered.last_seq, CASE WHEN numbered.last_seq IS NOT NULL THEN "
    "(SELECT json_object_agg(g.code, g.name) FROM agencies g WHERE g.code = s.parent_code "
    "OR g.code IN (SELECT json_array_elements_text(s.lead)) "
    "OR g.code IN (SELECT json_array_elements_text(s.cooperating))) END, "
    "set_config('synchronous_commit', 'off', true)"
)
_SCENE_COLUMNS = 24  # the scene's part of a row: s.*, the number, the names, set_config's
_SCENE = DriverStatement(
    text(
        "WITH " + _SCENE_READ.format(admitted="") + " FROM s LEFT JOIN numbered ON true"
    ).bindparams(bindparam("observed_at", type_=UtcDateTime()))
)

# A report's caller is looked up and its write counted in the scene's round trip (as
# app.ratelimit's CountedRead and app.auth.service's queries would: the same tables, columns
# and conditions), the older windows of its count forgotten at its first write in a new one;
# the scene itself is read only for a caller found, allowed to report and under its limit, so
# a refused caller reads nothing else and takes no case number. `admitted`: may it report? The
# count commits with the statement, not waiting for the WAL flush, like the case number.
# The caller's counter row is locked from the count to the statement's end. PostgreSQL deletes
# the older windows last, after the case number's row is locked: a report of the same caller
# still counting in the older window may hold one of them while it waits for that case
# number's row, so the deletion skips rows locked rather than wait for them (a deadlock); a
# window skipped is forgotten at the caller's next new window.
_CALLERS = {
    "user": f"SELECT {', '.join(USER_PRINCIPAL_COLUMNS)}, "
    "role = ANY(CAST(:roles AS text[])) AS admitted "
    "FROM users WHERE id = :lookup AND is_active",
    "api_key": f"SELECT {', '.join(KEY_PRINCIPAL_COLUMNS)}, "
    "CAST(:scope AS text) IN (SELECT json_array_elements_text(scopes)) AS admitted "
    "FROM api_keys WHERE key_hash = :lookup AND revoked_at IS NULL",
}
_COUNTED = (
    "counted AS (INSERT INTO rate_limit_counters (key, window_start, count) "
    "VALUES (:counted_as, :window, 1) ON CONFLICT (key, window_start) "
    "DO UPDATE SET count = rate_limit_counters.count + 1 RETURNING count), "
    "forgotten AS (DELETE FROM rate_limit_counters WHERE (key, window_start) IN "
    "(SELECT key, window_start FROM rate_limit_counters WHERE key = :counted_as "
    "AND window_start < :window AND (SELECT count FROM counted) = 1 FOR UPDATE SKIP LOCKED)), "
    "caller AS ({caller}), "
)
_ADMITTED = (
    " AND (SELECT count FROM counted) <= :allowed_writes "
    "AND EXISTS (SELECT FROM caller WHERE admitted)"
)
_SCENE_WITH_CALLER = {
    kind: DriverStatement(
        text(
            "WITH "
            + _COUNTED.format(caller=caller)
            + _SCENE_READ.format(admitted=_ADMITTED)
            + ", counted.count, caller.* FROM counted LEFT JOIN caller ON true "
            "LEFT JOIN s ON true LEFT JOIN numbered ON true"
        ).bindparams(
            bindparam("observed_at", type_=UtcDateTime()),
            bindparam("window", type_=UtcDateTime()),
        )
    )
    for kind, caller in _CALLERS.items()
}

# Every write of a report in one round trip: a function of migration 8f2c4a6e1b05.
_FILE_REPORT = DriverStatement(
    text("SELECT burnban_file_report(CAST(:keys AS bigint[]), CAST(:filing AS jsonb))")
)


# Imports writing at least this many cells rebuild the GiST index (see index_cells).
_REBUILD_AFTER = 1000


class _Geography(UserDefinedType[Any]):
    """Renders a bare `geography` cast: the expression the functional GiST index is built on."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "geography"


class PostgisStore:
    async def index_cells(self, session: AsyncSession, cells: Sequence[CellBounds]) -> None:
        """The GiST index follows the table by itself, not well after a bulk import; the
        planner's statistics do not follow at all.

        A GiST index grown by 100 000 inserts answered a locate in 0.25 ms, rebuilt in one
        go in 0.05 ms (0.5 s to rebuild). Without ANALYZE after an import the planner guesses
        a few hundred villages and intersects the GiST candidates with every village of
        `ix_cells_level` (6 ms a locate), until autovacuum gets round to the table. The
        rebuild locks the index until the import commits: locates wait for that moment.
        """
        if not cells:
            return
        conn = await session.connection()
        if len(cells) >= _REBUILD_AFTER:
            await conn.execute(text("REINDEX INDEX gix_cells_boundary"))
        await conn.execute(text("ANALYZE cells"))

    async def locate(self, session: AsyncSession, lon: float, lat: float) -> Chain | None:
        conn = await session.connection()
        row = await _LOCATE.first(conn, {"lon": lon, "lat": lat})
        return None if row is None else Chain(*row)

    async def scene(
        self,
        conn: Pooled,
        category: str,
        lon: float,
        lat: float,
        observed_at: datetime,
        numbering: Numbering | None = None,
        caller: WritingCaller | None = None,
    ) -> Scene:
        year, material = numbering or (None, None)
        params: dict[str, Any] = {
            "category": category,
            "lon": lon,
            "lat": lat,
            "observed_at": observed_at,
            "year": year,
            "material": material,
        }
        counted = None
        if caller is None:
            row = await _SCENE.first(conn, params)
        else:
            params |= {
                "lookup": caller.lookup,
                "counted_as": caller.counted_as,
                "window": caller.window,
                "allowed_writes": caller.allowed_writes,
                "roles": list(caller.roles),
                "scope": caller.scope,
            }
            [row] = await _SCENE_WITH_CALLER[caller.kind].rows(conn, params)
            writes, *found = row[_SCENE_COLUMNS:-1]  # not `admitted`, the last column
            counted = Counted(writes, None if found[0] is None else tuple(found))
        if row is None or row[0] is None:
            return Scene(None, None, None, counted=counted)
        rule = CategoryRule(*row[:8])  # asyncpg decodes JSON columns
        chain = None if row[8] is None else Chain(*row[8:14])
        incident_id, case_number, district_code, status, version, report_count, routed = row[14:21]
        nearest = None
        if incident_id is not None:
            routing = [(code, name, role) for code, name, role in routed or ()]
            nearest = OpenIncident(
                incident_id, case_number, district_code, status, version, report_count, routing
            )  # routed is NULL when no agency is left
        seq, names = row[21:23]
        case = None if seq is None else OpenedCase(seq, names or {})  # NULL if none exists
        return Scene(rule, chain, nearest, case, counted)

    async def file_report(self, conn: Pooled, filing: Filing) -> Filed:
        """Transaction-scoped advisory locks on the tiles around the point, in key order so
        that two writers never wait for each other in a cycle; then the function's checks and
        writes."""
        search = filing.search
        keys = area_lock_keys(
            f"incident:{search.category}", search.lon, search.lat, search.radius_m
        )
        params = {"keys": keys, "filing": _document(filing)}
        [(filed,)] = await _FILE_REPORT.rows(conn, params)
        return Filed(filed)

    def within_m(
        self, table: Table, lon: float, lat: float, radius_m: float
    ) -> ColumnElement[bool]:
        """ST_DWithin on geography (sphere), which gix_<table>_location answers."""
        point = cast(func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326), _Geography())
        within: ColumnElement[bool] = func.ST_DWithin(
            cast(table.c.location, _Geography()), point, radius_m, False
        )
        return within


def _document(filing: Filing) -> str:
    """The filing as the function reads it: rows by column name, in each column's text form
    (times in ISO 8601, `Z` for UTC, as `timestamptz` reads them)."""
    search, joins, opens = filing.search, filing.joins, filing.opens
    document = {
        "search": vars(search),  # frozen dataclasses, read as they are
        "joins": None if joins is None else vars(joins),
        "incident": None if opens is None else opens.incident,
        "assignments": [] if opens is None else opens.assignments,
        "events": filing.events,
        "report": filing.report,
        "outbox": filing.outbox,
        "claim": filing.claim,
    }
    return to_json(document, fallback=_text_form).decode()


def _text_form(value: Any) -> Any:
    if isinstance(value, BaseGeometry):
        return shapely.to_wkb(shapely.set_srid(value, SRID), hex=True, include_srid=True)
    raise TypeError(f"{type(value).__name__} is not a column value")
