"""The spatial store: the questions whose SQL differs between SQLite and PostGIS.

Where a point is (`locate`), which open incident is nearest a report (`nearest_open_incident`),
who else is writing near it (`lock_area`), and a distance condition for lists (`within_m`).
Everything else a service asks is the same SQL on both databases and lives with the service.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from sqlalchemy import Table
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from geo.distance import bbox_around, metres_to_degrees

# Every status but closed and rejected. The merge's proximity search reads partial indexes
# of the open incidents only (migration 0007): a query uses them by spelling this condition,
# constants and all, exactly as the indexes do. As a bound parameter it would not match them.
OPEN_INCIDENT_STATUSES = ("dispatched", "acknowledged", "on_site", "resolved")
IS_OPEN_INCIDENT = "status IN ({})".format(", ".join(f"'{s}'" for s in OPEN_INCIDENT_STATUSES))
# Lock tiles are at least this many degrees wide (about 1 km), and never narrower than the
# radius, so that a merge locks a handful of tiles whatever the category's radius.
_MIN_LOCK_TILE_DEG = 0.01


@dataclass(frozen=True)
class CellBounds:
    id: int
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float


class Chain(NamedTuple):
    """A village, its township and its district: codes and names."""

    village_code: str
    village_name: str
    township_code: str
    township_name: str
    district_code: str
    district_name: str


@dataclass(frozen=True)
class Search:
    """The merge's search: open incidents of `category` within radius_m (on the ground) of the
    point, last observed within [seen_from, seen_until]; the nearest first, then the earliest
    opened, then by id."""

    category: str
    lon: float
    lat: float
    radius_m: float
    seen_from: datetime
    seen_until: datetime


class SpatialStore(Protocol):
    """Spatial questions the services ask, answered the best way each database can."""

    async def index_cells(self, session: AsyncSession, cells: Sequence[CellBounds]) -> None:
        """Bring the spatial index up to date for cells just written (inserted or updated)."""

    async def locate(self, session: AsyncSession, lon: float, lat: float) -> Chain | None:
        """The village covering the WGS-84 point (the smallest code on a border), with its
        township and district."""

    async def lock_area(self, session: AsyncSession, search: Search) -> None:
        """Make the unit of work's writers around the search's point wait for each other until
        it ends, so that what `nearest_open_incident` finds next stays true until the unit
        commits: two reports of one fire never open two incidents."""

    async def nearest_open_incident(self, session: AsyncSession, search: Search) -> str | None:
        """The id of the search's nearest open incident, if any."""

    def within_m(
        self, table: Table, lon: float, lat: float, radius_m: float
    ) -> ColumnElement[bool]:
        """A condition on rows of `table` (columns lon, lat, location): located within radius_m
        (on the ground) of the WGS-84 point. Usable in any query, so lists can page on it."""
        ...


def area_lock_keys(scope: str, lon: float, lat: float, radius_m: float) -> list[int]:
    """Sorted 64-bit lock keys of the tiles covering every point within radius_m.

    The tile size depends on the radius only, so two callers with the same radius whose points
    are within it share at least the tile of one of the points.
    """
    tile = max(_MIN_LOCK_TILE_DEG, metres_to_degrees(radius_m, 0.0))
    min_lon, min_lat, max_lon, max_lat = bbox_around(lon, lat, radius_m)
    keys = set()
    for ix in range(math.floor(min_lon / tile), math.floor(max_lon / tile) + 1):
        for iy in range(math.floor(min_lat / tile), math.floor(max_lat / tile) + 1):
            digest = hashlib.blake2b(f"{scope}:{tile}:{ix}:{iy}".encode(), digest_size=8)
            keys.add(int.from_bytes(digest.digest(), "big", signed=True))
    return sorted(keys)


def store_for(dialect: str) -> SpatialStore:
    if dialect == "sqlite":
        from app.spatial.sqlite import SqliteStore

        return SqliteStore()
    if dialect == "postgresql":
        from app.spatial.postgis import PostgisStore

        return PostgisStore()
    raise ValueError(f"no spatial store for the {dialect} dialect")
