"""HTTP routes of Open311 GeoReport v2, each resource as `.json` and `.xml`. Refusals here are
the specification's errors ([{"code", "description"}], or <errors> in XML) with 400, 403, 404
or 429, not problem+json.

Reading service requests needs an API key with incidents:read (`api_key`, or the X-API-Key
header) unless the operator opens a public view (BURNBAN_OPEN311_PUBLIC=true)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from app import errors
from app.crsout import Crs
from app.deps import ClockDep, DatabaseDep, SessionDep, SettingsDep, StoreDep
from app.open311 import service, xml
from app.open311.schemas import (
    CreatedRequest,
    Discovery,
    Endpoint,
    Open311Error,
    Service,
    ServiceDefinition,
    ServiceRequest,
)

PREFIX = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-29T00:00:00Z"


def _refusal(
    status: int, description: str, headers: dict[str, str] | None = None, as_xml: bool = False
) -> Response:
    body = [Open311Error(code=status, description=description).model_dump()]
    if as_xml:
        answer = xml.response("errors", body, status)
        answer.headers.update(headers or {})
        return answer
    return JSONResponse(body, status_code=status, headers=headers)


def _status_of(exc: errors.BurnbanError) -> int:
    if isinstance(exc, errors.NotFound):
        return 404
    if isinstance(exc, errors.Unauthorized | errors.Forbidden):
        return 403
    if isinstance(exc, errors.RateLimited):
        return 429
    return 400


class Open311Route(APIRoute):
    """Answers this router's refusals in the specification's error format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def open311_errors(request: Request) -> Response:
            as_xml = request.url.path.endswith(".xml")
            try:
                return await handler(request)
            except errors.BurnbanError as exc:
                headers = (
                    {"Retry-After": str(exc.retry_after)}
                    if isinstance(exc, errors.RateLimited)
                    else None
                )
                return _refusal(_status_of(exc), exc.detail, headers, as_xml)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(
                    str(p) for p in first.get("loc", ()) if p not in ("body", "query", "header")
                )
                message = f"{where}: {first.get('msg', 'invalid')}".strip(": ")
                return _refusal(400, message, None, as_xml)
            except HTTPException as exc:  # a body refused as it was read: 400 here
                status = 400 if exc.status_code == 422 else exc.status_code
                return _refusal(status, str(exc.detail), None, as_xml)

        return open311_errors


router = APIRouter(prefix=PREFIX, tags=["open311"], route_class=Open311Route)
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": list[Open311Error], "description": text}
    for status, text in ((400, "Bad request"), (403, "Bad api_key"), (404, "Not found"))
}
_XML_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {xml.XML: {}}}
    for status, text in ((400, "Bad request"), (403, "Bad api_key"), (404, "Not found"))
}


def resource(
    method: str,
    path: str,
    *,
    operation_id: str,
    root: str,
    status_code: int = 200,
    **options: Any,
) -> Callable[[Callable[..., Coroutine[Any, Any, Any]]], Callable[..., Any]]:
    """Register a handler as the `.json` resource (documented by its model) and the `.xml`
    one (the same answer as the specification's XML document `<root>`)."""

    def register(
        handler: Callable[..., Coroutine[Any, Any, Any]],
    ) -> Callable[..., Coroutine[Any, Any, Any]]:
        router.add_api_route(
            f"{path}.json",
            handler,
            methods=[method],
            operation_id=operation_id,
            status_code=status_code,
            **options,
        )

        @functools.wraps(handler)
        async def as_xml(*args: Any, **kwargs: Any) -> Response:
            answer = await handler(*args, **kwargs)
            return xml.response(root, jsonable_encoder(answer), status_code)

        xml_options = {k: v for k, v in options.items() if k not in ("response_model", "responses")}
        router.add_api_route(
            f"{path}.xml",
            as_xml,
            methods=[method],
            operation_id=f"{operation_id}_xml",
            status_code=status_code,
            response_model=None,
            response_class=Response,
            responses={status_code: {"content": {xml.XML: {}}}, **_XML_ERRORS},
            **xml_options,
        )
        return handler

    return register


async def get_reader(
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[
        str | None, Query(description="A key with incidents:read (or send X-API-Key)")
    ] = None,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
    crs: Annotated[
        Crs, Query(description="lat and long in wgs84 (default), gcj02 or bd09")
    ] = "wgs84",
) -> service.View:
    """What the caller may see of service requests: by its key, or the public view."""
    view = await service.view_for(session, api_key or x_api_key, settings.open311_public)
    return dataclasses.replace(view, crs=crs)


ReaderDep = Annotated[service.View, Depends(get_reader)]


@resource("GET", "/discovery", operation_id="open311_discovery", root="discovery",
          response_model=Discovery)  # fmt: skip
async def discovery(request: Request, settings: SettingsDep) -> Discovery:
    """Where this GeoReport v2 endpoint is and what it speaks."""
    url = str(request.base_url).rstrip("/") + PREFIX
    return Discovery(
        changeset=CHANGESET,
        contact="The district's burn-ban office (区大气办) runs this service.",
        key_service="API keys are issued by the operator: burnban apikeys create NAME --scope "
        "reports:write (to file requests) --scope incidents:read (to read them"
        + (", beyond the public view)" if settings.open311_public else ")"),
        endpoints=[
            Endpoint(
                specification=SPECIFICATION,
                url=url,
                changeset=CHANGESET,
                type="production",
                formats=["application/json", xml.XML],
            )
        ],
    )


@resource("GET", "/services", operation_id="open311_services", root="services",
          response_model=list[Service])  # fmt: skip
async def services(session: SessionDep) -> list[Service]:
    """Report categories, as services."""
    return await service.services(session)


@resource(
    "GET",
    "/services/{service_code}",
    operation_id="open311_service_definition",
    root="service_definition",
    response_model=ServiceDefinition,
    responses=_ERRORS,
)
async def service_definition(service_code: str, session: SessionDep) -> ServiceDefinition:
    """A service's attributes (material, as a single-value list)."""
    return await service.definition(session, service_code)


def _listed(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise errors.ValidationFailed(f"{name} must be a W3C datetime with an offset or Z")
    return at


@resource(
    "GET",
    "/requests",
    operation_id="open311_requests",
    root="service_requests",
    response_model=list[ServiceRequest],
    responses=_ERRORS,
)
async def list_requests(
    session: SessionDep,
    clock: ClockDep,
    view: ReaderDep,
    service_request_id: Annotated[str | None, Query(description="Comma-separated ids")] = None,
    service_code: Annotated[str | None, Query(description="Comma-separated codes")] = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: Annotated[str | None, Query(description="open, closed or open,closed")] = None,
) -> list[ServiceRequest]:
    """Service requests (incidents), newest first: by default the last 90 days, ≤ 1 000."""
    statuses = _listed(status)
    if any(s not in ("open", "closed") for s in statuses):
        raise errors.ValidationFailed("status must be open or closed")
    wanted = service.RequestFilter(
        service_request_ids=_listed(service_request_id),
        service_codes=_listed(service_code),
        start=_when(start_date, "start_date"),
        end=_when(end_date, "end_date"),
        statuses=statuses,
    )
    return await service.requests(session, view, wanted, clock.now())


@resource(
    "GET",
    "/requests/{service_request_id}",
    operation_id="open311_request",
    root="service_requests",
    response_model=list[ServiceRequest],
    responses=_ERRORS,
)
async def get_request(
    service_request_id: str, session: SessionDep, view: ReaderDep
) -> list[ServiceRequest]:
    """One service request (the specification answers it in a list)."""
    return await service.one_request(session, view, service_request_id)


@resource(
    "POST",
    "/requests",
    operation_id="open311_create_request",
    root="service_requests",
    status_code=201,
    response_model=list[CreatedRequest],
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "example": {
                        "api_key": "bb_…",
                        "service_code": "open_burning",
                        "lat": 25.279,
                        "long": 110.331,
                        "description": "田间焚烧秸秆",
                        "attribute[material]": "straw",
                    }
                }
            }
        }
    },
)
async def create_request(
    db: DatabaseDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
    service_code: Annotated[str, Form()],
    api_key: Annotated[str | None, Form(description="Or the X-API-Key header")] = None,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
    lat: Annotated[float | None, Form()] = None,
    long: Annotated[float | None, Form()] = None,
    description: Annotated[str | None, Form()] = None,
    media_url: Annotated[str | None, Form(description="Accepted and not fetched")] = None,
    material: Annotated[str | None, Form(alias="attribute[material]")] = None,
    device_id: Annotated[str | None, Form(max_length=200)] = None,
    client_token: Annotated[
        str | None,
        Form(max_length=200, description="With device_id: a retry under it files nothing new"),
    ] = None,
) -> list[CreatedRequest]:
    """File a report (API key with reports:write); answers the incident's case number."""
    posted = service.PostedRequest(
        api_key=api_key or x_api_key or "",
        service_code=service_code,
        lat=lat,
        long=long,
        description=description,
        material=material,
        device_id=device_id,
        client_token=client_token,
    )
    return await service.file_request(db, store, posted, settings.rate_limit_writes, clock.now())


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False)
async def unknown(rest: str) -> Response:
    return _refusal(404, f"no such resource: {PREFIX}/{rest}", as_xml=rest.endswith(".xml"))
