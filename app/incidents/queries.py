"""Incident lists: filters, jurisdiction and keyset pages, all done in the database.

Every list is the incidents matching a set of SQL conditions (the caller's jurisdiction, the
cell or agency asked for, the filters), ordered on (opened_at, id) and paged with a cursor
naming the last row seen, so pages stay stable while new incidents arrive. A page is three
queries whatever its size: the incidents, their cells' names, their assignments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, literal, not_, or_, select, tuple_
from sqlalchemy.orm import defer
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.agencies.models import Agency
from app.auth.principal import Principal
from app.dbtypes import UtcDateTime
from app.grid.models import CELLS
from app.grid.schemas import CellRef, Located
from app.incidents import access
from app.incidents.access import ASSIGNMENTS, INCIDENTS
from app.incidents.models import STATUSES, WORKING_STATUSES, Incident
from app.incidents.output import incident_out
from app.incidents.schemas import AssignmentOut, IncidentOut
from app.incidents.service import ASSIGNMENT_COLUMNS, assignment_out, sorted_assignments
from app.pagination import decode_cursor, encode_cursor
from app.spatial.store import SpatialStore

_AGENCIES = Agency.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class IncidentQuery:
    """The filters of an incident list, parsed and checked."""

    statuses: tuple[str, ...] = ()
    category: str | None = None
    opened_from: datetime | None = None  # inclusive
    opened_to: datetime | None = None  # exclusive
    bbox: tuple[float, float, float, float] | None = None  # minlon, minlat, maxlon, maxlat
    near: tuple[float, float, float] | None = None  # lon, lat, radius in metres
    overdue: bool | None = None
    agency: str | None = None
    supervised: bool | None = None
    ascending: bool = False


@dataclass(frozen=True)
class Listing:
    """A list request resolved to SQL: page through it with `page` or `chunks`."""

    conditions: tuple[ColumnElement[bool], ...]
    ascending: bool
    inbox_of: str | None = None  # an agency's inbox: `overdue` counts its own steps too


@dataclass(frozen=True)
class Row:
    """One incident of a page with its cell chain and assignments."""

    incident: Incident
    located: Located
    assignments: list[AssignmentOut]


async def everywhere(
    session: AsyncSession, store: SpatialStore, principal: Principal, query: IncidentQuery
) -> Listing:
    """GET /incidents: what the caller may see."""
    jurisdiction = await access.visible(session, principal)
    return _listing(store, query, [jurisdiction])


async def in_cell(
    session: AsyncSession,
    store: SpatialStore,
    principal: Principal,
    cell_code: str,
    query: IncidentQuery,
) -> Listing:
    """GET /cells/{code}/incidents: the cell and everything under it, within the caller's reach.

    A cell outside the caller's jurisdiction is forbidden, as on every cell route
    (`access.reaches`); in one it reaches, the caller gets what it may see of the cell.
    """
    cell = await access.cell_scope(session, cell_code)
    if cell is None:
        raise errors.NotFound(f"no cell {cell_code!r}")
    conditions = [cell.condition()]
    if not access.covers(principal, cell):
        if not await access.reaches(session, principal, cell):
            raise errors.Forbidden(f"the cell {cell_code} is outside your jurisdiction")
        conditions.append(await access.visible(session, principal))
    return _listing(store, query, conditions)


async def inbox(
    session: AsyncSession,
    store: SpatialStore,
    principal: Principal,
    agency_code: str,
    query: IncidentQuery,
) -> Listing:
    """GET /agencies/{code}/incidents: assigned to the agency; for its officers, supervisors
    (within their cell) and admins."""
    if await session.get(Agency, agency_code) is None:
        raise errors.NotFound(f"no agency {agency_code!r}")
    own = principal.has_role("officer") and principal.agency_code == agency_code
    if not (own or principal.is_admin or principal.has_role("supervisor")):
        raise errors.Forbidden("an agency's inbox is for its officers and supervisors")
    conditions = [access.assigned_to(agency_code)]
    if principal.has_role("supervisor"):
        conditions.append(await access.visible(session, principal))
    listing = _listing(store, query, conditions)
    return Listing(listing.conditions, listing.ascending, inbox_of=agency_code)


def _listing(
    store: SpatialStore, query: IncidentQuery, scope: Sequence[ColumnElement[bool]]
) -> Listing:
    c = INCIDENTS.c
    conditions = list(scope)
    if query.statuses:
        conditions.append(c.status.in_(query.statuses))
    if query.category is not None:
        conditions.append(c.category == query.category)
    if query.opened_from is not None:
        conditions.append(c.opened_at >= literal(query.opened_from, UtcDateTime()))
    if query.opened_to is not None:
        conditions.append(c.opened_at < literal(query.opened_to, UtcDateTime()))
    if query.bbox is not None:
        min_lon, min_lat, max_lon, max_lat = query.bbox
        conditions.append(and_(c.lon.between(min_lon, max_lon), c.lat.between(min_lat, max_lat)))
    if query.near is not None:
        conditions.append(store.within_m(INCIDENTS, *query.near))
    if query.agency is not None:
        conditions.append(access.assigned_to(query.agency))
    if query.supervised is not None:
        level = c.supervision_level
        conditions.append(level.is_not(None) if query.supervised else level.is_(None))
    return Listing(tuple(conditions), query.ascending)


def overdue_condition(now: datetime, overdue: bool = True) -> ColumnElement[bool]:
    """Working incidents whose next step's limit has passed (the (status, due_at) index)."""
    late = and_(
        INCIDENTS.c.status.in_(WORKING_STATUSES), INCIDENTS.c.due_at < literal(now, UtcDateTime())
    )
    return late if overdue else not_(late)


def inbox_overdue_condition(
    agency_code: str, now: datetime, overdue: bool = True
) -> ColumnElement[bool]:
    """In an agency's inbox: the incident is overdue, or the agency's own acknowledgement or
    arrival is past its limit while the incident is worked (the same rule as an assignment's
    `overdue`)."""
    at = literal(now, UtcDateTime())
    a = ASSIGNMENTS.c
    own_late = exists().where(
        a.incident_id == INCIDENTS.c.id,
        a.agency_code == agency_code,
        or_(
            and_(a.acknowledged_at.is_(None), a.acknowledge_due_at < at),
            and_(a.arrived_at.is_(None), a.arrive_due_at < at),
        ),
    )
    late = or_(overdue_condition(now), and_(INCIDENTS.c.status.in_(WORKING_STATUSES), own_late))
    return late if overdue else not_(late)


def check_statuses(statuses: Sequence[str]) -> tuple[str, ...]:
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        msg = f"unknown status {unknown[0]!r}; one of {', '.join(STATUSES)}"
        raise errors.ValidationFailed(msg, errors=[{"loc": ["query", "status"], "msg": msg}])
    return tuple(dict.fromkeys(statuses))


async def page(
    session: AsyncSession,
    listing: Listing,
    query: IncidentQuery,
    limit: int,
    cursor: str | None,
    now: datetime,
) -> tuple[list[IncidentOut], str | None]:
    """One page of the list as API items, and the cursor of the next (None at the end)."""
    after = None if cursor is None else _position(cursor)
    rows = await _rows(session, listing, query, now, limit + 1, after)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1].incident
        next_cursor = encode_cursor(last.opened_at.isoformat(), last.id)
    return [incident_out(r.incident, r.located, r.assignments, now) for r in rows], next_cursor


async def chunks(
    session: AsyncSession, listing: Listing, query: IncidentQuery, now: datetime, size: int
) -> AsyncIterator[list[Row]]:
    """The whole list, `size` rows at a time, never holding more than one chunk."""
    after: tuple[datetime, str] | None = None
    while True:
        rows = await _rows(session, listing, query, now, size, after)
        if not rows:
            return
        yield rows
        last = rows[-1].incident
        after = (last.opened_at, last.id)
        session.expunge_all()
        if len(rows) < size:
            return


def _position(cursor: str) -> tuple[datetime, str]:
    opened, after_id = decode_cursor(cursor, 2)
    try:
        at = datetime.fromisoformat(str(opened))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None or not isinstance(after_id, str):
        msg = "cursor is not one this service issued"
        raise errors.ValidationFailed(msg, errors=[{"loc": ["query", "cursor"], "msg": msg}])
    return at, after_id


async def _rows(
    session: AsyncSession,
    listing: Listing,
    query: IncidentQuery,
    now: datetime,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[Row]:
    c = INCIDENTS.c
    key = tuple_(c.opened_at, c.id)
    conditions = list(listing.conditions)
    if query.overdue is not None and listing.inbox_of is not None:
        conditions.append(inbox_overdue_condition(listing.inbox_of, now, query.overdue))
    elif query.overdue is not None:
        conditions.append(overdue_condition(now, query.overdue))
    if after is not None:
        position = tuple_(literal(after[0], UtcDateTime()), literal(after[1]))
        conditions.append(key > position if listing.ascending else key < position)
    order = (c.opened_at, c.id) if listing.ascending else (c.opened_at.desc(), c.id.desc())
    statement = (
        sm_select(Incident)
        .options(defer(Incident.location))
        .where(*conditions)
        .order_by(*order)
        .limit(limit)
    )
    incidents = list(await session.exec(statement))
    if not incidents:
        return []
    chains = await _chains(session, {i.village_code for i in incidents})
    assigned = await _assignments(session, [i.id for i in incidents])
    return [Row(i, chains[i.village_code], assigned.get(i.id, [])) for i in incidents]


async def _chains(session: AsyncSession, village_codes: set[str]) -> dict[str, Located]:
    village, township, district = CELLS.alias("v"), CELLS.alias("t"), CELLS.alias("d")
    query = (
        select(village.c.code, village.c.name, township.c.code, township.c.name)
        .add_columns(district.c.code, district.c.name)
        .select_from(
            village.join(township, township.c.code == village.c.parent_code).join(
                district, district.c.code == township.c.parent_code
            )
        )
        .where(village.c.code.in_(sorted(village_codes)))
    )
    conn = await session.connection()
    return {
        row[0]: Located(
            village=CellRef(code=row[0], name=row[1]),
            township=CellRef(code=row[2], name=row[3]),
            district=CellRef(code=row[4], name=row[5]),
        )
        for row in await conn.execute(query)
    }


async def _assignments(
    session: AsyncSession, incident_ids: Sequence[str]
) -> dict[str, list[AssignmentOut]]:
    query = (
        select(ASSIGNMENTS.c.incident_id, *ASSIGNMENT_COLUMNS)
        .join(_AGENCIES, _AGENCIES.c.code == ASSIGNMENTS.c.agency_code)
        .where(ASSIGNMENTS.c.incident_id.in_(incident_ids))
    )
    conn = await session.connection()
    found: dict[str, list[AssignmentOut]] = defaultdict(list)
    for row in await conn.execute(query):
        found[row.incident_id].append(assignment_out(row))
    return {key: sorted_assignments(items) for key, items in found.items()}
