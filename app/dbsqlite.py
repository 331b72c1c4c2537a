"""SQLite set-up: WAL, a busy timeout, foreign keys, and write units that take the write lock.

Statements run on aiosqlite's thread, one per connection, so the event loop never waits inside
SQLite: a long scorecard or export, or a writer waiting for another process's write lock, holds
up that connection's thread only (app/db.py).

pysqlite's own transaction handling is off and we begin transactions ourselves (SQLAlchemy's
documented recipe for SQLite): read units `BEGIN` (deferred, a snapshot at their first read),
write units `BEGIN IMMEDIATE`, taking the database's one write lock at their first statement,
so that a write unit never fails with "database is locked" for having read before another
writer committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from geo.distance import haversine_m

IMMEDIATE = "burnban_immediate"  # execution option: this engine's units begin IMMEDIATE
HAVERSINE_FUNCTION = "burnban_haversine_m"


def tune(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """Set up every new connection of `engine`, and begin its transactions ourselves."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN: see `_on_begin`
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # Used by app.spatial.sqlite's distance conditions.
        dbapi_connection.create_function(HAVERSINE_FUNCTION, 4, haversine_m, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class WriteTurns:
    """One process's write units take turns, so that one at a time waits for the database's
    write lock: several waiting inside SQLite would each sleep in its busy handler (1, 2, 5,
    10 … 100 ms) and miss the moment the lock is free.

    A turn belongs to the asyncio task that took it, and that task may take it again (a
    request's write unit, and the counter it makes before its unit's first statement)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and task is self._owner:
            yield
            return
        async with self._lock:
            self._owner = task
            try:
                yield
            finally:
                self._owner = None
