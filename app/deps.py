"""Request dependencies: the unit of work, the caller, and who may call what.

A write's caller is looked up as its write is counted against BURNBAN_RATE_LIMIT_WRITES, before
the route's unit of work begins and before its body is looked at: 429, 401 and 403 come before
422. A read's caller is looked up in the request's unit of work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.auth import service as auth_service
from app.auth.principal import Permit, Principal
from app.clock import Clock
from app.config import Settings
from app.db import Database
from app.spatial.store import SpatialStore

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PRINCIPAL = "burnban.principal"  # the request's caller, once looked up (scope key)
# OAuth2's password flow (RFC 6749 §4.3), so that /docs' Authorize button logs in with a
# username and password; what arrives is the bearer token it issued.
_bearer = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    auto_error=False,
    description="A user's bearer token from POST /api/v1/auth/token (username and password)",
)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A third-party API key")


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def database_of(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def clock_of(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def store_of(request: Request) -> SpatialStore:
    store: SpatialStore = request.app.state.store
    return store


async def get_settings(request: Request) -> Settings:
    return settings_of(request)


async def get_database(request: Request) -> Database:
    return database_of(request)


async def get_clock(request: Request) -> Clock:
    return clock_of(request)


async def get_store(request: Request) -> SpatialStore:
    return store_of(request)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request, committed before the response is sent."""
    db = database_of(request)
    unit = db.write() if request.method in _WRITE_METHODS else db.read()
    async with unit as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
ClockDep = Annotated[Clock, Depends(get_clock)]
StoreDep = Annotated[SpatialStore, Depends(get_store)]
# scope="function": the session commits when the route returns, before the response goes out,
# so a failed commit is the caller's error and never a response that lied.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


BearerDep = Annotated[str | None, Depends(_bearer)]
ApiKeyDep = Annotated[str | None, Depends(_api_key)]


async def get_principal(
    request: Request, session: SessionDep, bearer: BearerDep, api_key: ApiKeyDep
) -> Principal:
    """The caller, looked up once a request. A write is counted against
    BURNBAN_RATE_LIMIT_WRITES a minute per API key or user, then its caller looked up (429
    beyond the limit, invalid credentials or not)."""
    return await _principal(request, session, bearer, api_key)


async def _principal(
    request: Request,
    session: AsyncSession | None,
    bearer: str | None,
    api_key: str | None,
) -> Principal:
    """`get_principal`'s lookup: a read's in the request's unit of work, `session`; a write's
    as the write is counted (`Database.counters`: no `session` needed)."""
    known: Principal | None = request.scope.get(_PRINCIPAL)
    if known is not None:
        return known
    db, now = database_of(request), clock_of(request).now()
    principal: Principal | None
    if request.method in _WRITE_METHODS:
        principal = await auth_service.writer(db, _writing(request, bearer, api_key), now)
    elif bearer is not None:
        assert session is not None, "a read's caller is looked up in its unit of work"
        secret_key = settings_of(request).secret_key
        principal = await auth_service.principal_from_token(session, bearer, secret_key, now)
    elif api_key:
        assert session is not None, "a read's caller is looked up in its unit of work"
        principal = await auth_service.principal_from_api_key(session, api_key)
    else:
        raise errors.Unauthorized("send a bearer token or an X-API-Key")
    if principal is None:
        raise errors.Unauthorized(auth_service.INVALID_CREDENTIALS)
    request.scope[_PRINCIPAL] = principal
    return principal


def _writing(request: Request, token: str | None, api_key: str | None) -> auth_service.Writing:
    settings, now = settings_of(request), clock_of(request).now()
    limit = settings.rate_limit_writes
    return auth_service.writing(token, api_key, settings.secret_key, limit, now)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(*roles: str, scope: str | None = None) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency letting through users with one of `roles` and API keys with `scope`.

    It looks the caller up itself rather than depending on `get_principal` (one dependency
    fewer on every route that checks a role); `get_principal` remembers the caller, so a
    route with both looks it up, and counts its write, once."""
    permit = Permit(roles, scope)

    async def check(
        request: Request, session: SessionDep, bearer: BearerDep, api_key: ApiKeyDep
    ) -> Principal:
        return permit.check(await _principal(request, session, bearer, api_key))

    return check


def require_writer(permit: Permit) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """`require` for a write route with a unit of work of its own (`POST /reports`): no
    request unit of work is opened for the caller's lookup."""

    async def check(request: Request, bearer: BearerDep, api_key: ApiKeyDep) -> Principal:
        assert request.method in _WRITE_METHODS, "a write's caller is counted, not read"
        return permit.check(await _principal(request, None, bearer, api_key))

    return check


AdminDep = Annotated[Principal, Depends(require("admin"))]
AnyUserDep = Annotated[Principal, Depends(require("grid_worker", "officer", "supervisor", "admin"))]
GridReaderDep = Annotated[
    Principal,
    Depends(require("grid_worker", "officer", "supervisor", "admin", scope="grid:read")),
]
