"""Spatial store for PostgreSQL + PostGIS: the database does the spatial work on GiST indexes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from app.spatial.store import CellBounds

_LOCATE_VILLAGE = text(
    "SELECT code FROM cells WHERE level = 'village' "
    "AND ST_Covers(boundary, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
    "ORDER BY code LIMIT 1"
)


class PostgisStore:
    async def index_cells(self, session: AsyncSession, cells: Sequence[CellBounds]) -> None:
        """The GiST index follows the table by itself."""

    async def locate_village(self, session: AsyncSession, lon: float, lat: float) -> str | None:
        conn = await session.connection()
        code = (await conn.execute(_LOCATE_VILLAGE, {"lon": lon, "lat": lat})).scalar()
        return None if code is None else str(code)
