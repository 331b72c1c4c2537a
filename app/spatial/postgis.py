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
from app.spatial.store import CellBounds, Chain, area_lock_keys

# With 100 000 villages PostgreSQL plans this prepared statement anew for each point (a
# generic plan, blind to the point, is costed higher), so its planning is paid every time:
# as a three-way join 0.14 ms against 0.05 ms of execution; with the township's and the
# district's names as subqueries by primary key, 0.04 ms.
_LOCATE = text(
    "SELECT c.code, c.name, c.parent_code, "
    "(SELECT t.name FROM cells t WHERE t.code = c.parent_code), "
    "c.district_code, (SELECT d.name FROM cells d WHERE d.code = c.district_code) "
    "FROM cells c WHERE c.level = 'village' "
    "AND ST_Covers(c.boundary, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
    "ORDER BY c.code LIMIT 1"
)

# The area lock and the search that must follow it, in one round trip: a function of
# migration 2b6f9e4c8d17, which runs the search with a snapshot taken after the lock. Sphere,
# not spheroid: the same distance as geo.distance.haversine_m on SQLite.
_LOCK_NEARBY_OPEN_INCIDENTS = text(
    "SELECT id, distance_m FROM burnban_lock_nearby_open_incidents(CAST(:keys AS bigint[]), "
    ":category, :lon, :lat, :radius_m, :seen_from, :seen_until)"
).bindparams(
    bindparam("seen_from", type_=UtcDateTime()),
    bindparam("seen_until", type_=UtcDateTime()),
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
        row = (await conn.execute(_LOCATE, {"lon": lon, "lat": lat})).first()
        return None if row is None else Chain(*row)

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
        """Transaction-scoped advisory locks on the tiles around the point, in key order so
        that two writers never wait for each other in a cycle; then the search."""
        conn = await session.connection()
        keys = area_lock_keys(f"incident:{category}", lon, lat, radius_m)
        rows = await conn.execute(
            _LOCK_NEARBY_OPEN_INCIDENTS,
            {
                "keys": keys,
                "category": category,
                "lon": lon,
                "lat": lat,
                "radius_m": radius_m,
                "seen_from": seen_from,
                "seen_until": seen_until,
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
