"""Open311 rules: categories read as services, incidents as service requests, and filing a
request as a report through the same path as POST /api/v1/reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import false, select, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crsout, errors
from app.auth import service as auth_service
from app.categories.models import Category
from app.db import Database
from app.grid.models import Cell
from app.incidents import access
from app.incidents.models import TERMINAL_STATUSES, Incident, IncidentEvent
from app.open311.schemas import (
    Attribute,
    AttributeValue,
    CreatedRequest,
    Service,
    ServiceDefinition,
    ServiceRequest,
)
from app.reports import service as report_service
from app.reports.models import Report
from app.reports.schemas import LocationIn, ReportIn
from app.spatial.store import SpatialStore

DEFAULT_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000
GROUP = "禁烧"
MATERIAL_NAMES = {"straw": "秸秆", "garbage": "垃圾", "leaves": "落叶", "other": "其他"}

_REPORTS = Report.__table__  # type: ignore[attr-defined]
_EVENTS = IncidentEvent.__table__  # type: ignore[attr-defined]
_CELLS = Cell.__table__  # type: ignore[attr-defined]


def w3c(at: datetime) -> str:
    """A time as the specification writes them (W3C ISO 8601, here always in UTC)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def services(session: AsyncSession) -> list[Service]:
    rows = await session.exec(sm_select(Category).order_by(col(Category.code)))
    return [
        Service(
            service_code=c.code,
            service_name=c.name,
            description=c.name,
            metadata=bool(c.materials),
            type="realtime",
            keywords=", ".join([c.code, *c.materials]),
            group=GROUP,
        )
        for c in rows
    ]


async def definition(session: AsyncSession, code: str) -> ServiceDefinition:
    category = await session.get(Category, code)
    if category is None:
        raise errors.NotFound(f"no service {code!r}")
    attributes = []
    if category.materials:
        values = [AttributeValue(key=m, name=MATERIAL_NAMES.get(m, m)) for m in category.materials]
        attributes.append(
            Attribute(
                variable=True,
                code="material",
                datatype="singlevaluelist",
                required=False,
                datatype_description=None,
                order=1,
                description="焚烧物 (what is burning)",
                values=values,
            )
        )
    return ServiceDefinition(service_code=category.code, attributes=attributes)


PUBLIC_DECIMALS = 3  # 0.001° ≈ 111 m of latitude, ~100 m of longitude in China


@dataclass(frozen=True)
class View:
    """What a reader sees of service requests: everything (a key with incidents:read, within
    its cell if it has one), or the public view (positions rounded to ~100 m, no free text)."""

    exact: bool
    cell_code: str | None = None
    crs: str = "wgs84"  # the coordinate system lat and long are answered in


async def view_for(session: AsyncSession, api_key: str | None, public: bool) -> View:
    """The reader's view: a key with incidents:read sees everything under its cell; without
    such a key, the public view when the operator opened it (BURNBAN_OPEN311_PUBLIC), else
    refused. A key given that is not valid is refused either way."""
    if api_key:
        reader = await auth_service.principal_from_api_key(session, api_key)
        if reader is None:
            raise errors.Forbidden("api_key is not valid")
        if reader.has_scope("incidents:read"):
            return View(exact=True, cell_code=reader.cell_code)
    if public:
        return View(exact=False)
    raise errors.Forbidden("reading service requests needs an api_key with incidents:read")


@dataclass(frozen=True)
class RequestFilter:
    service_request_ids: list[str]
    service_codes: list[str]
    start: datetime | None
    end: datetime | None
    statuses: list[str]


def _window(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The requested_datetime range: by default the last 90 days, never more than 90 days."""
    if start is None and end is None:
        return now - DEFAULT_SPAN, now
    if start is None:
        assert end is not None
        return end - DEFAULT_SPAN, end
    if end is None:
        return start, min(start + DEFAULT_SPAN, max(now, start))
    if end < start:
        raise errors.ValidationFailed("end_date is before start_date")
    if end - start > DEFAULT_SPAN:
        raise errors.ValidationFailed("start_date and end_date may not span more than 90 days")
    return start, end


async def _in_view(session: AsyncSession, view: View) -> ColumnElement[bool]:
    """The incidents a view covers: those under its key's cell, or all."""
    if view.cell_code is None:
        return true()
    scope = await access.cell_scope(session, view.cell_code)
    return false() if scope is None else scope.condition()


async def requests(
    session: AsyncSession, view: View, wanted: RequestFilter, now: datetime
) -> list[ServiceRequest]:
    """Service requests newest first, at most 1 000. Ids, when given, override every filter."""
    query = sm_select(Incident).where(await _in_view(session, view))
    if wanted.service_request_ids:
        query = query.where(col(Incident.case_number).in_(wanted.service_request_ids))
    else:
        start, end = _window(wanted.start, wanted.end, now)
        query = query.where(col(Incident.opened_at) >= start, col(Incident.opened_at) <= end)
        if wanted.service_codes:
            query = query.where(col(Incident.category).in_(wanted.service_codes))
        statuses = set(wanted.statuses)
        if statuses == {"open"}:
            query = query.where(col(Incident.status).not_in(TERMINAL_STATUSES))
        elif statuses == {"closed"}:
            query = query.where(col(Incident.status).in_(TERMINAL_STATUSES))
    query = query.order_by(col(Incident.opened_at).desc(), col(Incident.id).desc())
    incidents = list(await session.exec(query.limit(MAX_REQUESTS)))
    return await _as_requests(session, view, incidents)


async def one_request(session: AsyncSession, view: View, case_number: str) -> list[ServiceRequest]:
    query = sm_select(Incident).where(
        Incident.case_number == case_number, await _in_view(session, view)
    )
    incident = (await session.exec(query)).first()
    if incident is None:
        raise errors.NotFound(f"no service request {case_number!r}")
    return await _as_requests(session, view, [incident])


async def _as_requests(
    session: AsyncSession, view: View, incidents: Sequence[Incident]
) -> list[ServiceRequest]:
    if not incidents:
        return []
    ids = [i.id for i in incidents]
    conn = await session.connection()
    names = {
        c.code: c.name
        for c in await conn.execute(
            select(_CELLS.c.code, _CELLS.c.name).where(
                _CELLS.c.code.in_({i.township_code for i in incidents})
            )
        )
    }
    categories = {c.code: c.name for c in await session.exec(sm_select(Category))}
    descriptions: dict[str, str] = {}
    for row in await conn.execute(
        select(_REPORTS.c.incident_id, _REPORTS.c.description)
        .where(_REPORTS.c.incident_id.in_(ids), _REPORTS.c.description.is_not(None))
        .order_by(_REPORTS.c.observed_at, _REPORTS.c.id)
    ):
        descriptions.setdefault(row.incident_id, row.description)
    notes: dict[str, str | None] = {}
    if not view.exact:  # the public view: no free text, which may name people
        descriptions.clear()
    for row in await conn.execute(
        select(_EVENTS.c.incident_id, _EVENTS.c.note)
        .where(_EVENTS.c.incident_id.in_(ids), _EVENTS.c.to_status.is_not(None))
        .order_by(_EVENTS.c.at, _EVENTS.c.id)
    ):
        notes[row.incident_id] = row.note if view.exact else None  # the latest one wins
    places = {i.id: _place(view, i.lon, i.lat) for i in incidents}
    return [
        ServiceRequest(
            service_request_id=i.case_number,
            status="closed" if i.status in TERMINAL_STATUSES else "open",
            status_notes=notes.get(i.id) if i.status in TERMINAL_STATUSES else None,
            service_name=categories.get(i.category, i.category),
            service_code=i.category,
            description=descriptions.get(i.id),
            agency_responsible=names.get(i.township_code, i.township_code),
            service_notice=None,
            requested_datetime=w3c(i.opened_at),
            updated_datetime=w3c(i.updated_at),
            expected_datetime=w3c(i.due_at),
            address="",
            address_id=None,
            zipcode=None,
            lat=places[i.id][1],
            long=places[i.id][0],
            media_url=None,
        )
        for i in incidents
    ]


def _place(view: View, lon: float, lat: float) -> tuple[float, float]:
    """The position as the view shows it: in its crs, rounded to ~100 m in the public view."""
    lon, lat = crsout.point(lon, lat, view.crs)
    if view.exact:
        return lon, lat
    return round(lon, PUBLIC_DECIMALS), round(lat, PUBLIC_DECIMALS)


@dataclass(frozen=True)
class PostedRequest:
    """The form fields of POST requests.json that burnban uses (others are ignored)."""

    api_key: str
    service_code: str
    lat: float | None
    long: float | None
    description: str | None
    material: str | None
    device_id: str | None
    client_token: str | None


async def file_request(
    db: Database,
    store: SpatialStore,
    posted: PostedRequest,
    allowed_writes: int,
    now: datetime,
) -> list[CreatedRequest]:
    """File a report exactly as POST /api/v1/reports does; the incident is the request."""
    if not posted.api_key:
        raise errors.Forbidden("send api_key (a form field) or the X-API-Key header")
    reporter = await auth_service.writer(
        db, auth_service.key_writing(posted.api_key, allowed_writes), now
    )
    if posted.lat is None or posted.long is None:
        raise errors.ValidationFailed("lat and long are required (addresses are not located)")
    try:
        data = ReportIn(
            category=posted.service_code,
            material=posted.material,
            location=LocationIn(lon=posted.long, lat=posted.lat),
            observed_at=now,
            description=posted.description,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise errors.ValidationFailed(f"{where}: {first.get('msg', 'invalid')}") from exc
    key = None
    if posted.client_token:
        key = f"open311:{posted.device_id or ''}:{posted.client_token}"
    if reporter is None:
        raise errors.Forbidden("api_key is not valid")
    if not reporter.has_scope("reports:write"):
        raise errors.Forbidden("this api_key may not file requests (needs reports:write)")
    submitted = await report_service.submit_report(db, store, reporter, data, key, now)
    incident = submitted.body["incident"]
    township = submitted.body["cell"]["township"]["name"]
    notice = f"已立案，派遣至{township}" if incident["is_new"] else "已并入正在处置的同一案件"
    return [CreatedRequest(service_request_id=incident["case_number"], service_notice=notice)]
