"""Incident rules: merging reports into incidents, routing, case numbers, reading back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, TypeVar

import shapely
from sqlalchemy import bindparam, case, insert, select, text, update
from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.agencies.models import Agency
from app.auth.principal import Principal
from app.categories.models import Category
from app.categories.service import CategoryRule
from app.db import Database
from app.dbtypes import Columns, UtcDateTime, new_id
from app.grid import service as grid_service
from app.grid.schemas import Located
from app.incidents import access
from app.incidents.models import Assignment, Incident, IncidentEvent
from app.incidents.output import incident_out
from app.incidents.schemas import (
    Actor,
    AgencyRef,
    AssignmentOut,
    IncidentDetail,
    IncidentRef,
    IncidentReport,
    Point,
    Routed,
    TimelineEntry,
)
from app.outbox import service as outbox
from app.reports.models import Report
from app.spatial.types import GeometryType

# Case numbers count per calendar year where the districts are: China, UTC+8, no DST.
CASE_YEAR_TZ = timezone(timedelta(hours=8))


def case_year(now: datetime) -> int:
    """The year of a case number: China Standard Time's."""
    return now.astimezone(CASE_YEAR_TZ).year


_ROLE_ORDER = {"responsible": 0, "lead": 1, "cooperating": 2}
_INCIDENTS = Incident.__table__  # type: ignore[attr-defined]
_INCIDENT_COLUMNS = tuple(c.name for c in _INCIDENTS.c)
_ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
_AGENCIES = Agency.__table__  # type: ignore[attr-defined]
_EVENTS = IncidentEvent.__table__  # type: ignore[attr-defined]
_POINT = GeometryType("POINT")


_R = TypeVar("_R", bound=Routed)


class _IncidentKeys(Protocol):
    """An incident stored or being opened: what its rows refer to it by."""

    @property
    def id(self) -> str: ...
    @property
    def district_code(self) -> str: ...


@dataclass(frozen=True)
class Sighting:
    """What the merge needs to know of a new report."""

    report_id: str
    lon: float
    lat: float
    observed_at: datetime
    located: Located


@dataclass(frozen=True)
class Routing:
    """Where a report went: its incident as it now is, the agencies it is routed to, and the
    events to tell the world (appended with the report's own)."""

    incident: IncidentRef
    routed: Sequence[Routed]
    outbox: list[outbox.Event]


# One more report for the incident: it is where the latest observation saw the fire (a fire
# moves with the wind). Every SET reads the row as it was; RETURNING gives it as it now is.
_SEEN_LATER = _INCIDENTS.c.last_observed_at <= bindparam("seen_at", type_=UtcDateTime())
_ADD_REPORT = (
    update(_INCIDENTS)
    .where(_INCIDENTS.c.id == bindparam("incident_id"))
    .values(
        version=_INCIDENTS.c.version + 1,
        report_count=_INCIDENTS.c.report_count + 1,
        updated_at=bindparam("now", type_=UtcDateTime()),
        lon=case((_SEEN_LATER, bindparam("seen_lon")), else_=_INCIDENTS.c.lon),
        lat=case((_SEEN_LATER, bindparam("seen_lat")), else_=_INCIDENTS.c.lat),
        location=case(
            (_SEEN_LATER, bindparam("seen_location", type_=_POINT)),
            else_=_INCIDENTS.c.location,
        ),
        last_observed_at=case(
            (_SEEN_LATER, bindparam("seen_at", type_=UtcDateTime())),
            else_=_INCIDENTS.c.last_observed_at,
        ),
    )
    .returning(
        _INCIDENTS.c.id,
        _INCIDENTS.c.case_number,
        _INCIDENTS.c.district_code,
        _INCIDENTS.c.status,
        _INCIDENTS.c.version,
        _INCIDENTS.c.report_count,
    )
)


async def join(
    session: AsyncSession, incident_id: str, sighting: Sighting, actor: Principal, now: datetime
) -> Routing:
    """The report joins the open incident (found under the report's area lock)."""
    conn = await session.connection()
    params = {
        "incident_id": incident_id,
        "now": now,
        "seen_at": sighting.observed_at,
        "seen_lon": sighting.lon,
        "seen_lat": sighting.lat,
        "seen_location": shapely.Point(sighting.lon, sighting.lat),
    }
    incident = (await conn.execute(_ADD_REPORT, params)).one()
    note = f"report {sighting.report_id}"
    await conn.execute(
        insert(_EVENTS), [event_row(incident, actor, now, "report_added", note=note)]
    )
    updated = {
        "id": incident.id,
        "case_number": incident.case_number,
        "status": incident.status,
        "version": incident.version,
        "report_count": incident.report_count,
        "change": "report_added",
        "report_id": sighting.report_id,
    }
    return Routing(
        IncidentRef(
            id=incident.id, case_number=incident.case_number, status=incident.status, is_new=False
        ),
        await assignments_of(session, incident.id),
        [outbox.Event("incident.updated", updated, incident.id, incident.district_code)],
    )


async def open_incident(
    db: Database,
    session: AsyncSession,
    category: CategoryRule,
    sighting: Sighting,
    actor: Principal,
    now: datetime,
) -> Routing:
    """A new incident, numbered and routed: the township of the village is responsible, the
    category names the others."""
    located = sighting.located
    district = located.district.code
    year = case_year(now)
    seq = await next_case_seq(db, session, district, year)
    row: dict[str, Any] = {
        "id": new_id(),
        "case_number": f"{district}-{year}-{seq:06d}",
        "district_code": district,
        "category": category.code,
        "status": "dispatched",
        "version": 1,
        "lon": sighting.lon,
        "lat": sighting.lat,
        "location": shapely.Point(sighting.lon, sighting.lat),
        "village_code": located.village.code,
        "township_code": located.township.code,
        "opened_at": now,
        "updated_at": now,
        "last_observed_at": sighting.observed_at,
        "due_at": now + timedelta(minutes=category.acknowledge_minutes),
        "resolve_due_at": now + timedelta(minutes=category.resolve_minutes),
        "report_count": 1,
        "rework_count": 0,
    }
    conn = await session.connection()
    await conn.execute(insert(_INCIDENTS), [row])
    incident = Columns(dict.fromkeys(_INCIDENT_COLUMNS) | row)  # read as the model would be
    wanted = routes_of(located.township.code, category)
    assignments = await _assign(session, incident, wanted, step_limits(category, now), now)
    note = f"report {sighting.report_id}"
    routes = "; ".join(f"{a.role}: {a.agency.code}" for a in assignments)
    events = [
        event_row(incident, actor, now, "opened", None, "dispatched", note),
        event_row(incident, actor, now, "routed", note=routes),
    ]
    await conn.execute(insert(_EVENTS), events)
    item = incident_out(incident, located, assignments, now).model_dump(mode="json")
    return Routing(
        IncidentRef(
            id=incident.id, case_number=incident.case_number, status="dispatched", is_new=True
        ),
        assignments,
        [outbox.Event("incident.created", item, incident.id, district)],
    )


# Insert or increment, one statement on both databases (SQLite >= 3.35, PostgreSQL >= 9.5).
_NEXT_CASE_SEQ = text(
    "INSERT INTO case_counters (district_code, year, last_seq) VALUES (:district, :year, 1) "
    "ON CONFLICT (district_code, year) DO UPDATE SET last_seq = case_counters.last_seq + 1 "
    "RETURNING last_seq"
)


async def next_case_seq(db: Database, session: AsyncSession, district_code: str, year: int) -> int:
    """The next case number's sequence in the district and year: unique, gaps allowed (a
    report that fails after taking one skips it). Counted apart from the unit of work
    (`Database.counters`), so that the district's counter is not held locked while the
    report is filed."""
    async with db.counters(within=session) as conn:
        found = await conn.execute(_NEXT_CASE_SEQ, {"district": district_code, "year": year})
        return int(found.scalar_one())


class _StepMinutes(Protocol):
    """A category's limits of the first two steps, in minutes from the start."""

    @property
    def acknowledge_minutes(self) -> int: ...
    @property
    def arrive_minutes(self) -> int: ...


@dataclass(frozen=True)
class StepLimits:
    """When each assigned agency must have acknowledged and arrived."""

    acknowledge_due_at: datetime
    arrive_due_at: datetime


def step_limits(category: _StepMinutes, start: datetime) -> StepLimits:
    """The limits of an agency's own steps, counted from `start` (opening or reassignment)."""
    return StepLimits(
        start + timedelta(minutes=category.acknowledge_minutes),
        start + timedelta(minutes=category.arrive_minutes),
    )


async def assign(
    session: AsyncSession, incident: Incident, category: Category, now: datetime
) -> list[AssignmentOut]:
    """Route the incident (see `routes_of`) and store the assignments, limits from now."""
    wanted = routes_of(incident.township_code, category)
    return await _assign(session, incident, wanted, step_limits(category, now), now)


async def _assign(
    session: AsyncSession,
    incident: _IncidentKeys,
    wanted: dict[str, str],
    limits: StepLimits,
    now: datetime,
) -> list[AssignmentOut]:
    names = await _agency_names(session, list(wanted))
    rows = _assignment_rows(incident, wanted, names, limits, now)
    if rows:
        conn = await session.connection()
        await conn.execute(insert(_ASSIGNMENTS), rows)
    return _assignments_out(rows, names)


def routes_of(township_code: str, category: Category | CategoryRule) -> dict[str, str]:
    """The township of the village is responsible; the category names lead and cooperating.
    Roles by agency code."""
    wanted: dict[str, str] = {township_code: "responsible"}
    for code in category.lead:
        wanted.setdefault(code, "lead")
    for code in category.cooperating:
        wanted.setdefault(code, "cooperating")
    return wanted


def _assignment_rows(
    incident: _IncidentKeys,
    wanted: dict[str, str],
    names: dict[str, str],
    limits: StepLimits,
    now: datetime,
) -> list[dict[str, Any]]:
    """The assignments to insert: an agency that no longer exists drops out of the rule
    rather than fail reports."""
    return [
        {
            "incident_id": incident.id,
            "district_code": incident.district_code,
            "agency_code": code,
            "role": role,
            "assigned_at": now,
            "acknowledged_at": None,
            "arrived_at": None,
            "acknowledge_due_at": limits.acknowledge_due_at,
            "arrive_due_at": limits.arrive_due_at,
        }
        for code, role in wanted.items()
        if code in names
    ]


def _assignments_out(rows: list[dict[str, Any]], names: dict[str, str]) -> list[AssignmentOut]:
    return sorted_assignments(
        AssignmentOut(
            agency=AgencyRef(code=row["agency_code"], name=names[row["agency_code"]]),
            role=row["role"],
            acknowledged_at=None,
            arrived_at=None,
            acknowledge_due_at=row["acknowledge_due_at"],
            arrive_due_at=row["arrive_due_at"],
        )
        for row in rows
    )


async def _agency_names(session: AsyncSession, codes: Sequence[str]) -> dict[str, str]:
    conn = await session.connection()
    rows = await conn.execute(_AGENCY_NAMES, {"codes": list(codes)})
    return {str(code): str(name) for code, name in rows}


_AGENCY_NAMES = select(_AGENCIES.c.code, _AGENCIES.c.name).where(
    _AGENCIES.c.code.in_(bindparam("codes", expanding=True))
)
# What an answer shows of an assignment (also read by app/incidents/queries.py for a page).
ASSIGNMENT_COLUMNS = (
    _ASSIGNMENTS.c.agency_code,
    _AGENCIES.c.name.label("agency_name"),
    _ASSIGNMENTS.c.role,
    _ASSIGNMENTS.c.acknowledged_at,
    _ASSIGNMENTS.c.arrived_at,
    _ASSIGNMENTS.c.acknowledge_due_at,
    _ASSIGNMENTS.c.arrive_due_at,
)
_ASSIGNMENTS_OF = (
    select(*ASSIGNMENT_COLUMNS)
    .join(_AGENCIES, _AGENCIES.c.code == _ASSIGNMENTS.c.agency_code)
    .where(_ASSIGNMENTS.c.incident_id == bindparam("incident_id"))
)


def sorted_assignments(items: Iterable[_R]) -> list[_R]:
    return sorted(items, key=lambda a: (_ROLE_ORDER.get(a.role, 9), a.agency.code))


async def assignments_of(session: AsyncSession, incident_id: str) -> list[AssignmentOut]:
    conn = await session.connection()
    rows = await conn.execute(_ASSIGNMENTS_OF, {"incident_id": incident_id})
    return sorted_assignments([assignment_out(row) for row in rows])


def assignment_out(row: Any) -> AssignmentOut:
    """An assignment read with ASSIGNMENT_COLUMNS; `overdue` and `late` are set by
    app/incidents/output.py, which knows the incident's state and the time."""
    return AssignmentOut(
        agency=AgencyRef(code=row.agency_code, name=row.agency_name),
        role=row.role,
        acknowledged_at=row.acknowledged_at,
        arrived_at=row.arrived_at,
        acknowledge_due_at=row.acknowledge_due_at,
        arrive_due_at=row.arrive_due_at,
    )


def event_row(
    incident: _IncidentKeys,
    actor: Principal | None,
    now: datetime,
    action: str,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """A timeline entry of the incident, as a row of incident_events."""
    return {
        "incident_id": incident.id,
        "district_code": incident.district_code,
        "at": now,
        "actor_id": actor.id if actor else None,
        "actor_name": actor.name if actor else None,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "note": note,
    }


async def get_incident(
    session: AsyncSession, principal: Principal, incident_id: str, now: datetime
) -> IncidentDetail:
    """One incident with its reports and timeline, if the caller may see it."""
    incident = await session.get(Incident, incident_id)
    assignments = [] if incident is None else await assignments_of(session, incident_id)
    agencies = {a.agency.code for a in assignments}
    if incident is None or not await access.may_see_incident(
        session, principal, incident, agencies
    ):
        raise errors.NotFound(f"no incident {incident_id!r}")
    located = await grid_service.chain(session, incident.village_code)
    reports = await session.exec(
        sm_select(Report)
        .where(Report.incident_id == incident_id)
        .order_by(col(Report.observed_at), col(Report.id))
    )
    events = await session.exec(
        sm_select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(col(IncidentEvent.at), col(IncidentEvent.id))
    )
    return IncidentDetail(
        **incident_out(incident, located, assignments, now).model_dump(),
        reports=[
            IncidentReport(
                id=r.id,
                material=r.material,
                location=Point(lon=r.lon, lat=r.lat),
                observed_at=r.observed_at,
                received_at=r.received_at,
                reporter=Actor(id=r.reporter_id, name=r.reporter_name),
                description=r.description,
            )
            for r in reports
        ],
        timeline=[
            TimelineEntry(
                at=e.at,
                actor=Actor(id=e.actor_id, name=e.actor_name),
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                note=e.note,
            )
            for e in events
        ],
    )
