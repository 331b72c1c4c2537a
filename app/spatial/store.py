"""The spatial-store interface: the only place where SQLite and PostGIS differ."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession


@dataclass(frozen=True)
class CellBounds:
    id: int
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float


class SpatialStore(Protocol):
    """Spatial questions the services ask, answered the best way each database can."""

    async def index_cells(self, session: AsyncSession, cells: Sequence[CellBounds]) -> None:
        """Bring the spatial index up to date for cells just written (inserted or updated)."""

    async def locate_village(self, session: AsyncSession, lon: float, lat: float) -> str | None:
        """The code of the village covering the WGS-84 point; the smallest code on a border."""


def store_for(dialect: str) -> SpatialStore:
    if dialect == "sqlite":
        from app.spatial.sqlite import SqliteStore

        return SqliteStore()
    if dialect == "postgresql":
        from app.spatial.postgis import PostgisStore

        return PostgisStore()
    raise ValueError(f"no spatial store for the {dialect} dialect")
