"""HTTP routes for incidents: reading one, acting on one, and the lists (JSON, GeoJSON, CSV)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request, Response
from fastapi.responses import StreamingResponse

from app import i18n
from app.crsout import OutputCrsDep, answer_crs
from app.deps import ClockDep, CurrentPrincipal, DatabaseDep, SessionDep, StoreDep
from app.formats import GEOJSON, accepted, geojson_response, wants_geojson
from app.incidents import actions, export, queries, service
from app.incidents.params import IncidentFilters
from app.incidents.queries import Listing
from app.incidents.schemas import ActionIn, IncidentDetail, IncidentOut
from app.pagination import Page

router = APIRouter(tags=["incidents"])
FiltersDep = Annotated[IncidentFilters, Depends()]
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A page of incidents; a GeoJSON FeatureCollection; or all of them as CSV",
        "content": {GEOJSON: {}, "text/csv": {}},
    },
    404: {"description": "The cell or agency is not within your reach", **_PROBLEM},
    422: {"description": "A filter or the cursor is malformed", **_PROBLEM},
}

_ACTION_EXAMPLES: dict[str, Any] = {
    name: {"summary": summary, "value": value}
    for name, summary, value in (
        ("acknowledge", "An officer takes it on", {"action": "acknowledge", "note": "已派人前往"}),
        ("arrive", "On site", {"action": "arrive"}),
        (
            "resolve",
            "Resolved with a fine",
            {
                "action": "resolve",
                "outcome": "penalized",
                "penalty": {"kind": "fine", "amount_yuan": 200, "legal_basis": "大气污染防治法"},
                "note": "已扑灭，处罚款",
            },
        ),
        ("verify", "Verified on site", {"action": "verify", "passed": True}),
        ("return", "Sent back to a supervisor", {"action": "return", "note": "不属本镇辖区"}),
        (
            "void",
            "A false report, voided by a supervisor",
            {"action": "void", "reason": "false_report", "note": "现场无焚烧，系炊烟"},
        ),
        (
            "supervise",
            "督办 with a deadline",
            {
                "action": "supervise",
                "level": "supervised",
                "due_at": "2026-11-20T12:00:00+08:00",
                "note": "限两小时内处置",
            },
        ),
        ("revisit", "回头看: it burns again", {"action": "revisit", "passed": False}),
        ("reassign", "To another village", {"action": "reassign", "cell_code": "450305001002"}),
    )
}


@router.get(
    "/incidents/{incident_id}",
    operation_id="get_incident",
    response_model=IncidentDetail,
    dependencies=[Depends(answer_crs)],
    responses={200: {"content": {GEOJSON: {}}}},
)
async def get_incident(
    incident_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    principal: CurrentPrincipal,
) -> Any:
    """One incident with its reports and timeline, within the caller's jurisdiction."""
    detail = await service.get_incident(session, principal, incident_id, clock.now())
    etag = f'"{detail.version}"'
    if wants_geojson(request):
        feature = geojson_response(export.feature(detail))
        feature.headers["ETag"] = etag
        return feature
    response.headers["ETag"] = etag
    return detail


@router.post(
    "/incidents/{incident_id}/actions",
    operation_id="act_on_incident",
    response_model=IncidentOut,
    dependencies=[Depends(answer_crs)],
    responses={
        403: {"description": "Your role may not take this action", **_PROBLEM},
        404: {"description": "No such incident within your reach", **_PROBLEM},
        409: {"description": "Not allowed from the incident's status", **_PROBLEM},
        412: {"description": "If-Match names another version", **_PROBLEM},
        422: {"description": "The action's body is invalid", **_PROBLEM},
    },
)
async def act_on_incident(
    incident_id: str,
    data: Annotated[ActionIn, Body(openapi_examples=_ACTION_EXAMPLES)],
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    principal: CurrentPrincipal,
    if_match: Annotated[
        str | None, Header(alias="If-Match", description='The ETag read, e.g. "3"')
    ] = None,
) -> IncidentOut:
    """Acknowledge, arrive, resolve, verify, return, void, supervise, revisit or reassign (or
    reject, the former name of void); answers the new version."""
    item = await actions.act(
        session, principal, incident_id, data, parse_if_match(if_match), clock.now()
    )
    response.headers["ETag"] = f'"{item.version}"'
    return item


class _Lists:
    """What every incident list needs: the filters, the unit of work, and the caller."""

    def __init__(
        self,
        request: Request,
        filters: FiltersDep,
        session: SessionDep,
        db: DatabaseDep,
        store: StoreDep,
        clock: ClockDep,
        principal: CurrentPrincipal,
        crs: OutputCrsDep,
    ) -> None:
        self.request, self.filters, self.session, self.db = request, filters, session, db
        self.store, self.now, self.principal = store, clock.now(), principal
        self.crs = crs
        self.query = filters.query()

    async def answer(self, listing: Listing) -> Any:
        """JSON page, GeoJSON page, or the whole list as streamed CSV."""
        filters, query = self.filters, self.query
        output = filters.output or accepted(self.request, ("json", "geojson", "csv")) or "json"
        if output == "csv":
            return StreamingResponse(
                export.csv_stream(
                    self.db,
                    listing,
                    query,
                    self.now,
                    self.crs,
                    i18n.locale_of(self.request.headers.get("accept-language")),
                ),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="incidents.csv"'},
            )
        items, next_cursor = await queries.page(
            self.session, listing, query, filters.limit, filters.cursor, self.now
        )
        if output == "geojson":
            return geojson_response(export.feature_collection(items, next_cursor))
        return Page(items=items, next_cursor=next_cursor)


ListsDep = Annotated[_Lists, Depends()]


@router.get(
    "/incidents",
    operation_id="list_incidents",
    response_model=Page[IncidentOut],
    responses=_LIST_RESPONSES,
)
async def list_incidents(lists: ListsDep) -> Any:
    """Incidents within the caller's jurisdiction, newest first."""
    return await lists.answer(
        await queries.everywhere(lists.session, lists.store, lists.principal, lists.query)
    )


@router.get(
    "/cells/{code}/incidents",
    operation_id="list_cell_incidents",
    response_model=Page[IncidentOut],
    responses=_LIST_RESPONSES,
)
async def list_cell_incidents(code: str, lists: ListsDep) -> Any:
    """Incidents in the cell and every cell under it, newest first."""
    return await lists.answer(
        await queries.in_cell(lists.session, lists.store, lists.principal, code, lists.query)
    )


@router.get(
    "/agencies/{code}/incidents",
    operation_id="list_agency_incidents",
    response_model=Page[IncidentOut],
    responses=_LIST_RESPONSES,
)
async def list_agency_incidents(code: str, lists: ListsDep) -> Any:
    """An agency's inbox: incidents assigned to it, newest first."""
    return await lists.answer(
        await queries.inbox(lists.session, lists.store, lists.principal, code, lists.query)
    )


def parse_if_match(value: str | None) -> frozenset[int] | None:
    """The versions an If-Match names; None for no header or `*` (any version)."""
    if value is None:
        return None
    versions = set()
    for tag in (part.strip() for part in value.split(",")):
        if tag == "*":
            return None
        tag = tag.removeprefix("W/").strip('"')
        if tag.isdigit():
            versions.add(int(tag))
    return frozenset(versions)
