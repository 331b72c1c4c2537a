"""Spatial store for PostgreSQL + PostGIS: the database does the spatial work on GiST indexes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, cast, func, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import UserDefinedType
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dbtypes import UtcDateTime
from app.spatial.store import IS_OPEN_INCIDENT, CellBounds, Chain, Search, area_lock_keys

# The village covering a point, the smallest code on a border. With 100 000 villages
# PostgreSQL plans this anew for each point, so its planning is paid every time: the township's
# and the district's names as subqueries by primary key plan in a third of a three-way join's
# time.
_LOCATE = text(
    "SELECT c.code AS village_code, c.name AS village_name, "
    "c.parent_code AS township_code, "
    "(SELECT t.name FROM cells t WHERE t.code = c.parent_code) AS township_name, "
    "c.district_code, "
    "(SELECT d.name FROM cells d WHERE d.code = c.district_code) AS district_name "
    "FROM cells c WHERE c.level = 'village' "
    "AND ST_Covers(c.boundary, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
    "ORDER BY c.code LIMIT 1"
)

# Transaction-scoped advisory locks on the tiles around the point, in key order so that two
# writers never wait for each other in a cycle. Held until the unit of work ends.
_LOCK_TILES = text(
    "SELECT pg_advisory_xact_lock(key) FROM unnest(:keys) AS key ORDER BY key"
).bindparams(bindparam("keys", type_=ARRAY(BIGINT())))

# The merge's search (`Search`), on the partial GiST index of the open incidents (migration
# 0007): sphere, not spheroid, as geo.distance.haversine_m on SQLite. Run in a statement of its
# own after `_LOCK_TILES`: a statement's snapshot is taken when it starts, so it sees what the
# writers it waited for have committed.
_NEAREST_OPEN_INCIDENT = text(
    "SELECT i.id FROM incidents i, "
    "(SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS g) p "
    f"WHERE i.{IS_OPEN_INCIDENT} AND i.category = :category "
    "AND i.last_observed_at BETWEEN :seen_from AND :seen_until "
    "AND ST_DWithin(i.location::geography, p.g, :radius_m, false) "
    "ORDER BY ST_Distance(i.location::geography, p.g, false), i.opened_at, i.id LIMIT 1"
).bindparams(
    bindparam("seen_from", type_=UtcDateTime()), bindparam("seen_until", type_=UtcDateTime())
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
        row = (await conn.execute(_LOCATE, {"lon": lon, "lat": lat})).mappings().first()
        return None if row is None else Chain(**row)

    async def lock_area(self, session: AsyncSession, search: Search) -> None:
        keys = area_lock_keys(
            f"incident:{search.category}", search.lon, search.lat, search.radius_m
        )
        conn = await session.connection()
        await conn.execute(_LOCK_TILES, {"keys": keys})

    async def nearest_open_incident(self, session: AsyncSession, search: Search) -> str | None:
        conn = await session.connection()
        params = {
            "category": search.category,
            "lon": search.lon,
            "lat": search.lat,
            "radius_m": search.radius_m,
            "seen_from": search.seen_from,
            "seen_until": search.seen_until,
        }
        found: str | None = (await conn.execute(_NEAREST_OPEN_INCIDENT, params)).scalar()
        return found

    def within_m(
        self, table: Table, lon: float, lat: float, radius_m: float
    ) -> ColumnElement[bool]:
        """ST_DWithin on geography (sphere), which gix_<table>_location answers."""
        point = cast(func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326), _Geography())
        within: ColumnElement[bool] = func.ST_DWithin(
            cast(table.c.location, _Geography()), point, radius_m, False
        )
        return within
