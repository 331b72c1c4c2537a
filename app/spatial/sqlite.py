"""Spatial store for the embedded SQLite default: R*Tree candidates, exact tests in shapely."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import shapely
from sqlalchemy import bindparam, text
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dbtypes import UtcDateTime
from app.spatial.store import OPEN_INCIDENT_EXCLUDED, CellBounds
from geo.distance import bbox_around, haversine_m

_CANDIDATE_VILLAGES = text(
    "SELECT c.code, c.boundary FROM cells_rtree r JOIN cells c ON c.id = r.id "
    "WHERE r.min_lon <= :lon AND r.max_lon >= :lon AND r.min_lat <= :lat AND r.max_lat >= :lat "
    "AND c.level = 'village' ORDER BY c.code"
)

_OPEN_INCIDENTS_IN_BOX = text(
    "SELECT id, lon, lat, opened_at FROM incidents "
    "WHERE category = :category AND status NOT IN :excluded "
    "AND last_observed_at BETWEEN :seen_from AND :seen_until "
    "AND lon BETWEEN :min_lon AND :max_lon AND lat BETWEEN :min_lat AND :max_lat"
).bindparams(
    bindparam("excluded", expanding=True),
    bindparam("seen_from", type_=UtcDateTime()),
    bindparam("seen_until", type_=UtcDateTime()),
)


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

    async def locate_village(self, session: AsyncSession, lon: float, lat: float) -> str | None:
        conn = await session.connection()
        point = shapely.Point(lon, lat)
        for code, wkb in await conn.execute(_CANDIDATE_VILLAGES, {"lon": lon, "lat": lat}):
            if shapely.from_wkb(wkb).covers(point):
                return str(code)
        return None

    async def lock_area(
        self, session: AsyncSession, scope: str, lon: float, lat: float, radius_m: float
    ) -> None:
        """Nothing to do: write units of work begin IMMEDIATE, so writers are serialised."""

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
        """Candidates from a lon/lat box, then the exact great-circle distance."""
        min_lon, min_lat, max_lon, max_lat = bbox_around(lon, lat, radius_m)
        conn = await session.connection()
        rows = await conn.execute(
            _OPEN_INCIDENTS_IN_BOX,
            {
                "category": category,
                "excluded": list(OPEN_INCIDENT_EXCLUDED),
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
