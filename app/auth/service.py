"""Users, logins and API keys: the rules, no HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Row, Select, bindparam
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import errors
from app.agencies.models import Agency
from app.audit import service as audit
from app.auth import security
from app.auth.models import KEY_PRINCIPAL_COLUMNS, USER_PRINCIPAL_COLUMNS, ApiKey, User
from app.auth.principal import Principal
from app.auth.schemas import ApiKeyCreate, UserCreate, UserPatch
from app.db import Database
from app.grid.models import Cell
from app.pagination import decode_cursor, encode_cursor
from app.ratelimit import service as ratelimit

_USERS = User.__table__  # type: ignore[attr-defined]
_KEYS = ApiKey.__table__  # type: ignore[attr-defined]
# Every authenticated request runs one of these lookups.
_ACTIVE_USER: Select[Any] = sa_select(*(_USERS.c[name] for name in USER_PRINCIPAL_COLUMNS)).where(
    _USERS.c.id == bindparam("id"), _USERS.c.is_active
)
_LIVE_KEY: Select[Any] = sa_select(*(_KEYS.c[name] for name in KEY_PRINCIPAL_COLUMNS)).where(
    _KEYS.c.key_hash == bindparam("hash"), _KEYS.c.revoked_at.is_(None)
)


async def authenticate(session: AsyncSession, username: str, password: str) -> User | None:
    """The active user with these credentials, or None (same cost either way)."""
    user = (await session.exec(select(User).where(User.username == username))).first()
    ok = security.verify_password(user.password_hash if user else None, password)
    return user if ok and user is not None and user.is_active else None


async def log_in(db: Database, username: str, password: str, now: datetime) -> User:
    """The user with these credentials. Failures are counted per username in their own
    transaction; a username over the limit is refused before its password is even checked."""
    await ratelimit.refuse_if_login_blocked(db, username, now)
    async with db.read() as session:
        user = await authenticate(session, username, password)
        if user is not None:
            session.expunge(user)  # keep its loaded fields past the read's rollback
    if user is None:
        await ratelimit.count_failed_login(db, username, now)
        raise errors.Unauthorized("wrong username or password")
    return user


def issue_token(user: User, secret_key: str, now: datetime, minutes: int) -> str:
    return security.issue_token(user.id, secret_key, now, timedelta(minutes=minutes))


async def principal_from_token(
    session: AsyncSession, token: str, secret_key: str, now: datetime
) -> Principal | None:
    user_id = security.token_subject(token, secret_key, now)
    if user_id is None:
        return None
    conn = await session.connection()
    return _user_principal((await conn.execute(_ACTIVE_USER, {"id": user_id})).first())


async def principal_from_api_key(session: AsyncSession, key: str) -> Principal | None:
    if not key.startswith(security.API_KEY_PREFIX):
        return None
    conn = await session.connection()
    found = await conn.execute(_LIVE_KEY, {"hash": security.hash_api_key(key)})
    return _key_principal(found.first())


INVALID_CREDENTIALS = "the token or API key is invalid or expired"


@dataclass(frozen=True)
class Writing:
    """A write about to be made: its credentials, checked as far as they can be without the
    database (a token's signature and expiry), and the writes a minute its caller is allowed.
    Whose the credentials are is looked up as the write is counted."""

    kind: Literal["user", "api_key"]
    lookup: str  # the user's id, or the key's SHA-256
    counted_as: str  # the rate limit's key for its writes
    allowed_writes: int

    @property
    def params(self) -> dict[str, str]:
        """The lookup's parameters in `_ACTIVE_USER` or `_LIVE_KEY`."""
        return {"id" if self.kind == "user" else "hash": self.lookup}


def writing(
    token: str | None, api_key: str | None, secret_key: str, allowed_writes: int, now: datetime
) -> Writing:
    """A write with a bearer token (refused at once if it is not ours or has expired, and not
    counted) or else an API key (`key_writing`)."""
    if token is not None:
        user_id = security.token_subject(token, secret_key, now)
        if user_id is None:
            raise errors.Unauthorized(INVALID_CREDENTIALS)
        return Writing("user", user_id, ratelimit.writes_of_user(user_id), allowed_writes)
    if api_key:
        return key_writing(api_key, allowed_writes)
    raise errors.Unauthorized("send a bearer token or an X-API-Key")


def key_writing(api_key: str, allowed_writes: int) -> Writing:
    """A write with an API key, counted by its hash whether the key is ours or not; one without
    our prefix is not looked up (no key's hash is empty)."""
    key_hash = security.hash_api_key(api_key)
    lookup = key_hash if api_key.startswith(security.API_KEY_PREFIX) else ""
    return Writing("api_key", lookup, ratelimit.writes_of_key(key_hash), allowed_writes)


async def writer(db: Database, write: Writing, now: datetime) -> Principal | None:
    """The caller making the write (None if none), its write counted first, committed at once
    whatever becomes of it: refused (RateLimited) over its allowed writes, found or not."""
    async with db.counters() as conn:
        writes = await ratelimit.count_on(conn, write.counted_as, now)
        found = None
        if writes <= write.allowed_writes and write.lookup:
            query = _ACTIVE_USER if write.kind == "user" else _LIVE_KEY
            found = (await conn.execute(query, write.params)).first()
    ratelimit.refuse_over(writes, write.allowed_writes, now, "writes")
    return _user_principal(found) if write.kind == "user" else _key_principal(found)


def _user_principal(row: Row[Any] | None) -> Principal | None:
    if row is None:
        return None
    return Principal(
        kind="user",
        id=row.id,
        name=row.name,
        role=row.role,
        cell_code=row.cell_code,
        agency_code=row.agency_code,
    )


def _key_principal(row: Row[Any] | None) -> Principal | None:
    if row is None:
        return None
    return Principal(
        kind="api_key",
        id=row.id,
        name=row.name,
        scopes=frozenset(row.scopes),
        cell_code=row.cell_code,
    )


async def create_user(
    session: AsyncSession, data: UserCreate, actor: Principal | None, now: datetime
) -> User:
    await _check_binding(session, data.role, data.cell_code, data.agency_code)
    taken = await session.exec(select(User.id).where(User.username == data.username))
    if taken.first() is not None:
        raise errors.Conflict(f"username {data.username!r} is taken")
    user = User(
        username=data.username,
        name=data.name,
        role=data.role,
        password_hash=security.hash_password(data.password),
        cell_code=data.cell_code,
        agency_code=data.agency_code,
        created_at=now,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent create won the race for the username
        raise errors.Conflict(f"username {data.username!r} is taken") from exc
    audit.record(session, actor, "user.created", "user", user.id, now, role=user.role)
    return user


async def _check_binding(
    session: AsyncSession, role: str, cell_code: str | None, agency_code: str | None
) -> None:
    """A grid worker needs a village, an officer an agency, a supervisor a cell."""
    needs_cell = role in ("grid_worker", "supervisor")
    needs_agency = role == "officer"
    if needs_cell and not cell_code:
        raise _invalid("cell_code", f"a {role} must be bound to a cell")
    if needs_agency and not agency_code:
        raise _invalid("agency_code", "an officer must be bound to an agency")
    if cell_code and not needs_cell:
        raise _invalid("cell_code", f"a {role} is not bound to a cell")
    if agency_code and not needs_agency:
        raise _invalid("agency_code", f"a {role} is not bound to an agency")
    if cell_code:
        cell = await _cell(session, cell_code)
        if role == "grid_worker" and cell.level != "village":
            raise _invalid("cell_code", "a grid worker must be bound to a village cell")
    if agency_code and await session.get(Agency, agency_code) is None:
        raise _invalid("agency_code", f"unknown agency {agency_code!r}")


async def list_users(
    session: AsyncSession, role: str | None, limit: int, cursor: str | None
) -> tuple[list[User], str | None]:
    """Users in username order, one page at a time."""
    query = select(User).order_by(col(User.username)).limit(limit + 1)
    if role is not None:
        query = query.where(User.role == role)
    if cursor is not None:
        (after,) = decode_cursor(cursor, 1)
        query = query.where(col(User.username) > str(after))
    rows = list(await session.exec(query))
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1].username)
    return rows, None


async def get_user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise errors.NotFound(f"no user {user_id!r}")
    return user


async def update_user(
    session: AsyncSession, user_id: str, patch: UserPatch, actor: Principal, now: datetime
) -> User:
    """Change a user's name, role, binding, password or whether it is active. The binding is
    judged as it will be (a new role with its new cell or agency); a disabled user's tokens
    stop working at once, since every request looks its caller up. An admin does not disable
    or demote itself (no one would be left to undo it)."""
    user = await get_user(session, user_id)
    given = patch.model_fields_set
    if user.id == actor.id and (
        patch.active is False or ("role" in given and patch.role != "admin")
    ):
        field = "active" if patch.active is False else "role"
        raise _invalid(field, "an admin may not disable or demote itself")
    for field in ("name", "role", "active", "password"):
        if field in given and getattr(patch, field) is None:
            raise _invalid(field, f"{field} cannot be null")
    role = patch.role if patch.role is not None else user.role
    cell_code = patch.cell_code if "cell_code" in given else user.cell_code
    agency_code = patch.agency_code if "agency_code" in given else user.agency_code
    if "role" in given and patch.role != user.role:  # a new role drops the old binding
        cell_code = patch.cell_code if "cell_code" in given else None
        agency_code = patch.agency_code if "agency_code" in given else None
    await _check_binding(session, role, cell_code, agency_code)
    changed = {
        field: value
        for field, value in (
            ("name", patch.name if "name" in given else user.name),
            ("role", role),
            ("cell_code", cell_code),
            ("agency_code", agency_code),
            ("is_active", patch.active if "active" in given else user.is_active),
        )
        if getattr(user, field) != value
    }
    for field, value in changed.items():
        setattr(user, field, value)
    if patch.password is not None:
        user.password_hash = security.hash_password(patch.password)
        changed["password"] = "reset"
    session.add(user)
    await session.flush()
    if changed:
        detail = {k: v for k, v in changed.items() if k != "name"}
        audit.record(session, actor, "user.updated", "user", user.id, now, **detail)
    return user


async def _cell(session: AsyncSession, code: str) -> Cell:
    cell = (await session.exec(select(Cell).where(Cell.code == code))).first()
    if cell is None:
        raise _invalid("cell_code", f"unknown cell {code!r}")
    return cell


def _invalid(field: str, msg: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(msg, errors=[{"loc": ["body", field], "msg": msg}])


async def create_api_key(
    session: AsyncSession, data: ApiKeyCreate, actor: Principal | None, now: datetime
) -> tuple[ApiKey, str]:
    """The stored key and the key itself, which is never stored and cannot be shown again."""
    if data.cell_code:
        await _cell(session, data.cell_code)
    material = security.new_api_key()
    row = ApiKey(
        name=data.name,
        key_hash=material.key_hash,
        prefix=material.prefix,
        scopes=sorted(set(data.scopes)),
        cell_code=data.cell_code,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    audit.record(session, actor, "apikey.created", "api_key", row.id, now, scopes=row.scopes)
    return row, material.key


async def list_api_keys(session: AsyncSession) -> Sequence[ApiKey]:
    rows = await session.exec(select(ApiKey).order_by(col(ApiKey.created_at).desc()))
    return list(rows)


async def revoke_api_key(
    session: AsyncSession, key_id: str, actor: Principal | None, now: datetime
) -> None:
    row = await session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        raise errors.NotFound(f"no API key {key_id!r}")
    row.revoked_at = now
    session.add(row)
    audit.record(session, actor, "apikey.revoked", "api_key", row.id, now)
