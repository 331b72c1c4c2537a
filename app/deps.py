"""Request dependencies: the unit of work, the caller, and who may call what.

Each dependency FastAPI resolves costs ~40 µs of CPU a request, however little it does (0.165:
its cache key, scopes and kind are worked out anew for every node, at every place it appears
in the tree). So the dependencies every route has - the unit of work, the caller, the role
check - read the app's services from the request (`database_of` ...) rather than depending on
one dependency each, and the role check looks the caller up itself (on `POST /reports`, then,
that was 12 % of the API's instructions: bench/README.md). `POST /reports` now depends on its
credentials only (`WritingDep`) and looks its caller up with its scene. Routes off the hot path
take the services as dependencies (`DatabaseDep` ...), which read the same state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
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
_bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/token")
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


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
ApiKeyDep = Annotated[str | None, Depends(_api_key)]


async def get_principal(
    request: Request, session: SessionDep, bearer: BearerDep, api_key: ApiKeyDep
) -> Principal:
    """The caller, looked up once a request. A write is counted against
    BURNBAN_RATE_LIMIT_WRITES a minute per API key or user as the caller is looked up, in the
    same round trip and before the route's unit of work writes (429 beyond, invalid
    credentials or not)."""
    return await _principal(request, session, bearer, api_key)


async def _principal(
    request: Request,
    session: AsyncSession | None,
    bearer: HTTPAuthorizationCredentials | None,
    api_key: str | None,
) -> Principal:
    """`get_principal`'s lookup: a read's in the request's unit of work, `session`; a write's
    on the bookkeeping pool, as the write is counted (no `session` needed)."""
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
        principal = await auth_service.principal_from_token(
            session, bearer.credentials, secret_key, now
        )
    elif api_key:
        assert session is not None, "a read's caller is looked up in its unit of work"
        principal = await auth_service.principal_from_api_key(session, api_key)
    else:
        raise errors.Unauthorized("send a bearer token or an X-API-Key")
    if principal is None:
        raise errors.Unauthorized(auth_service.INVALID_CREDENTIALS)
    request.scope[_PRINCIPAL] = principal
    return principal


def _writing(
    request: Request, bearer: HTTPAuthorizationCredentials | None, api_key: str | None
) -> auth_service.Writing:
    token = None if bearer is None else bearer.credentials
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


async def get_writing(
    request: Request, bearer: BearerDep, api_key: ApiKeyDep
) -> auth_service.Writing:
    """A write's credentials, checked without the database, for a route that looks its caller
    up itself as it counts the write (`POST /reports`, with its scene): 401 if there are none,
    or if the token is not ours or has expired."""
    return _writing(request, bearer, api_key)


async def check_writer(request: Request, permit: Permit) -> Principal:
    """The caller of a write looked up and counted as `get_principal` does, then checked
    against `permit`, outside FastAPI's dependencies (see app/reports/router.py)."""
    bearer, api_key = await _bearer(request), await _api_key(request)
    return permit.check(await _principal(request, None, bearer, api_key))


WritingDep = Annotated[auth_service.Writing, Depends(get_writing)]
AdminDep = Annotated[Principal, Depends(require("admin"))]
AnyUserDep = Annotated[Principal, Depends(require("grid_worker", "officer", "supervisor", "admin"))]
GridReaderDep = Annotated[
    Principal,
    Depends(require("grid_worker", "officer", "supervisor", "admin", scope="grid:read")),
]
