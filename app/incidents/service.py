"""Incident rules: merging reports into incidents, routing, case numbers, reading back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import shapely
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.agencies.models import Agency
from app.auth.principal import Principal
from app.categories.models import Category
from app.dbtypes import new_id
from app.grid import service as grid_service
from app.grid.schemas import Located
from app.incidents import access
from app.incidents.models import (
    TERMINAL_STATUSES,
    Assignment,
    CaseCounter,
    Incident,
    IncidentEvent,
)
from app.incidents.output import incident_out
from app.incidents.schemas import (
    Actor,
    AgencyRef,
    AssignmentOut,
    IncidentDetail,
    IncidentReport,
    Point,
    TimelineEntry,
)
from app.outbox import service as outbox
from app.reports.models import Report
from app.spatial.store import SpatialStore

# Case numbers count per calendar year where the districts are: China, UTC+8, no DST.
CASE_YEAR_TZ = timezone(timedelta(hours=8))
_ROLE_ORDER = {"responsible": 0, "lead": 1, "cooperating": 2}
_COUNTERS = CaseCounter.__table__  # type: ignore[attr-defined]
_ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
_AGENCIES = Agency.__table__  # type: ignore[attr-defined]


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
    incident: Incident
    is_new: bool
    assignments: list[AssignmentOut]


async def take_report(
    session: AsyncSession,
    store: SpatialStore,
    category: Category,
    sighting: Sighting,
    actor: Principal,
    now: datetime,
) -> Routing:
    """Join the nearest open incident seen recently nearby, or open and route a new one.

    Writers near the same place are serialised first (an advisory lock per area on
    PostgreSQL; SQLite serialises all writers), so two phones reporting one fire at once
    make one incident.
    """
    radius = category.merge_radius_m
    window = timedelta(minutes=category.merge_window_minutes)
    await store.lock_area(session, f"incident:{category.code}", sighting.lon, sighting.lat, radius)
    nearby = await store.nearby_open_incidents(
        session,
        category.code,
        sighting.lon,
        sighting.lat,
        radius,
        sighting.observed_at - window,
        sighting.observed_at + window,
    )
    for incident_id, _distance in nearby:
        incident = await _locked(session, incident_id)
        if incident is not None and incident.status not in TERMINAL_STATUSES:
            await _merge(session, incident, sighting, actor, now)
            return Routing(incident, False, await assignments_of(session, incident.id))
    return await _open(session, category, sighting, actor, now)


async def _locked(session: AsyncSession, incident_id: str) -> Incident | None:
    query = (
        sm_select(Incident)
        .where(Incident.id == incident_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.exec(query)).first()


async def _merge(
    session: AsyncSession, incident: Incident, sighting: Sighting, actor: Principal, now: datetime
) -> None:
    incident.report_count += 1
    incident.version += 1
    incident.updated_at = now
    if sighting.observed_at >= incident.last_observed_at:
        # The incident is where it was last seen: a fire moves with the wind.
        incident.last_observed_at = sighting.observed_at
        incident.lon, incident.lat = sighting.lon, sighting.lat
        incident.location = shapely.Point(sighting.lon, sighting.lat)
    session.add(incident)
    add_event(session, incident, actor, now, "report_added", note=f"report {sighting.report_id}")
    await session.flush()
    payload = {
        "id": incident.id,
        "case_number": incident.case_number,
        "status": incident.status,
        "version": incident.version,
        "report_count": incident.report_count,
        "change": "report_added",
        "report_id": sighting.report_id,
    }
    await outbox.emit(
        session,
        "incident.updated",
        payload,
        now,
        incident_id=incident.id,
        district_code=incident.district_code,
    )


async def _open(
    session: AsyncSession,
    category: Category,
    sighting: Sighting,
    actor: Principal,
    now: datetime,
) -> Routing:
    located = sighting.located
    district = located.district.code
    seq = await next_case_sequence(session, district, now.astimezone(CASE_YEAR_TZ).year)
    incident = Incident(
        id=new_id(),
        case_number=f"{district}-{now.astimezone(CASE_YEAR_TZ).year}-{seq:06d}",
        district_code=district,
        category=category.code,
        status="dispatched",
        version=1,
        lon=sighting.lon,
        lat=sighting.lat,
        location=shapely.Point(sighting.lon, sighting.lat),
        village_code=located.village.code,
        township_code=located.township.code,
        opened_at=now,
        updated_at=now,
        last_observed_at=sighting.observed_at,
        due_at=now + timedelta(minutes=category.acknowledge_minutes),
        resolve_due_at=now + timedelta(minutes=category.resolve_minutes),
        report_count=1,
    )
    session.add(incident)
    await session.flush()
    assignments = await assign(session, incident, category, now)
    add_event(
        session, incident, actor, now, "opened", None, "dispatched", f"report {sighting.report_id}"
    )
    routes = "; ".join(f"{a.role}: {a.agency.code}" for a in assignments)
    add_event(session, incident, actor, now, "routed", note=routes)
    await session.flush()
    item = incident_out(incident, located, assignments, now)
    await outbox.emit(
        session,
        "incident.created",
        item.model_dump(mode="json"),
        now,
        incident_id=incident.id,
        district_code=district,
    )
    return Routing(incident, True, assignments)


async def next_case_sequence(session: AsyncSession, district_code: str, year: int) -> int:
    """The next case number's sequence: unique, gaps allowed (a rolled-back case skips one)."""
    conn = await session.connection()
    bump = (
        update(_COUNTERS)
        .where(_COUNTERS.c.district_code == district_code, _COUNTERS.c.year == year)
        .values(last_seq=_COUNTERS.c.last_seq + 1)
        .returning(_COUNTERS.c.last_seq)
    )
    seq = (await conn.execute(bump)).scalar()
    if seq is not None:
        return int(seq)
    try:
        async with session.begin_nested():
            # Ask the session for the connection again: that is what emits the SAVEPOINT.
            nested = await session.connection()
            await nested.execute(
                insert(_COUNTERS).values(district_code=district_code, year=year, last_seq=1)
            )
        return 1
    except IntegrityError:  # another transaction made the district's counter meanwhile
        return int((await conn.execute(bump)).scalar_one())


async def assign(
    session: AsyncSession, incident: Incident, category: Category, now: datetime
) -> list[AssignmentOut]:
    """The township of the village is responsible; the category names lead and cooperating."""
    wanted: dict[str, str] = {incident.township_code: "responsible"}
    for code in category.lead:
        wanted.setdefault(code, "lead")
    for code in category.cooperating:
        wanted.setdefault(code, "cooperating")
    names = await _agency_names(session, list(wanted))
    rows: list[dict[str, Any]] = [
        {
            "incident_id": incident.id,
            "district_code": incident.district_code,
            "agency_code": code,
            "role": role,
            "assigned_at": now,
        }
        for code, role in wanted.items()
        if code in names  # a deleted bureau drops out of the rule rather than fail reports
    ]
    conn = await session.connection()
    await conn.execute(insert(_ASSIGNMENTS), rows)
    return sorted_assignments(
        AssignmentOut(
            agency=AgencyRef(code=row["agency_code"], name=names[row["agency_code"]]),
            role=row["role"],
            acknowledged_at=None,
        )
        for row in rows
    )


async def _agency_names(session: AsyncSession, codes: Sequence[str]) -> dict[str, str]:
    conn = await session.connection()
    rows = await conn.execute(
        select(_AGENCIES.c.code, _AGENCIES.c.name).where(_AGENCIES.c.code.in_(codes))
    )
    return {str(code): str(name) for code, name in rows}


def sorted_assignments(items: Iterable[AssignmentOut]) -> list[AssignmentOut]:
    return sorted(items, key=lambda a: (_ROLE_ORDER.get(a.role, 9), a.agency.code))


async def assignments_of(session: AsyncSession, incident_id: str) -> list[AssignmentOut]:
    conn = await session.connection()
    rows = await conn.execute(
        select(
            _ASSIGNMENTS.c.agency_code,
            _AGENCIES.c.name,
            _ASSIGNMENTS.c.role,
            _ASSIGNMENTS.c.acknowledged_at,
        )
        .join(_AGENCIES, _AGENCIES.c.code == _ASSIGNMENTS.c.agency_code)
        .where(_ASSIGNMENTS.c.incident_id == incident_id)
    )
    return sorted_assignments(
        [
            AssignmentOut(agency=AgencyRef(code=code, name=name), role=role, acknowledged_at=ack)
            for code, name, role, ack in rows
        ]
    )


def add_event(
    session: AsyncSession,
    incident: Incident,
    actor: Principal | None,
    now: datetime,
    action: str,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
) -> None:
    session.add(
        IncidentEvent(
            incident_id=incident.id,
            district_code=incident.district_code,
            at=now,
            actor_id=actor.id if actor else None,
            actor_name=actor.name if actor else None,
            action=action,
            from_status=from_status,
            to_status=to_status,
            note=note,
        )
    )


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
