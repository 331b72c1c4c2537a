"""RFC 9457 problem+json for every error the service answers, including the framework's own."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import SQLModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import dbfaults, errors, i18n, integrity

PROBLEM_BASE = "https://burnban.dev/problems/"
PROBLEM_JSON = "application/problem+json"

STATUS_CODES: dict[type[errors.BurnbanError], int] = {
    errors.ValidationFailed: 422,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.OutsideGrid: 422,
    errors.InvalidTransition: 409,
    errors.IdempotencyMismatch: 422,
    errors.PreconditionFailed: 412,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.RateLimited: 429,
    errors.GridInvalid: 422,
    errors.Unavailable: 503,
}

_SLUG_BY_STATUS = {
    400: "validation",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation",
    429: "rate-limited",
    503: "unavailable",
}

# Every route that reaches the database may answer this (OpenAPI; app/main.py).
UNAVAILABLE_RESPONSE: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "The database cannot serve just now (unreachable, restarting, busy, "
        "or its disk full or read-only): retry after Retry-After seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {PROBLEM_JSON: {}},
    }
}

log = structlog.get_logger(__name__)


def status_of(exc: errors.BurnbanError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 400


def problem(
    request: Request,
    status: int,
    slug: str,
    detail: str,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Render one problem document, its title, detail and field messages in the language the
    caller asked for (Accept-Language; app/i18n.py)."""
    locale = i18n.locale_of(request.headers.get("accept-language"))
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": i18n.gettext(locale, title or HTTPStatus(status).phrase),
        "status": status,
        "detail": i18n.gettext(locale, detail),
        "instance": request.url.path,
    }
    body.update(extra)
    if locale != i18n.ENGLISH and isinstance(body.get("errors"), list):
        body["errors"] = [_translated(locale, error) for error in body["errors"]]
    headers = {**(headers or {}), "Content-Language": i18n.CONTENT_LANGUAGE[locale]}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _translated(locale: str, error: Any) -> Any:
    if isinstance(error, dict) and isinstance(error.get("msg"), str):
        return {**error, "msg": i18n.gettext(locale, error["msg"])}
    return error


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.BurnbanError)
    headers = {}
    if isinstance(exc, errors.RateLimited | errors.Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return problem(
        request, status_of(exc), exc.slug, exc.detail, exc.title, headers=headers, **exc.extra
    )


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _unsupported_body(request: Request, exc: RequestValidationError) -> bool:
    """A JSON route sent a body of another media type: FastAPI left it as bytes."""
    content_type = request.headers.get("content-type")
    return (
        content_type is not None
        and not _is_json(content_type)
        and any(
            tuple(err.get("loc", ())) == ("body",) and isinstance(err.get("input"), bytes)
            for err in exc.errors()
        )
    )


def _json_error_message(exc: RequestValidationError, err: dict[str, Any]) -> str:
    """Where the body stops being JSON: line, column and character, and what was expected."""
    position = err["loc"][1] if len(err.get("loc", ())) > 1 else 0
    document = exc.body if isinstance(exc.body, str) else ""
    before = document[: int(position)] if isinstance(position, int) else ""
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    reason = str(err.get("ctx", {}).get("error", "invalid JSON"))
    where = f"line {line}, column {column} (character {position})"
    return f"the body is not valid JSON: {reason} at {where}"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if _unsupported_body(request, exc):
        content_type = request.headers.get("content-type", "")
        return await _domain_error(
            request,
            errors.UnsupportedMediaType(
                f"the body must be application/json, not {content_type.split(';')[0]}"
            ),
        )
    items = [
        {
            "loc": list(err.get("loc", ())),
            "msg": _json_error_message(exc, err)
            if err.get("type") == "json_invalid"
            else str(err.get("msg", "invalid")),
        }
        for err in exc.errors()
    ]
    first = items[0] if items else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"])
    return problem(
        request,
        422,
        "validation",
        f"{where}: {first['msg']}" if where else str(first["msg"]),
        "Validation failed",
        errors=items,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # a body the framework could not parse: a refused body
        detail = exc.detail if isinstance(exc.detail, str) else "the body could not be parsed"
        error = {"loc": ["body"], "msg": detail}
        return problem(request, 422, "validation", detail, "Validation failed", errors=[error])
    slug = _SLUG_BY_STATUS.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such resource: {request.url.path}"
    return problem(request, exc.status_code, slug, detail, headers=dict(exc.headers or {}))


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    """A write the database refused that no service foresaw: the field, never a 500."""
    assert isinstance(exc, IntegrityError)
    violation = integrity.violation_of(exc, SQLModel.metadata)
    log.warning(
        "integrity_error", path=request.url.path, kind=violation.kind, columns=violation.columns
    )
    return await _domain_error(request, integrity.refusal(violation))


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A failure of the database or its disk: 503 when it is a temporary one, else 500."""
    fault = dbfaults.unavailable(exc)
    if fault is None:
        return await _unexpected_error(request, exc)
    log.warning(
        "database_unavailable",
        path=request.url.path,
        error_type=type(exc).__name__,
        detail=fault.detail,
    )
    return await _domain_error(request, fault)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
    return problem(
        request,
        500,
        "internal",
        "An unexpected error occurred; quote the request id when reporting it.",
        request_id=request_id,
        headers={"X-Request-ID": request_id} if request_id else None,
    )


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""
    app.add_exception_handler(errors.BurnbanError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(OSError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
