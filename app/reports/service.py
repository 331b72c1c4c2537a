"""Report rules: accepting a report once, checking it, locating it, and reading it back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import shapely
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.auth import service as auth_service
from app.auth.principal import Permit, Principal
from app.auth.service import Writing
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
from app.ratelimit import service as ratelimit
from app.reports.models import Report
from app.reports.schemas import LocationOut, ReportIn, ReportOut, SubmittedLocation
from app.spatial.store import (
    CategoryRule,
    Counted,
    Filed,
    Filing,
    Numbering,
    OpenedCase,
    Scene,
    SpatialStore,
    WantedCase,
    WritingCaller,
    search_for,
)

MAX_FUTURE = timedelta(minutes=5)
MAX_AGE = timedelta(days=30)
CREATED = 201
# Filings a report may make before it gives up: each stale one means another report changed
# the incident it was joining (or opened one where it would) since it read the scene.
MAX_FILINGS = 10
# Who may report: grid workers, and API keys for it (third-party apps).
REPORTERS = Permit(("grid_worker",), scope="reports:write")


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
    store: SpatialStore,
    reporter: Principal | Writing,
    data: ReportIn,
    idempotency_key: str | None,
    now: datetime,
) -> Submitted:
    """Store a report, merge it into an incident and route it; once per idempotency key.

    Everything is read first, in one go (`SpatialStore.scene`): the caller, looked up as its
    write is counted (refused over its limit, unknown, or not one of REPORTERS), unless it was
    checked already (a `Principal`); and the scene, from which the report, its answer and
    every row it writes are made. Then it is filed in one step, which writes nothing if what
    was read has changed meanwhile, and the report is made anew. On SQLite the database's one
    write lock is held for the filing only. Every statement runs on the driver, in a unit of
    work on a bare connection (`Database.bare`).
    """
    # Nothing here may refuse the report before its scene has looked its caller up and counted
    # the write: 401, 403 and 429 come first (app/reports/router.py, ReportRoute).
    key = idempotency_key or data.client_report_id
    body_hash = idempotency.request_hash(canonical(data)) if key is not None else ""
    lon, lat = grid_service.to_wgs84(data.location.lon, data.location.lat, data.location.crs)
    observed_at = data.observed_at.astimezone(UTC)
    # A report the clock refuses takes no case number with its scene (`_accepted`).
    clock_problem = _observed_at_problem(data.observed_at, now)
    numbering = None
    if clock_problem is None:
        numbering = Numbering(incident_service.case_year(now), data.material)

    caller = None if isinstance(reporter, Principal) else _writing_caller(db, reporter, now)
    async with db.bare() as unit:
        scene = await store.scene(
            unit.conn, data.category, lon, lat, observed_at, numbering, caller
        )
        if not isinstance(reporter, Principal):
            assert scene.counted is not None  # read with its caller
            reporter = _admitted(reporter, scene.counted, now)
        for attempt in range(MAX_FILINGS):
            if attempt:  # the last filing found its scene stale
                scene = await store.scene(
                    unit.conn, data.category, lon, lat, observed_at, numbering
                )
            try:
                category, located = _accepted(scene, data, clock_problem)
            except errors.BurnbanError:
                # Refused, unless it is the retry of a request answered before (the grid, the
                # category or the clock may have moved since): that gets its first answer again.
                if (
                    key is None
                    or (stored := await idempotency.stored(unit.conn, reporter, key)) is None
                ):
                    raise
                return Submitted(idempotency.answer(stored, body_hash).body, replayed=True)
            sighting = incident_service.Sighting(new_id(), lon, lat, observed_at, located)
            routing = await incident_service.route(unit, scene, category, sighting, reporter, now)
            report = _report_row(data, sighting, routing, reporter, now)
            body = report_out(
                Columns(report), located, routing.incident, routing.routed, []
            ).model_dump(mode="json")
            created = outbox.Event(
                "report.created", body, routing.incident.id, located.district.code
            )
            filing = Filing(
                search=search_for(category, lon, lat, observed_at),
                joins=routing.joins,
                opens=routing.opens,
                events=routing.events,
                report=report,
                outbox=outbox.rows([*routing.outbox, created], now),
                claim=None
                if key is None
                else idempotency.claim_row(reporter, key, body_hash, CREATED, body, now),
            )
            filed = await store.file_report(unit.conn, filing)
            if filed is Filed.FILED:
                return Submitted(body, replayed=False)
            if filed is Filed.REPLAY:
                assert key is not None  # only a key can be taken
                stored = await idempotency.stored(unit.conn, reporter, key)
                assert stored is not None  # the filing found it taken
                return Submitted(idempotency.answer(stored, body_hash).body, replayed=True)
        raise errors.Conflict(
            "the incident nearby kept changing while this report was filed; retry"
        )


def _admitted(write: Writing, counted: Counted, now: datetime) -> Principal:
    """The caller its scene counted and looked up, if it may report; else 429 (over its limit),
    401 (not found) or 403 (not a reporter), in that order."""
    writer = auth_service.counted_writer(write, *counted, now)
    if writer is None:
        raise errors.Unauthorized(auth_service.INVALID_CREDENTIALS)
    return REPORTERS.check(writer)


def _writing_caller(db: Database, write: Writing, now: datetime) -> WritingCaller:
    """The report's caller, for its scene to look up and count, and (SQLite) to take the case
    number with, in one write (`alone`) when it may report."""

    async def counted_alone(wanted: WantedCase | None) -> tuple[Counted, OpenedCase | None]:
        async with db.bookkeeping() as conn:
            counted = Counted(*await auth_service.count_writer_on(conn, write, now))
            if wanted is None:
                return counted, None
            try:
                _admitted(write, counted, now)
            except errors.BurnbanError:  # as on PostgreSQL: a refused caller takes no number
                return counted, None
            agencies = list(incident_service.routes_of(wanted.township_code, wanted.rule))
            case = await incident_service.take_case(
                conn, wanted.district_code, wanted.year, agencies
            )
        return counted, case

    return WritingCaller(
        write.kind,
        write.lookup,
        write.counted_as,
        ratelimit.window_of(now),
        write.allowed_writes,
        REPORTERS.roles,
        REPORTERS.scope,
        counted_alone,
    )


def _accepted(
    scene: Scene, data: ReportIn, clock_problem: str | None
) -> tuple[CategoryRule, Located]:
    """The report's category and place, or why it is refused (`clock_problem`: what is wrong
    with its observed_at, if anything)."""
    category = scene.category
    if category is None:
        raise _invalid("category", f"unknown category {data.category!r}")
    if data.material is not None and data.material not in category.materials:
        allowed = ", ".join(category.materials) or "none"
        raise _invalid(
            "material", f"material {data.material!r} is not one of {category.code}'s ({allowed})"
        )
    if clock_problem is not None:
        raise _invalid("observed_at", clock_problem)
    if scene.chain is None:
        lon, lat = data.location.lon, data.location.lat
        raise errors.OutsideGrid(f"({lon:.6f}, {lat:.6f}) is in no village of the grid")
    return category, grid_service.located(scene.chain)


def _report_row(
    data: ReportIn,
    sighting: incident_service.Sighting,
    routing: incident_service.Routing,
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
        "incident_id": routing.incident.id,
        "opened_incident": routing.incident.is_new,
        "client_report_id": data.client_report_id,
    }


def _observed_at_problem(observed_at: datetime, now: datetime) -> str | None:
    if observed_at > now + MAX_FUTURE:
        return "observed_at is more than 5 minutes in the future"
    if observed_at < now - MAX_AGE:
        return "observed_at is more than 30 days ago"
    return None


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
