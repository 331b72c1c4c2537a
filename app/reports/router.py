"""HTTP routes for reports."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic_core import to_json

from app import errors
from app.bodylimit import BodyLimitedRoute, body_limited_route
from app.deps import (
    CurrentPrincipal,
    SessionDep,
    WritingDep,
    check_writer,
    clock_of,
    database_of,
    store_of,
)
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from app.reports import service
from app.reports.schemas import ReportIn, ReportOut

MAX_REPORT_BODY = 64 * 1024


class ReportRoute(BodyLimitedRoute):
    """`POST /reports` looks its caller up with its scene, in one round trip, so after its body
    is validated (`WritingDep` checks only what needs no database). A body refused is refused
    after its caller has been looked up and its write counted, as on every write route: 401,
    403 and 429 come before 422. Here that holds for JSON that does not parse too, which
    FastAPI refuses on other routes before their dependencies run."""

    max_bytes = MAX_REPORT_BODY

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def caller_first(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError:
                await check_writer(request, service.REPORTERS)
                raise

        return caller_first


router = APIRouter(tags=["reports"], route_class=body_limited_route(MAX_REPORT_BODY))
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


async def create_report(
    data: ReportIn,
    request: Request,
    write: WritingDep,
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
    # The services are read from the request, not depended on, and the report makes its own
    # unit of work on a bare connection: see app/deps.py and Database.bare.
    db, store, now = database_of(request), store_of(request), clock_of(request).now()
    result = await service.submit_report(db, store, write, data, idempotency_key, now)
    headers = {"Location": f"/api/v1/reports/{result.body['id']}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(to_json(result.body), 201, headers, media_type="application/json")


router.add_api_route(
    "/reports",
    create_report,
    methods=["POST"],
    route_class_override=ReportRoute,
    operation_id="create_report",
    status_code=201,
    response_model=ReportOut,
    responses={
        409: {"description": "The same key is still in flight", **_PROBLEM},
        413: {"description": "The body is over 64 KiB", **_PROBLEM},
        422: {"description": "Refused; nothing was stored", **_PROBLEM},
    },
)


@router.get("/reports", operation_id="list_reports", response_model=Page[ReportOut])
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


@router.get("/reports/{report_id}", operation_id="get_report", response_model=ReportOut)
async def get_report(session: SessionDep, principal: CurrentPrincipal, report_id: str) -> Any:
    """One report, to its reporter, the incident's agencies, supervisors over it and admins."""
    return await service.get_report(session, principal, report_id)
