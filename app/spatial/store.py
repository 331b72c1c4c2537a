"""The spatial-store interface: the only place where SQLite and PostGIS differ."""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple, Protocol

from sqlalchemy import Table
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from app.dbdriver import Pooled
from geo.distance import bbox_around, metres_to_degrees

# Every status but closed and rejected. The merge's proximity search reads partial indexes
# of the open incidents only (migration 0007): a query uses them by spelling this condition,
# constants and all, exactly as the indexes do. As a bound parameter it would not match them.
# (PostgreSQL's search is a function of migration 0010, which spells it the same way.)
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
class CategoryRule:
    """What a report needs of its category: materials, routing, time limits, merge rule."""

    code: str
    materials: list[str]
    lead: list[str]
    cooperating: list[str]
    acknowledge_minutes: int
    resolve_minutes: int
    merge_radius_m: float
    merge_window_minutes: int


@dataclass(frozen=True)
class OpenIncident:
    """An open incident a report may join, as it was when read."""

    id: str
    case_number: str
    district_code: str
    status: str
    version: int
    report_count: int
    routed: list[tuple[str, str, str]]  # (agency code, agency name, role)


class Counted(NamedTuple):
    """A write's caller looked up as the write was counted: its count this minute, and the
    caller's row (app.auth.service's `_ACTIVE_USER_QUERY` or `_LIVE_KEY_QUERY`; None if none)."""

    writes: int
    row: tuple[Any, ...] | None


class WantedCase(NamedTuple):
    """The case number a report would open an incident of `rule` under, in the district and
    year, and in the township whose agencies, with the rule's, it would be routed to (their
    names come back with the number)."""

    district_code: str
    township_code: str
    year: int
    rule: CategoryRule


@dataclass(frozen=True)
class WritingCaller:
    """The caller of the report a scene is read for, to be looked up as its write is counted:
    a user by id or an API key by its hash (`lookup`), its writes counted as `counted_as` in
    the minute starting at `window`; it may report if it is a user with one of `roles` or a
    key with `scope`, up to `allowed_writes` a minute. `alone` looks it up and counts it in a
    short write of its own, and takes the case number asked for (if any) in the same write
    if the caller may report."""

    kind: Literal["user", "api_key"]
    lookup: str
    counted_as: str
    window: datetime
    allowed_writes: int
    roles: tuple[str, ...]
    scope: str | None
    alone: Callable[[WantedCase | None], Awaitable[tuple[Counted, OpenedCase | None]]]


@dataclass(frozen=True)
class Scene:
    """What a report finds where it was seen, read before anything is written: its category
    (None if there is no such category), the village it is in (None if in none), and the
    nearest open incident of the category it may join (see `Search`)."""

    category: CategoryRule | None
    chain: Chain | None
    nearest: OpenIncident | None
    case: OpenedCase | None = None  # the new incident's number, if the store took it
    counted: Counted | None = None  # the caller, if the scene was read with one


class OpenedCase(NamedTuple):
    """A new incident's number and the names of the agencies it is routed to."""

    seq: int  # the case number's sequence in its district and year
    names: dict[str, str]  # agency name by code


class Numbering(NamedTuple):
    """What a store needs to number a new incident in the scene's round trip: the case year,
    and the report's material (a category that refuses it refuses the report)."""

    year: int
    material: str | None


@dataclass(frozen=True)
class Search:
    """The merge's search: open incidents of `category` within radius_m (on the ground) of the
    point, last observed within [seen_from, seen_until]; the nearest first."""

    category: str
    lon: float
    lat: float
    radius_m: float
    seen_from: datetime
    seen_until: datetime


def search_for(rule: CategoryRule, lon: float, lat: float, observed_at: datetime) -> Search:
    """The merge's search for a report of the category seen at the point at `observed_at`:
    within the merge radius, last observed within the merge window either side."""
    window = timedelta(minutes=rule.merge_window_minutes)
    return Search(
        rule.code, lon, lat, rule.merge_radius_m, observed_at - window, observed_at + window
    )


@dataclass(frozen=True)
class Joining:
    """A report joining an incident, planned against the incident's `version`."""

    incident_id: str
    version: int
    observed_at: datetime
    lon: float
    lat: float
    updated_at: datetime


@dataclass(frozen=True)
class Opening:
    """A report opening an incident: its row and its assignments' rows."""

    incident: dict[str, Any]
    assignments: list[dict[str, Any]]


@dataclass(frozen=True)
class Filing:
    """Everything one report writes, all of it decided before the write (see `file_report`).

    Rows are by column name, values as the models hold them. `claim` is the idempotency key's
    row, the answer included.
    """

    search: Search
    joins: Joining | None
    opens: Opening | None
    events: list[dict[str, Any]]
    report: dict[str, Any]
    outbox: list[dict[str, Any]]
    claim: dict[str, Any] | None


class Filed(enum.Enum):
    """How a filing went."""

    FILED = "filed"  # every row written
    STALE = "stale"  # nothing written: the incident it joins changed, or it would open one
    # where another has opened meanwhile; read the scene again and plan anew
    REPLAY = "replay"  # nothing written: the idempotency key is taken; answer its stored answer


class SpatialStore(Protocol):
    """Spatial questions the services ask, answered the best way each database can."""

    async def index_cells(self, session: AsyncSession, cells: Sequence[CellBounds]) -> None:
        """Bring the spatial index up to date for cells just written (inserted or updated)."""

    async def locate(self, session: AsyncSession, lon: float, lat: float) -> Chain | None:
        """The village covering the WGS-84 point (the smallest code on a border), with its
        township and district."""

    async def scene(
        self,
        conn: Pooled,
        category: str,
        lon: float,
        lat: float,
        observed_at: datetime,
        numbering: Numbering | None = None,
        caller: WritingCaller | None = None,
    ) -> Scene:
        """The scene of a report of `category` seen at the WGS-84 point at `observed_at`, read
        in one go (one round trip on PostgreSQL); the nearest open incident is that of the
        category's `Search` around the point and time.

        Given `caller`, the caller is looked up and its write counted first (`Scene.counted`),
        in the same round trip if the store can; a store may then leave the rest of the scene
        unread (None) for a caller not found, not allowed to report, or over its limit.

        Given `numbering` (and, on SQLite, a caller), a store may also take the case number of
        the incident the report would open (it is in a village, with an accepted material, and
        near no open incident) and the names of the agencies it is routed to (`Scene.case`);
        that number is burnt if the report is then planned anew or answered from its
        idempotency key. It takes none for a caller refused."""

    async def file_report(self, conn: Pooled, filing: Filing) -> Filed:
        """Write the filing in one step (one round trip on PostgreSQL) if what it was planned
        on still holds, with the writers around the same place waiting for each other: the
        incident it joins is still open at the version read, or the search of an incident it
        opens still finds none; and its idempotency key is not taken. Else write nothing."""

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
