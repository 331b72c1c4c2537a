"""Request dependencies: the unit of work, the caller, and who may call what."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.auth import service as auth_service
from app.auth.principal import Principal
from app.clock import Clock
from app.config import Settings
from app.db import Database
from app.spatial.store import SpatialStore

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/token")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A third-party API key")


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_store(request: Request) -> SpatialStore:
    store: SpatialStore = request.app.state.store
    return store


async def get_session(
    request: Request, db: Annotated[Database, Depends(get_database)]
) -> AsyncIterator[AsyncSession]:
    """One unit of work per request, committed before the response is sent."""
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


async def get_principal(
    request: Request,
    db: DatabaseDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The caller. A write is counted against BURNBAN_RATE_LIMIT_WRITES a minute per API key
    or user as the caller is looked up, in the same round trip and before the route's unit
    of work writes (429 beyond, invalid credentials or not)."""
    now = clock.now()
    writes = request.method in _WRITE_METHODS
    principal: Principal | None = None
    if bearer is not None:
        token, secret = bearer.credentials, settings.secret_key
        principal = await (
            auth_service.writer_from_token(db, token, secret, settings.rate_limit_writes, now)
            if writes
            else auth_service.principal_from_token(session, token, secret, now)
        )
    elif api_key:
        principal = await (
            auth_service.writer_from_api_key(db, api_key, settings.rate_limit_writes, now)
            if writes
            else auth_service.principal_from_api_key(session, api_key)
        )
    else:
        raise errors.Unauthorized("send a bearer token or an X-API-Key")
    if principal is None:
        raise errors.Unauthorized("the token or API key is invalid or expired")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(
    *roles: str, scope: str | None = None
) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency letting through users with one of `roles` and API keys with `scope`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.has_role(*roles) or (scope is not None and principal.has_scope(scope)):
            return principal
        raise errors.Forbidden("your role or key does not allow this")

    return check


AdminDep = Annotated[Principal, Depends(require("admin"))]
AnyUserDep = Annotated[Principal, Depends(require("grid_worker", "officer", "supervisor", "admin"))]
GridReaderDep = Annotated[
    Principal,
    Depends(require("grid_worker", "officer", "supervisor", "admin", scope="grid:read")),
]
