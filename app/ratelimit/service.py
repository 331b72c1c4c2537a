"""Fixed one-minute windows counted in the database, so every API process sees one count.

Each count is its own short committed transaction: a refused or failed request still counts,
and no request holds a counter row locked while it does its own work.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, delete, select, text

from app import errors
from app.auth import security
from app.db import Database
from app.dbdriver import DriverStatement
from app.dbtypes import UtcDateTime
from app.ratelimit.models import RateLimitCounter

WINDOW = timedelta(minutes=1)
FAILED_LOGINS_PER_MINUTE = 10
_COUNTERS = RateLimitCounter.__table__  # type: ignore[attr-defined]

# Insert or increment, one statement (SQLite ≥ 3.35, PostgreSQL ≥ 9.5), as bookkeeping: on
# PostgreSQL in autocommit, not waiting for the WAL flush (0.5 ms instead of 3-5 ms here).
_INCREMENT = DriverStatement(
    text(
        "INSERT INTO rate_limit_counters (key, window_start, count) "
        "VALUES (:key, :window_start, 1) ON CONFLICT (key, window_start) "
        "DO UPDATE SET count = rate_limit_counters.count + 1 RETURNING count"
    ).bindparams(bindparam("window_start", type_=UtcDateTime()))
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
    window = window_of(now)
    async with db.bookkeeping() as conn:
        [(value,)] = await _INCREMENT.rows(conn, {"key": key, "window_start": window})
        if value == 1:  # the key's first hit in a new window: its older windows are done with
            await conn.execute(
                delete(_COUNTERS).where(_COUNTERS.c.key == key, _COUNTERS.c.window_start < window)
            )
    return int(value)


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


async def limit(db: Database, key: str, allowed: int, now: datetime, what: str) -> None:
    """Count one more `what` for the key; RateLimited when that is over `allowed` a minute."""
    if await count(db, key, now) > allowed:
        raise errors.RateLimited(
            f"more than {allowed} {what} a minute; retry later", retry_after=seconds_left(now)
        )


def api_key_caller(api_key: str) -> str:
    """A key's writes are counted by its hash: known without looking the key up."""
    return "key:" + security.hash_api_key(api_key)[:40]


async def limit_writes(db: Database, caller: str, allowed: int, now: datetime) -> None:
    await limit(db, f"writes:{caller}", allowed, now, "writes")


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
