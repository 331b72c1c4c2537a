"""Spatial store for the embedded SQLite default: R*Tree candidates, exact tests in shapely."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import Table, and_, bindparam, func, text
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dbsqlite import in_transaction
from app.dbtypes import UtcDateTime
from app.spatial.store import IS_OPEN_INCIDENT, CellBounds, Chain
from geo.distance import bbox_around, haversine_m

# The R*Tree is searched first; without the IN and the unary + on level, SQLite's planner
# prefers ix_cells_level and probes the R*Tree once per village (linear in the grid's size).
_CANDIDATE_VILLAGES = text(
    "SELECT c.boundary, c.code, c.name, t.code, t.name, d.code, d.name "
    "FROM cells c JOIN cells t ON t.code = c.parent_code JOIN cells d ON d.code = t.parent_code "
    "WHERE c.id IN (SELECT id FROM cells_rtree "
    "WHERE min_lon <= :lon AND max_lon >= :lon AND min_lat <= :lat AND max_lat >= :lat) "
    "AND +c.level = 'village' ORDER BY c.code"
)

# A write that changes nothing: in a write unit it begins the transaction IMMEDIATE.
_TAKE_WRITE_LOCK = text("UPDATE case_counters SET last_seq = last_seq WHERE 0")

# The condition on status matches the partial index ix_incidents_open_lon_lat: the open
# incidents of the category in the box's longitudes are all that is read.
_OPEN_INCIDENTS_IN_BOX = text(
    f"SELECT id, lon, lat, opened_at FROM incidents WHERE {IS_OPEN_INCIDENT} "
    "AND category = :category AND lon BETWEEN :min_lon AND :max_lon "
    "AND lat BETWEEN :min_lat AND :max_lat "
    "AND last_observed_at BETWEEN :seen_from AND :seen_until"
).bindparams(
    bindparam("seen_from", type_=UtcDateTime()),
    bindparam("seen_until", type_=UtcDateTime()),
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
        conn = await session.connection()
        point = shapely.Point(lon, lat)
        for wkb, *chain in await conn.execute(_CANDIDATE_VILLAGES, {"lon": lon, "lat": lat}):
            if shapely.from_wkb(wkb).covers(point):
                return Chain(*chain)
        return None

    async def lock_nearby_open_incidents(
        self,
        session: AsyncSession,
        category: str,
        lon: float,
        lat: float,
        radius_m: float,
        seen_from: datetime,
        seen_until: datetime,
    ) -> list[tuple[str, float]]:
        """The database's write lock (SQLite has no finer one), unless the unit holds it
        already: a write unit begins its transaction IMMEDIATE at its first write, and the
        lock statement counts as one. Then candidates from a lon/lat box, and the exact
        great-circle distance."""
        min_lon, min_lat, max_lon, max_lat = bbox_around(lon, lat, radius_m)
        conn = await session.connection()
        if conn.sync_connection is None or not in_transaction(conn.sync_connection):
            await conn.execute(_TAKE_WRITE_LOCK)
        rows = await conn.execute(
            _OPEN_INCIDENTS_IN_BOX,
            {
                "category": category,
                "seen_from": seen_from,
                "seen_until": seen_until,
                "min_lon": min_lon,
                "max_lon": max_lon,
                "min_lat": min_lat,
                "max_lat": max_lat,
            },
        )
        found = []
        for incident_id, other_lon, other_lat, opened_at in rows:
            distance = haversine_m(lon, lat, other_lon, other_lat)
            if distance <= radius_m:
                found.append((distance, str(opened_at), str(incident_id)))
        return [(incident_id, distance) for distance, _, incident_id in sorted(found)]

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
