"""Spatial store for the embedded SQLite default: R*Tree and lon/lat boxes first, exact tests in
Python (shapely, the great-circle distance)."""

from __future__ import annotations

from collections.abc import Sequence

import shapely
from sqlalchemy import Table, and_, bindparam, func, text
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dbsqlite import HAVERSINE_FUNCTION
from app.dbtypes import UtcDateTime
from app.spatial.store import IS_OPEN_INCIDENT, CellBounds, Chain, Search
from geo.distance import bbox_around, haversine_m

# The villages whose R*Tree box holds the point, smallest code first, with their township and
# district. The R*Tree is searched first: without the IN and the unary + on level, SQLite's
# planner prefers ix_cells_level and probes the R*Tree once per village.
_CANDIDATE_VILLAGES = text(
    "SELECT c.boundary, c.code AS village_code, c.name AS village_name, "
    "t.code AS township_code, t.name AS township_name, "
    "d.code AS district_code, d.name AS district_name "
    "FROM cells c JOIN cells t ON t.code = c.parent_code JOIN cells d ON d.code = t.parent_code "
    "WHERE c.id IN (SELECT id FROM cells_rtree "
    "WHERE min_lon <= :lon AND max_lon >= :lon AND min_lat <= :lat AND max_lat >= :lat) "
    "AND +c.level = 'village' ORDER BY c.code"
)
# The open incidents of the category in the search's lon/lat box, seen in its window. The
# condition on status matches the partial index ix_incidents_open_lon_lat.
_OPEN_INCIDENTS_IN_BOX = text(
    "SELECT id, lon, lat, opened_at FROM incidents "
    f"WHERE {IS_OPEN_INCIDENT} AND category = :category "
    "AND lon BETWEEN :min_lon AND :max_lon AND lat BETWEEN :min_lat AND :max_lat "
    "AND last_observed_at BETWEEN :seen_from AND :seen_until"
).bindparams(
    bindparam("seen_from", type_=UtcDateTime()), bindparam("seen_until", type_=UtcDateTime())
)
_INDEX_CELL = text("INSERT OR REPLACE INTO cells_rtree VALUES (:id, :a, :b, :c, :d)")


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
        await conn.execute(_INDEX_CELL, rows)

    async def locate(self, session: AsyncSession, lon: float, lat: float) -> Chain | None:
        conn = await session.connection()
        point = shapely.Point(lon, lat)
        for row in await conn.execute(_CANDIDATE_VILLAGES, {"lon": lon, "lat": lat}):
            if shapely.from_wkb(row.boundary).covers(point):
                return Chain(
                    row.village_code,
                    row.village_name,
                    row.township_code,
                    row.township_name,
                    row.district_code,
                    row.district_name,
                )
        return None

    async def lock_area(self, session: AsyncSession, search: Search) -> None:
        """Nothing to do: a write unit holds the database's one write lock from its first
        statement to its end (app/dbsqlite.py), so writers wait for each other everywhere."""

    async def nearest_open_incident(self, session: AsyncSession, search: Search) -> str | None:
        conn = await session.connection()
        min_lon, min_lat, max_lon, max_lat = bbox_around(search.lon, search.lat, search.radius_m)
        params = {
            "category": search.category,
            "min_lon": min_lon,
            "max_lon": max_lon,
            "min_lat": min_lat,
            "max_lat": max_lat,
            "seen_from": search.seen_from,
            "seen_until": search.seen_until,
        }
        found = []
        for row in await conn.execute(_OPEN_INCIDENTS_IN_BOX, params):
            distance = haversine_m(search.lon, search.lat, row.lon, row.lat)
            if distance <= search.radius_m:
                found.append((distance, row.opened_at, row.id))
        return min(found)[2] if found else None

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
