"""Report rules: accepting a report once, checking it, locating it, merging it into an incident,
and reading it back.

`submit_report` reads top to bottom as the rules go: the answer under an idempotency key given
again; the report checked, located and searched for the incident it joins; the incident joined
or opened, numbered and routed (app/incidents/service.py); the report, its events and its key
written in one unit of work. Its caller was admitted before (app/deps.py: the write counted,
then 429, 401 and 403 before the body is looked at).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import shapely
from sqlalchemy import insert
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.auth.principal import Permit, Principal
from app.categories import service as category_service
from app.categories.service import CategoryRule
from app.db import Database
from app.dbtypes import Columns, new_id
from app.grid import service as grid_service
from app.grid.schemas import Located
from app.idempotency import service as idempotency
from app.incidents import access
from app.incidents import service as incident_service
from app.incidents.models import Incident
from app.incidents.schemas import Actor, IncidentRef, Routed
from app.media import service as media_service
from app.outbox import service as outbox
from app.pagination import decode_cursor, encode_cursor
from app.reports.models import Report
from app.reports.schemas import LocationOut, ReportIn, ReportOut, SubmittedLocation
from app.spatial.store import Search, SpatialStore

MAX_FUTURE = timedelta(minutes=5)
MAX_AGE = timedelta(days=30)
CREATED = 201
# Who may report: grid workers, and API keys for it (third-party apps).
REPORTERS = Permit(("grid_worker",), scope="reports:write")
_REPORTS = Report.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission, and whether it is the replay of an earlier one."""

    body: dict[str, Any]
    replayed: bool


def canonical(data: ReportIn) -> dict[str, Any]:
    """The request as compared between retries: field order, defaults and offsets aside."""
    body = data.model_dump(mode="json")
    body["observed_at"] = data.observed_at.astimezone(UTC).isoformat()
    return body


async def submit_report(
    db: Database,
    spatial: SpatialStore,
    reporter: Principal,
    data: ReportIn,
    idempotency_key: str | None,
    now: datetime,
) -> Submitted:
    """Store a report, merge it into an incident and route it; once per idempotency key."""
    key = idempotency_key or data.client_report_id
    body_hash = idempotency.request_hash(canonical(data)) if key is not None else ""

    lon, lat = grid_service.to_wgs84(data.location.lon, data.location.lat, data.location.crs)
    observed_at = data.observed_at.astimezone(UTC)
    try:
        async with db.write() as session:
            # A retry of a request answered before gets its first answer again, even if the
            # grid, the category or the clock would now refuse it.
            if key is not None:
                stored = await idempotency.stored(session, reporter, key)
                if stored is not None:
                    return Submitted(idempotency.answer(stored, body_hash), replayed=True)

            category = _accepted(await category_service.rule_of(session, data.category), data, now)
            chain = await spatial.locate(session, lon, lat)
            if chain is None:
                where = f"({data.location.lon:.6f}, {data.location.lat:.6f})"
                raise errors.OutsideGrid(f"{where} is in no village of the grid")
            sighting = incident_service.Sighting(
                new_id(), lon, lat, observed_at, grid_service.located(chain)
            )

            # The merge: writers near the point wait for each other from here until this unit
            # commits, so two reports of one fire never open two incidents.
            search = merge_search(category, lon, lat, observed_at)
            await spatial.lock_area(session, search)
            nearest = await spatial.nearest_open_incident(session, search)
            if nearest is not None:
                routing = await incident_service.join(session, nearest, sighting, reporter, now)
            else:
                routing = await incident_service.open_incident(
                    db, session, category, sighting, reporter, now
                )

            report = _report_row(data, sighting, routing.incident, reporter, now)
            body = report_out(
                Columns(report), sighting.located, routing.incident, routing.routed, []
            ).model_dump(mode="json")
            await (await session.connection()).execute(insert(_REPORTS), [report])
            created = outbox.Event(
                "report.created", body, routing.incident.id, sighting.located.district.code
            )
            await outbox.append(session, [*routing.outbox, created], now)
            if key is not None:
                await idempotency.claim(session, reporter, key, body_hash, CREATED, body, now)
    except idempotency.KeyTaken:
        # A retry under the same key was filed first, while this one worked: this one wrote
        # nothing (its unit rolled back), and answers the first answer.
        assert key is not None
        async with db.read() as session:
            stored = await idempotency.stored(session, reporter, key)
        assert stored is not None  # the key was taken by a committed request
        return Submitted(idempotency.answer(stored, body_hash), replayed=True)
    return Submitted(body, replayed=False)


def merge_search(rule: CategoryRule, lon: float, lat: float, observed_at: datetime) -> Search:
    """Where and when a report's incident may be: open incidents of its category within the
    merge radius, last observed within the merge window either side of the report."""
    window = timedelta(minutes=rule.merge_window_minutes)
    return Search(
        rule.code, lon, lat, rule.merge_radius_m, observed_at - window, observed_at + window
    )


def _accepted(category: CategoryRule | None, data: ReportIn, now: datetime) -> CategoryRule:
    """The report's category, if the report is one it accepts, seen at a believable time."""
    if category is None:
        raise _invalid("category", f"unknown category {data.category!r}")
    if data.material is not None and data.material not in category.materials:
        allowed = ", ".join(category.materials) or "none"
        raise _invalid(
            "material", f"material {data.material!r} is not one of {category.code}'s ({allowed})"
        )
    if data.observed_at > now + MAX_FUTURE:
        raise _invalid("observed_at", "observed_at is more than 5 minutes in the future")
    if data.observed_at < now - MAX_AGE:
        raise _invalid("observed_at", "observed_at is more than 30 days ago")
    return category


def _report_row(
    data: ReportIn,
    sighting: incident_service.Sighting,
    incident: IncidentRef,
    reporter: Principal,
    now: datetime,
) -> dict[str, Any]:
    """The report's row: every column, as the model holds it."""
    located, submitted = sighting.located, data.location
    return {
        "id": sighting.report_id,
        "district_code": located.district.code,
        "category": data.category,
        "material": data.material,
        "lon": sighting.lon,
        "lat": sighting.lat,
        "location": shapely.Point(sighting.lon, sighting.lat),
        "submitted_lon": submitted.lon,
        "submitted_lat": submitted.lat,
        "submitted_crs": submitted.crs,
        "accuracy_m": submitted.accuracy_m,
        "observed_at": sighting.observed_at,
        "received_at": now,
        "description": data.description,
        "reporter_kind": reporter.kind,
        "reporter_id": reporter.id,
        "reporter_name": reporter.name,
        "reporter_cell_code": reporter.cell_code,
        "village_code": located.village.code,
        "township_code": located.township.code,
        "incident_id": incident.id,
        "opened_incident": incident.is_new,
        "client_report_id": data.client_report_id,
    }


def _invalid(field: str, msg: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(msg, errors=[{"loc": ["body", field], "msg": msg}])


class ReportColumns(Protocol):
    """What an answer reads of a report: a stored `Report`, or the row of one being filed."""

    id: str
    client_report_id: str | None
    category: str
    material: str | None
    lon: float
    lat: float
    accuracy_m: float | None
    submitted_lon: float
    submitted_lat: float
    submitted_crs: str
    observed_at: datetime
    received_at: datetime
    description: str | None
    reporter_id: str
    reporter_name: str


def report_out(
    report: ReportColumns,
    located: Located,
    incident: IncidentRef,
    routed: Sequence[Routed],
    photos: list[Any],
) -> ReportOut:
    return ReportOut(
        id=report.id,
        client_report_id=report.client_report_id,
        category=report.category,
        material=report.material,
        location=LocationOut(lon=report.lon, lat=report.lat, accuracy_m=report.accuracy_m),
        submitted_location=SubmittedLocation(
            lon=report.submitted_lon, lat=report.submitted_lat, crs=report.submitted_crs
        ),
        observed_at=report.observed_at,
        received_at=report.received_at,
        description=report.description,
        reporter=Actor(id=report.reporter_id, name=report.reporter_name),
        cell=located,
        incident=incident,
        routed_to=list(routed),  # serialized as Routed, whatever the subclass
        photos=photos,
    )


async def visible_report(session: AsyncSession, principal: Principal, report_id: str) -> Report:
    """The report, if the caller may see it; else not found (its existence is not revealed)."""
    report = await session.get(Report, report_id)
    if report is None:
        raise errors.NotFound(f"no report {report_id!r}")
    if access.is_reporter(principal, report) or principal.is_admin:
        return report
    assignments = await incident_service.assignments_of(session, report.incident_id)
    if not access.may_see_report(principal, report, {a.agency.code for a in assignments}):
        raise errors.NotFound(f"no report {report_id!r}")
    return report


async def get_report(session: AsyncSession, principal: Principal, report_id: str) -> ReportOut:
    report = await visible_report(session, principal, report_id)
    return await _full(session, report)


async def _full(session: AsyncSession, report: Report) -> ReportOut:
    incident = await session.get(Incident, report.incident_id)
    assert incident is not None  # reports.incident_id is a foreign key
    return report_out(
        report,
        await grid_service.chain(session, report.village_code),
        IncidentRef(
            id=incident.id,
            case_number=incident.case_number,
            status=incident.status,
            is_new=report.opened_incident,
        ),
        await incident_service.assignments_of(session, incident.id),
        await media_service.photos_of(session, report.id),
    )


async def list_mine(
    session: AsyncSession, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[ReportOut], str | None]:
    """The caller's own reports, newest first."""
    query = (
        select(Report)
        .where(Report.reporter_kind == principal.kind, Report.reporter_id == principal.id)
        .order_by(col(Report.received_at).desc(), col(Report.id).desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        received, after_id = decode_cursor(cursor, 2)
        try:
            at = datetime.fromisoformat(str(received))
            if at.tzinfo is None:
                raise ValueError("naive cursor time")
        except ValueError as exc:
            raise errors.ValidationFailed(
                "cursor is not one this service issued",
                errors=[{"loc": ["query", "cursor"], "msg": "bad cursor"}],
            ) from exc
        query = query.where(
            or_(
                col(Report.received_at) < at,
                (col(Report.received_at) == at) & (col(Report.id) < str(after_id)),
            )
        )
    rows = list(await session.exec(query))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last.received_at.isoformat(), last.id)
    return [await _full(session, row) for row in rows], next_cursor
