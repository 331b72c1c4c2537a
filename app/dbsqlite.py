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
import math
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from geo.distance import haversine_m

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not on Windows: writers of several processes then wait inside SQLite
    fcntl = None

_TURNS: WeakKeyDictionary[Engine, WriteTurns] = WeakKeyDictionary()
IMMEDIATE = "burnban_immediate"  # execution option: this engine's units begin IMMEDIATE
STATEMENT_TIMEOUT = "burnban_statement_timeout"  # execution option: a unit's own ceiling, s
_DEADLINE = "burnban_deadline"  # connection info: when the running statement must stop
_PROGRESS_STEPS = 10_000  # virtual machine instructions between looks at the clock
HAVERSINE_FUNCTION = "burnban_haversine_m"


def tune(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """Set up every new connection of `engine`, and begin its transactions ourselves; its
    writers take turns (`turns_of`)."""
    _TURNS[engine.sync_engine] = WriteTurns(engine.url.database, busy_timeout_ms / 1000)

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


def turns_of(engine: AsyncEngine) -> WriteTurns:
    """The write turns of a SQLite engine set up by `tune`."""
    return _TURNS[engine.sync_engine]


class _Deadline:
    """When the statement running on a connection must stop (never, between statements)."""

    def __init__(self) -> None:
        self.at = math.inf

    def passed(self) -> bool:
        """SQLite's progress handler, on aiosqlite's thread: true interrupts the statement."""
        return time.monotonic() > self.at


def limit_statements(engine: AsyncEngine, seconds: float) -> None:
    """Stop a statement of `engine` that runs longer than `seconds` (a unit may allow more:
    the STATEMENT_TIMEOUT execution option). SQLite calls a progress handler every few thousand
    instructions; past the statement's deadline it interrupts it, which fails as SQLITE_INTERRUPT
    ("interrupted"). Between statements, commits and rollbacks included, there is no deadline."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        deadline = record.info[_DEADLINE] = _Deadline()
        dbapi_connection.run_async(
            lambda conn: conn.set_progress_handler(deadline.passed, _PROGRESS_STEPS)
        )

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _start(conn: Any, *_: Any) -> None:
        deadline = conn.info.get(_DEADLINE)
        if deadline is not None:
            allowed = conn.get_execution_options().get(STATEMENT_TIMEOUT, seconds)
            deadline.at = time.monotonic() + allowed

    def _stop(conn: Any, *_: Any) -> None:
        deadline = conn.info.get(_DEADLINE)
        if deadline is not None:
            deadline.at = math.inf

    for done in ("after_cursor_execute", "commit", "rollback"):
        event.listen(engine.sync_engine, done, _stop)

    @event.listens_for(engine.sync_engine, "handle_error")
    def _failed(context: Any) -> None:
        if context.connection is not None:
            _stop(context.connection)


class WriteTurns:
    """Write units take turns at the database's one write lock: one at a time in a process (an
    asyncio lock), and across the processes serving one database file by an OS file lock
    beside it (`<file>-writer`), which the kernel gives the next process waiting as soon as it
    is let go. Waiting inside SQLite instead, each waiter sleeps in its busy handler (1, 2, 5,
    10 ... 100 ms) and misses the moment the lock is free: one API worker did nearly all the
    writing while the other's clients waited.

    A turn belongs to the asyncio task that took it, and that task may take it again (a
    request's write unit, and the counter it makes before its unit's first statement). A
    writer that waits longer than `timeout_s` fails as SQLite's own would: database is locked.
    """

    def __init__(self, database: str | None, timeout_s: float) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        in_memory = database in (None, "", ":memory:")
        self._path = None if in_memory or fcntl is None else f"{database}-writer"
        self._timeout_s = timeout_s

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and task is self._owner:
            yield
            return
        async with self._lock:
            fd = await self._file_lock()
            self._owner = task
            try:
                yield
            finally:
                self._owner = None
                if fd is not None:
                    os.close(fd)  # lets the file lock go

    async def _file_lock(self) -> int | None:
        """The file lock, on a descriptor of its own (closing it lets the lock go)."""
        locks = fcntl
        if self._path is None or locks is None:
            return None
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            locks.flock(fd, locks.LOCK_EX | locks.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        waiting = asyncio.get_running_loop().run_in_executor(None, locks.flock, fd, locks.LOCK_EX)
        try:
            async with asyncio.timeout(self._timeout_s):
                await asyncio.shield(waiting)
        except BaseException as error:
            # Given up (timed out, or the request went away): the thread still waiting closes
            # the descriptor once it has the lock, or at once if it failed.
            waiting.add_done_callback(lambda _: os.close(fd))
            if isinstance(error, TimeoutError):
                locked = sqlite3.OperationalError("database is locked")
                raise exc.OperationalError("BEGIN IMMEDIATE", None, locked) from error
            raise
        return fd
