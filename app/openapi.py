"""The OpenAPI document as the service really answers: every operation's error statuses, each
documented as RFC 9457 problem+json (Open311's as the specification's error list).

Which errors an operation can answer follows from what the route is: one that needs a caller
answers 401 and 403; a write by a caller is counted (429); a path names something (404); a
route with parameters or a body validates them (422); a JSON body is refused in another media
type (415); a write may conflict with what is stored (409). Statuses a route declares itself
(412, 413…) are kept, with the problem schema put under them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, ConfigDict, Field

from app.bodylimit import BodyLimitedRoute
from app.problems import PROBLEM_BASE, PROBLEM_JSON

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_OPEN311_PREFIX = "/open311/"
_TOKEN_PATH = "/api/v1/auth/token"

_WHEN: dict[int, tuple[str, str, str]] = {
    # status: (slug, title, when)
    401: ("unauthorized", "Authentication required", "No, an invalid or an expired credential"),
    403: ("forbidden", "Not allowed", "Your role, key or jurisdiction does not allow it"),
    404: ("not-found", "Not found", "No such thing, or not within your reach"),
    409: ("conflict", "Conflict", "A value is taken, or the thing changed under you"),
    412: ("precondition-failed", "Precondition failed", "If-Match names another version"),
    413: ("payload-too-large", "Payload too large", "The body is over the route's limit"),
    415: ("unsupported-media-type", "Unsupported media type", "The body is of another type"),
    422: ("validation", "Validation failed", "A field, a parameter or the body is refused"),
    429: ("rate-limited", "Too many requests", "Too many writes or failed logins: Retry-After"),
    503: ("unavailable", "Temporarily unavailable", "The database cannot serve now: Retry-After"),
}


class ProblemError(BaseModel):
    """One refused field (`loc`, `msg`), or one refused feature of a grid import."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] | None = None
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details. Branch on `status` and the slug ending `type`."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": PROBLEM_BASE + "outside-grid",
                    "title": "Point is outside the grid",
                    "status": 422,
                    "detail": "(110.900000, 25.100000) is in no village of the grid",
                    "instance": "/api/v1/reports",
                }
            ]
        },
    )

    type: str = Field(description=f"{PROBLEM_BASE}<slug>")
    title: str
    status: int
    detail: str
    instance: str = Field(description="The path asked for")
    errors: list[ProblemError] | None = Field(
        default=None, description="validation and grid-invalid: each refused field or feature"
    )
    request_id: str | None = Field(default=None, description="500 only: quote it")


def install(app: FastAPI, routers: Iterable[tuple[str, APIRouter]]) -> None:
    """Make `app.openapi()` answer the document with its errors described; `routers`: every
    router included, with the prefix it was included under."""
    routes = [
        (prefix + route.path, route)
        for prefix, router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    ]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            describe_errors(document, routes)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def describe_errors(document: dict[str, Any], routes: list[tuple[str, APIRoute]]) -> None:
    """Put each operation's real error statuses, with their schema, into `document`."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schemas["Problem"].pop("$defs", {}))
    for path, route in routes:
        if not route.include_in_schema:
            continue
        item = document["paths"].get(path, {})
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is None:
                continue
            if path.startswith(_OPEN311_PREFIX):
                _open311(operation, method)
            else:
                _problems(operation, _statuses(path, route, method))
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in schemas and unused not in str(document["paths"]):
            del schemas[unused]


def _statuses(path: str, route: APIRoute, method: str) -> set[int]:
    has_caller = _needs_caller(route.dependant)
    has_input = bool(get_flat_params(route.dependant) or route.body_field)
    path_params = "{" in path
    statuses = {int(code) for code in route.responses if str(code).isdigit() and int(code) >= 400}
    if has_caller:
        statuses |= {401, 403}
        if method in _WRITES:
            statuses.add(429)
    if path == _TOKEN_PATH:
        statuses |= {401, 429}
    if path_params:
        statuses.add(404)
    if has_input:
        statuses.add(422)
    if route.body_field is not None and method in _WRITES and has_caller:
        statuses.add(409)
    if route.body_field is not None and not _is_form(route):
        statuses.add(415)
    if isinstance(route, BodyLimitedRoute) and route.body_field is not None:
        statuses.add(413)
    return statuses


def _needs_caller(dependant: Dependant) -> bool:
    """Whether a security scheme (bearer token, API key) is among the route's dependencies."""
    return any(
        isinstance(sub.call, SecurityBase) or _needs_caller(sub) for sub in dependant.dependencies
    )


def _is_form(route: APIRoute) -> bool:
    return route.body_field is not None and isinstance(route.body_field.field_info, params.Form)


def _problems(operation: dict[str, Any], statuses: set[int]) -> None:
    responses = operation.setdefault("responses", {})
    declared = {int(status) for status in responses if status.isdigit() and int(status) >= 400}
    for status in sorted(statuses | declared):
        slug, title, when = _WHEN.get(status, ("error", "Error", "Refused"))
        description = responses.get(str(status), {}).get("description")
        if not description or description in ("Validation Error", "Additional Response"):
            description = when
        example = {
            "type": PROBLEM_BASE + slug,
            "title": title,
            "status": status,
            "detail": when,
            "instance": "/api/v1/…",
        }
        responses[str(status)] = {
            "description": description,
            "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF, "example": example}},
        }


def _open311(operation: dict[str, Any], method: str) -> None:
    """Open311 refuses with the specification's list (400 for what others answer 422)."""
    responses = operation.setdefault("responses", {})
    errors = responses.get("400") or responses.get("404")
    responses.pop("422", None)
    if errors is None:
        return
    if method == "POST":
        responses["429"] = {**errors, "description": "Too many writes: Retry-After"}
