"""Spatial store for PostgreSQL + PostGIS: the database does the spatial work on GiST indexes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, cast, func, text
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import UserDefinedType
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dbtypes import UtcDateTime
from app.spatial.store import OPEN_INCIDENT_EXCLUDED, CellBounds, area_lock_keys

_LOCATE_VILLAGE = text(
    "SELECT code FROM cells WHERE level = 'village' "
    "AND ST_Covers(boundary, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
    "ORDER BY code LIMIT 1"
)

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
# Sphere, not spheroid: the same distance as geo.distance.haversine_m on SQLite, and the
# expression matches the functional GiST index gix_incidents_location.
_NEARBY_OPEN_INCIDENTS = text(
    "SELECT id, ST_Distance(location::geography, p.g, false) AS distance_m "
    "FROM incidents, (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS g) p "
    "WHERE category = :category AND status NOT IN :excluded "
    "AND last_observed_at BETWEEN :seen_from AND :seen_until "
    "AND ST_DWithin(location::geography, p.g, :radius_m, false) "
    "ORDER BY distance_m, opened_at, id"
).bindparams(
    bindparam("excluded", expanding=True),
    bindparam("seen_from", type_=UtcDateTime()),
    bindparam("seen_until", type_=UtcDateTime()),
)


class _Geography(UserDefinedType[Any]):
    """Renders a bare `geography` cast: the expression the functional GiST index is built on."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "geography"


class PostgisStore:
    async def index_cells(self, session: AsyncSession, cells: Sequence[CellBounds]) -> None:
        """The GiST index follows the table by itself."""

    async def locate_village(self, session: AsyncSession, lon: float, lat: float) -> str | None:
        conn = await session.connection()
        code = (await conn.execute(_LOCATE_VILLAGE, {"lon": lon, "lat": lat})).scalar()
        return None if code is None else str(code)

    async def lock_area(
        self, session: AsyncSession, scope: str, lon: float, lat: float, radius_m: float
    ) -> None:
        """Transaction-scoped advisory locks on the tiles around the point, in key order so
        that two writers never wait for each other in a cycle."""
        conn = await session.connection()
        for key in area_lock_keys(scope, lon, lat, radius_m):
            await conn.execute(_LOCK, {"key": key})

    async def nearby_open_incidents(
        self,
        session: AsyncSession,
        category: str,
        lon: float,
        lat: float,
        radius_m: float,
        seen_from: datetime,
        seen_until: datetime,
    ) -> list[tuple[str, float]]:
        conn = await session.connection()
        rows = await conn.execute(
            _NEARBY_OPEN_INCIDENTS,
            {
                "lon": lon,
                "lat": lat,
                "category": category,
                "excluded": list(OPEN_INCIDENT_EXCLUDED),
                "seen_from": seen_from,
                "seen_until": seen_until,
                "radius_m": radius_m,
            },
        )
        return [(str(row[0]), float(row[1])) for row in rows]

    def within_m(
        self, table: Table, lon: float, lat: float, radius_m: float
    ) -> ColumnElement[bool]:
        """ST_DWithin on geography (sphere), which gix_<table>_location answers."""
        point = cast(func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326), _Geography())
        within: ColumnElement[bool] = func.ST_DWithin(
            cast(table.c.location, _Geography()), point, radius_m, False
        )
        return within
