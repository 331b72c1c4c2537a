"""HTTP routes for reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response
from pydantic_core import to_json

from app import errors
from app.auth.principal import Principal
from app.bodylimit import body_limited_route
from app.crsout import answer_crs
from app.deps import (
    ClockDep,
    CurrentPrincipal,
    DatabaseDep,
    SessionDep,
    StoreDep,
    require_writer,
)
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from app.reports import service
from app.reports.schemas import ReportIn, ReportOut

MAX_REPORT_BODY = 64 * 1024
router = APIRouter(tags=["reports"], route_class=body_limited_route(MAX_REPORT_BODY))
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
# The caller is looked up, and its write counted, before the body is looked at: 429, 401 and
# 403 come before 422.
ReporterDep = Annotated[Principal, Depends(require_writer(service.REPORTERS))]


@router.post(
    "/reports",
    operation_id="create_report",
    status_code=201,
    dependencies=[Depends(answer_crs)],
    response_model=ReportOut,
    responses={
        409: {"description": "The same key is still in flight", **_PROBLEM},
        413: {"description": "The body is over 64 KiB", **_PROBLEM},
        422: {"description": "Refused; nothing was stored", **_PROBLEM},
    },
)
async def create_report(
    reporter: ReporterDep,
    data: ReportIn,
    db: DatabaseDep,
    spatial: StoreDep,
    clock: ClockDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Retries with the same key and body answer the first answer again.",
        ),
    ] = None,
) -> Response:
    """Submit a report; it joins or opens an incident, routed to the responsible agencies."""
    result = await service.submit_report(db, spatial, reporter, data, idempotency_key, clock.now())
    headers = {"Location": f"/api/v1/reports/{result.body['id']}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(to_json(result.body), 201, headers, media_type="application/json")


@router.get(
    "/reports",
    operation_id="list_reports",
    response_model=Page[ReportOut],
    dependencies=[Depends(answer_crs)],
)
async def list_reports(
    session: SessionDep,
    principal: CurrentPrincipal,
    mine: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[ReportOut]:
    """The caller's own reports (`mine=true`), newest first."""
    if not mine:
        msg = "only mine=true is supported: incidents are the way to browse others' reports"
        raise errors.ValidationFailed(msg, errors=[{"loc": ["query", "mine"], "msg": msg}])
    items, next_cursor = await service.list_mine(session, principal, limit, cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/reports/{report_id}",
    operation_id="get_report",
    response_model=ReportOut,
    dependencies=[Depends(answer_crs)],
)
async def get_report(session: SessionDep, principal: CurrentPrincipal, report_id: str) -> Any:
    """One report, to its reporter, the incident's agencies, supervisors over it and admins."""
    return await service.get_report(session, principal, report_id)
