"""Spatial store for the embedded SQLite default: R*Tree candidates, exact tests in shapely.

A report's reads and writes run on sqlite3 directly, on a bare unit's connection
(`app.db.Database.bare`): they are the hot path, and each statement through SQLAlchemy costs
several times what SQLite takes to run it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import Integer, Table, and_, func, text
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dbdriver import Pooled
from app.dbsqlite import RowInsert, binder, raw
from app.dbtypes import UtcDateTime
from app.idempotency.models import IdempotencyKey
from app.incidents.models import Assignment, Incident, IncidentEvent
from app.outbox.models import OutboxEvent
from app.reports.models import Report
from app.spatial.store import (
    IS_OPEN_INCIDENT,
    CategoryRule,
    CellBounds,
    Chain,
    Filed,
    Filing,
    Numbering,
    OpenIncident,
    Scene,
    Search,
    WantedCase,
    WritingCaller,
    search_for,
)
from app.spatial.types import GeometryType
from geo.distance import bbox_around, haversine_m

# The R*Tree is searched first; without the IN and the unary + on level, SQLite's planner
# prefers ix_cells_level and probes the R*Tree once per village (linear in the grid's size).
_CANDIDATE_VILLAGES = (
    "SELECT c.boundary, c.code, c.name, t.code, t.name, d.code, d.name "
    "FROM cells c JOIN cells t ON t.code = c.parent_code JOIN cells d ON d.code = t.parent_code "
    "WHERE c.id IN (SELECT id FROM cells_rtree "
    "WHERE min_lon <= ?1 AND max_lon >= ?1 AND min_lat <= ?2 AND max_lat >= ?2) "
    "AND +c.level = 'village' ORDER BY c.code"
)
_CATEGORY_RULE = (
    "SELECT code, materials, lead, cooperating, acknowledge_minutes, resolve_minutes, "
    "merge_radius_m, merge_window_minutes FROM categories WHERE code = ?"
)
# The condition on status matches the partial index ix_incidents_open_lon_lat: the open
# incidents of the category in the box's longitudes are all that is read.
_OPEN_INCIDENTS_IN_BOX = (
    "SELECT lon, lat, opened_at, id, case_number, district_code, status, version, report_count "
    f"FROM incidents WHERE {IS_OPEN_INCIDENT} AND category = ? "
    "AND lon BETWEEN ? AND ? AND lat BETWEEN ? AND ? AND last_observed_at BETWEEN ? AND ?"
)
_ROUTED = (
    "SELECT a.agency_code, g.name, a.role FROM assignments a "
    "JOIN agencies g ON g.code = a.agency_code WHERE a.incident_id = ?"
)
_OPEN_VERSION = f"SELECT version FROM incidents WHERE id = ? AND {IS_OPEN_INCIDENT}"
# A fire moves with the wind: the incident is where it was last seen. Every SET sees the row
# as it was; times are compared as the fixed-width text SQLAlchemy stores.
_JOIN = (
    "UPDATE incidents SET report_count = report_count + 1, version = version + 1, "
    "updated_at = :updated_at, "
    "lon = CASE WHEN last_observed_at <= :observed_at THEN :lon ELSE lon END, "
    "lat = CASE WHEN last_observed_at <= :observed_at THEN :lat ELSE lat END, "
    "location = CASE WHEN last_observed_at <= :observed_at THEN :location ELSE location END, "
    "last_observed_at = MAX(last_observed_at, :observed_at) WHERE id = :id"
)
_TIME = binder(UtcDateTime())
_POINT = binder(GeometryType("POINT"))


def _inserting(table: Table, suffix: str = "") -> RowInsert:
    """Every column but a generated integer id."""
    columns = [c.name for c in table.c if not (c.primary_key and isinstance(c.type, Integer))]
    return RowInsert(table, columns, suffix)


_INCIDENTS = _inserting(Incident.__table__)  # type: ignore[attr-defined]
_ASSIGNMENTS = _inserting(Assignment.__table__)  # type: ignore[attr-defined]
_EVENTS = _inserting(IncidentEvent.__table__)  # type: ignore[attr-defined]
_REPORTS = _inserting(Report.__table__)  # type: ignore[attr-defined]
_OUTBOX = _inserting(OutboxEvent.__table__)  # type: ignore[attr-defined]
_CLAIM = _inserting(
    IdempotencyKey.__table__,  # type: ignore[attr-defined]
    " ON CONFLICT (caller_kind, caller_id, key) DO NOTHING RETURNING id",
)

HAVERSINE_FUNCTION = "burnban_haversine_m"


def register_functions(dbapi_connection: Any) -> None:
    """SQL functions the store's conditions call; registered on every new connection."""
    dbapi_connection.create_function(HAVERSINE_FUNCTION, 4, haversine_m, deterministic=True)


class SqliteStore:
    """R*Tree boxes are stored as 32-bit floats rounded outwards, so they only ever widen."""

    async def index_cells(self, session: AsyncSession, cells: Sequence[CellBounds]) -> None:
        if not cells:
            return
        conn = await session.connection()
        rows = [
            {"id": c.id, "a": c.min_lon, "b": c.max_lon, "c": c.min_lat, "d": c.max_lat}
            for c in cells
        ]
        await conn.execute(
            text("INSERT OR REPLACE INTO cells_rtree VALUES (:id, :a, :b, :c, :d)"), rows
        )

    async def locate(self, session: AsyncSession, lon: float, lat: float) -> Chain | None:
        return _locate(raw(await session.connection()), lon, lat)

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
        """Read in autocommit; then, given a caller, one short write turn of the database's
        (`WritingCaller.alone`) counts its write, looks it up and, given `numbering`, takes the
        case number of the incident the report would open. Without a caller no number is taken
        here: the report takes one in a turn of its own (`open_case`)."""
        db: sqlite3.Connection = conn.driver
        row = db.execute(_CATEGORY_RULE, (category,)).fetchone()
        if row is None:
            counted = None if caller is None else (await caller.alone(None))[0]
            return Scene(None, None, None, counted=counted)
        code, materials, lead, cooperating, *limits = row
        rule = CategoryRule(code, *(json.loads(v) for v in (materials, lead, cooperating)), *limits)
        chain = _locate(db, lon, lat)
        found = _open_nearby(db, search_for(rule, lon, lat, observed_at))
        nearest = None if found is None else _open(db, found)
        if caller is None:
            return Scene(rule, chain, nearest)
        wanted = None
        if (
            numbering is not None
            and chain is not None
            and nearest is None
            and (numbering.material is None or numbering.material in rule.materials)
        ):
            wanted = WantedCase(chain.district_code, chain.township_code, numbering.year, rule)
        counted, case = await caller.alone(wanted)
        return Scene(rule, chain, nearest, case, counted)

    async def file_report(self, conn: Pooled, filing: Filing) -> Filed:
        """Under the database's one write lock: the checks, then the writes. A unit that holds
        the lock already (it took a case number) goes on in its transaction."""
        await conn.begin_writing()
        db: sqlite3.Connection = conn.driver
        joins, opens = filing.joins, filing.opens
        if joins is not None:
            found = db.execute(_OPEN_VERSION, (joins.incident_id,)).fetchone()
            if found is None or found[0] != joins.version:
                return Filed.STALE
        elif _open_nearby(db, filing.search) is not None:
            return Filed.STALE
        if filing.claim is not None:
            if db.execute(_CLAIM.sql, _CLAIM.values(filing.claim)).fetchone() is None:
                return Filed.REPLAY
        if joins is not None:
            db.execute(
                _JOIN,
                {
                    "id": joins.incident_id,
                    "updated_at": _TIME(joins.updated_at),
                    "observed_at": _TIME(joins.observed_at),
                    "lon": joins.lon,
                    "lat": joins.lat,
                    "location": _POINT(shapely.Point(joins.lon, joins.lat)),
                },
            )
        if opens is not None:
            _INCIDENTS.run(db, [opens.incident])
            _ASSIGNMENTS.run(db, opens.assignments)
        _EVENTS.run(db, filing.events)
        _REPORTS.run(db, [filing.report])
        _OUTBOX.run(db, filing.outbox)
        return Filed.FILED

    def within_m(
        self, table: Table, lon: float, lat: float, radius_m: float
    ) -> ColumnElement[bool]:
        """The lon/lat box first (ix_<table>_lon_lat), then the exact great-circle distance."""
        min_lon, min_lat, max_lon, max_lat = bbox_around(lon, lat, radius_m)
        distance = getattr(func, HAVERSINE_FUNCTION)(table.c.lon, table.c.lat, lon, lat)
        return and_(
            table.c.lon.between(min_lon, max_lon),
            table.c.lat.between(min_lat, max_lat),
            distance <= radius_m,
        )


def _locate(db: sqlite3.Connection, lon: float, lat: float) -> Chain | None:
    point = shapely.Point(lon, lat)
    for boundary, *chain in db.execute(_CANDIDATE_VILLAGES, (lon, lat)):
        if shapely.from_wkb(boundary).covers(point):
            return Chain(*chain)
    return None


def _open_nearby(db: sqlite3.Connection, search: Search) -> tuple[Any, ...] | None:
    """The search's nearest open incident (then the earliest opened, then by id): candidates
    from a lon/lat box, then the exact great-circle distance."""
    min_lon, min_lat, max_lon, max_lat = bbox_around(search.lon, search.lat, search.radius_m)
    candidates = db.execute(
        _OPEN_INCIDENTS_IN_BOX,
        (
            search.category,
            min_lon,
            max_lon,
            min_lat,
            max_lat,
            _TIME(search.seen_from),
            _TIME(search.seen_until),
        ),
    )
    found = []
    for lon, lat, *incident in candidates:
        distance = haversine_m(search.lon, search.lat, lon, lat)
        if distance <= search.radius_m:
            found.append((distance, *incident))
    return min(found)[2:] if found else None


def _open(db: sqlite3.Connection, row: tuple[Any, ...]) -> OpenIncident:
    incident_id, case_number, district_code, status, version, report_count = row
    routed = [(code, name, role) for code, name, role in db.execute(_ROUTED, (incident_id,))]
    return OpenIncident(
        incident_id, case_number, district_code, status, version, report_count, routed
    )
