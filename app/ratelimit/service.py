"""Fixed one-minute windows counted in the database, so every API process sees one count.

Each count is its own short committed transaction: a refused or failed request still counts,
and no request holds a counter row locked while it does its own work. A write's count is made
in the round trip that looks its caller up (`CountedRead`). A report's, on PostgreSQL, is made
in its scene's statement (app/spatial/postgis.py), which holds the caller's row until that one
statement commits, and which counts nothing if it fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, delete, select, text, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app import errors
from app.db import Database
from app.dbdriver import DriverStatement, Pooled
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
        await _forget_older_windows(conn, key, window, value)
    return int(value)


_FORGET_OLDER = DriverStatement(
    delete(_COUNTERS).where(
        _COUNTERS.c.key == bindparam("key"),
        _COUNTERS.c.window_start < bindparam("window_start", type_=UtcDateTime()),
    )
)


async def _forget_older_windows(
    conn: AsyncConnection | Pooled, key: str, window: datetime, value: int
) -> None:
    if value == 1:  # the key's first hit in a new window: its older windows are done with
        await _FORGET_OLDER.rows(conn, {"key": key, "window_start": window})


class CountedRead:
    """A read made together with a count: a write's caller, looked up as the write is counted.

    On PostgreSQL one statement, the count a data-modifying WITH of the read; on SQLite the
    count then the read, in one short write transaction. Either way on the bookkeeping
    connection (`Database.bookkeeping`), so the count stands alone. The read's parameters must
    not be named `rl_key` or `rl_window`, and its first column is never NULL in a row found.
    """

    def __init__(self, read: Select[Any]) -> None:
        self._read = DriverStatement(read)
        counted = (
            pg_insert(_COUNTERS)
            .values(key=bindparam("rl_key"), window_start=bindparam("rl_window"), count=1)
            .on_conflict_do_update(
                index_elements=[_COUNTERS.c.key, _COUNTERS.c.window_start],
                set_={"count": _COUNTERS.c.count + 1},
            )
            .returning(_COUNTERS.c.count)
            .cte("counted")
        )
        found = read.subquery("found")
        self._together = DriverStatement(
            select(counted.c.count, *found.c).select_from(counted.outerjoin(found, true()))
        )

    async def run(
        self, db: Database, key: str, now: datetime, params: Mapping[str, Any]
    ) -> tuple[int, tuple[Any, ...] | None]:
        """Count one more for the key in this window and read: the new count, and the row
        read (None if none)."""
        async with db.bookkeeping() as conn:
            return await self.run_on(conn, key, now, params)

    async def run_on(
        self,
        conn: AsyncConnection | Pooled,
        key: str,
        now: datetime,
        params: Mapping[str, Any],
    ) -> tuple[int, tuple[Any, ...] | None]:
        """`run` on a bookkeeping connection already taken (`Database.bookkeeping`)."""
        window = window_of(now)
        if conn.dialect.name == "postgresql":
            [(value, *row)] = await self._together.rows(
                conn, {**params, "rl_key": key, "rl_window": window}
            )
            found = None if row[0] is None else tuple(row)
        else:
            [(value,)] = await _INCREMENT.rows(conn, {"key": key, "window_start": window})
            found = await self._read.first(conn, params)
        await _forget_older_windows(conn, key, window, value)
        return int(value), found


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
