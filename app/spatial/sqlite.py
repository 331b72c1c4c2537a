"""Spatial store for the embedded SQLite default: R*Tree candidates, exact tests in shapely."""

from __future__ import annotations

from collections.abc import Sequence

import shapely
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from app.spatial.store import CellBounds

_CANDIDATE_VILLAGES = text(
    "SELECT c.code, c.boundary FROM cells_rtree r JOIN cells c ON c.id = r.id "
    "WHERE r.min_lon <= :lon AND r.max_lon >= :lon AND r.min_lat <= :lat AND r.max_lat >= :lat "
    "AND c.level = 'village' ORDER BY c.code"
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
