"""Fixed one-minute windows counted in the database, so every API process sees one count.

Each count is its own short committed transaction (`Database.counters`): a refused or failed
request still counts, and no request holds a counter row locked while it does its own work.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, delete, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from app import errors
from app.db import Database
from app.dbtypes import UtcDateTime
from app.ratelimit.models import RateLimitCounter

WINDOW = timedelta(minutes=1)
FAILED_LOGINS_PER_MINUTE = 10
_COUNTERS = RateLimitCounter.__table__  # type: ignore[attr-defined]

# Insert or increment, one statement on both databases (SQLite >= 3.35, PostgreSQL >= 9.5).
_INCREMENT = text(
    "INSERT INTO rate_limit_counters (key, window_start, count) "
    "VALUES (:key, :window_start, 1) ON CONFLICT (key, window_start) "
    "DO UPDATE SET count = rate_limit_counters.count + 1 RETURNING count"
).bindparams(bindparam("window_start", type_=UtcDateTime()))
# A key's first count in a new window forgets its older windows. A row that another
# transaction holds (PostgreSQL) is skipped rather than waited for, and forgotten at the key's
# next new window.
_FORGET_OLDER = delete(_COUNTERS).where(
    tuple_(_COUNTERS.c.key, _COUNTERS.c.window_start).in_(
        select(_COUNTERS.c.key, _COUNTERS.c.window_start)
        .where(
            _COUNTERS.c.key == bindparam("key"),
            _COUNTERS.c.window_start < bindparam("window_start", type_=UtcDateTime()),
        )
        .with_for_update(skip_locked=True)
    )
)


def window_of(now: datetime) -> datetime:
    seconds = WINDOW.total_seconds()
    start = math.floor(now.timestamp() / seconds) * seconds
    return datetime.fromtimestamp(start, UTC)


def seconds_left(now: datetime) -> int:
    """Whole seconds until the current window ends (at least 1): the Retry-After."""
    return max(1, math.ceil((window_of(now) + WINDOW - now).total_seconds()))


async def count(db: Database, key: str, now: datetime) -> int:
    """Add one to the key's count in this window; the new count."""
    async with db.counters() as conn:
        return await count_on(conn, key, now)


async def count_on(conn: AsyncConnection, key: str, now: datetime) -> int:
    """`count` on a counters connection already taken (`Database.counters`)."""
    window = window_of(now)
    params = {"key": key, "window_start": window}
    value = int((await conn.execute(_INCREMENT, params)).scalar_one())
    if value == 1:  # the key's first hit in a new window: its older windows are done with
        await conn.execute(_FORGET_OLDER, params)
    return value


async def current(db: Database, key: str, now: datetime) -> int:
    """The key's count in this window, without adding to it."""
    async with db.read() as session:
        conn = await session.connection()
        found = await conn.execute(
            select(_COUNTERS.c.count).where(
                _COUNTERS.c.key == key, _COUNTERS.c.window_start == window_of(now)
            )
        )
        return int(found.scalar() or 0)


def refuse_over(value: int, allowed: int, now: datetime, what: str) -> None:
    """RateLimited when the count `value` is over `allowed` a minute."""
    if value > allowed:
        raise errors.RateLimited(
            f"more than {allowed} {what} a minute; retry later", retry_after=seconds_left(now)
        )


def writes_of_key(key_hash: str) -> str:
    """A key's writes are counted by its hash: known without looking the key up."""
    return f"writes:key:{key_hash[:40]}"


def writes_of_user(user_id: str) -> str:
    return f"writes:user:{user_id}"


def login_key(username: str) -> str:
    return f"login:{username.strip().lower()}"


async def refuse_if_login_blocked(db: Database, username: str, now: datetime) -> None:
    """Before a password is checked: too many failures for this username this minute."""
    if await current(db, login_key(username), now) >= FAILED_LOGINS_PER_MINUTE:
        raise errors.RateLimited(
            f"more than {FAILED_LOGINS_PER_MINUTE} failed logins a minute for this username; "
            "retry later",
            retry_after=seconds_left(now),
        )


async def count_failed_login(db: Database, username: str, now: datetime) -> None:
    await count(db, login_key(username), now)
