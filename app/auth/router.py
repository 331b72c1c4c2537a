"""HTTP routes for logins, users and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.security import OAuth2PasswordRequestForm

from app.auth import service
from app.auth.models import ApiKey, User
from app.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    Role,
    Token,
    UserCreate,
    UserOut,
    UserPatch,
)
from app.deps import AdminDep, AnyUserDep, ClockDep, DatabaseDep, SessionDep, SettingsDep
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(tags=["auth"])


_FORM = "application/x-www-form-urlencoded"


@router.post(
    "/auth/token",
    operation_id="issue_token",
    response_model=Token,
    openapi_extra={
        "requestBody": {
            "content": {_FORM: {"example": {"username": "admin", "password": "a long passphrase"}}}
        }
    },
)
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Token:
    """Exchange a username and password for an expiring bearer token (10 failures a minute
    per username, then 429 until the minute is over)."""
    user = await service.log_in(db, form.username, form.password, clock.now())
    token = service.issue_token(
        user, settings.secret_key, clock.now(), settings.access_token_minutes
    )
    return Token(access_token=token, expires_in=settings.access_token_minutes * 60)


def _user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


@router.post("/users", operation_id="create_user", status_code=201, response_model=UserOut)
async def create_user(
    data: UserCreate, response: Response, session: SessionDep, clock: ClockDep, actor: AdminDep
) -> UserOut:
    """Create a user bound to a village (grid worker), agency (officer) or cell (supervisor)."""
    user = await service.create_user(session, data, actor, clock.now())
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return _user_out(user)


@router.get("/users/me", operation_id="who_am_i", response_model=UserOut)
async def who_am_i(session: SessionDep, principal: AnyUserDep) -> UserOut:
    """The calling user, with role, cell and agency."""
    user = await session.get(User, principal.id)
    assert user is not None  # the principal was loaded from it in this unit of work
    return _user_out(user)


# After /users/me, which a user id would otherwise shadow.
@router.get("/users", operation_id="list_users", response_model=Page[UserOut])
async def list_users(
    session: SessionDep,
    _: AdminDep,
    role: Role | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[UserOut]:
    """Users in username order, disabled ones included (`active`)."""
    rows, next_cursor = await service.list_users(session, role, limit, cursor)
    return Page(items=[_user_out(row) for row in rows], next_cursor=next_cursor)


@router.get("/users/{user_id}", operation_id="get_user", response_model=UserOut)
async def get_user(user_id: str, session: SessionDep, _: AdminDep) -> UserOut:
    """One user."""
    return _user_out(await service.get_user(session, user_id))


@router.patch("/users/{user_id}", operation_id="update_user", response_model=UserOut)
async def update_user(
    user_id: str, data: UserPatch, session: SessionDep, clock: ClockDep, actor: AdminDep
) -> UserOut:
    """Disable or enable a user, change its role, cell or agency, or reset its password."""
    return _user_out(await service.update_user(session, user_id, data, actor, clock.now()))


def _key_out(row: ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(row, from_attributes=True)


@router.post(
    "/apikeys", operation_id="create_api_key", status_code=201, response_model=ApiKeyCreated
)
async def create_api_key(
    data: ApiKeyCreate, session: SessionDep, clock: ClockDep, actor: AdminDep
) -> ApiKeyCreated:
    """Create an API key; the key is in this answer only."""
    row, key = await service.create_api_key(session, data, actor, clock.now())
    return ApiKeyCreated(**_key_out(row).model_dump(), key=key)


@router.get("/apikeys", operation_id="list_api_keys", response_model=list[ApiKeyOut])
async def list_api_keys(session: SessionDep, _: AdminDep) -> list[ApiKeyOut]:
    """Every API key, without the keys themselves."""
    return [_key_out(row) for row in await service.list_api_keys(session)]


@router.delete("/apikeys/{key_id}", operation_id="revoke_api_key", status_code=204)
async def revoke_api_key(
    key_id: str, session: SessionDep, clock: ClockDep, actor: AdminDep
) -> Response:
    """Revoke an API key; it stops working at once."""
    await service.revoke_api_key(session, key_id, actor, clock.now())
    return Response(status_code=204)
