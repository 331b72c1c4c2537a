"""SQLite connections for the async engine: statements run inline, writers wait asynchronously.

aiosqlite runs every call on a worker thread and wakes the event loop for each answer: about
0.4 ms a statement here, while SQLite itself answers a primary-key or R*Tree lookup in a few
microseconds. So our connections keep aiosqlite's interface (SQLAlchemy's aiosqlite dialect
drives them unchanged) but run each call on the event loop's thread at once.

Nothing may then wait inside SQLite: a writer that finds another process holding the write
lock would freeze the event loop for the busy timeout. So `BEGIN IMMEDIATE` is tried without
a busy timeout and retried after an `asyncio.sleep` until the configured timeout has passed
(`begin_immediate`), and the writers of one process queue on an asyncio lock instead of on
SQLite. In WAL mode readers never wait for writers. A write unit takes both locks at its
first write or locking read (`app/db.py`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import aiosqlite
from sqlalchemy import Select, TextClause, exc
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.util.concurrency import await_

_FIRST_WAIT_S = 0.0002
_MAX_WAIT_S = 0.001


class _Inline:
    """Stands in for the queue to aiosqlite's worker thread: runs each call at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:  # noqa: BLE001 - handed to the awaiting caller
            if future is not None:
                future.set_exception(error)
            return
        if future is not None:
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection without its thread: awaiting a call runs it, then and there."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _Inline()  # type: ignore[assignment]

    def __await__(self) -> Any:
        return self._connect().__await__()  # no worker thread to start


def connector(path: str) -> Callable[[], InlineConnection]:
    """The engine's `async_creator` for a database file (or ":memory:")."""

    def connect() -> InlineConnection:
        # pysqlite's own transaction handling is off: we emit BEGIN ourselves (app/db.py).
        return InlineConnection(lambda: sqlite3.connect(path, isolation_level=None))

    return connect


def begin_immediate(conn: Connection, timeout_s: float) -> None:
    """BEGIN IMMEDIATE, waiting for another process's write to end without blocking the loop.

    Runs inside SQLAlchemy's greenlet (an engine event), so it can await a sleep. The tries
    are close together: the lock must not sit idle between them while the process that let
    it go comes back for its next request (one process would then do nearly all the writing
    while the others' clients wait). A process has one writer trying at a time (app/db.py).
    The statements go to sqlite3 directly: through SQLAlchemy each cost ten times as much,
    and the one after the BEGIN is paid holding the lock.
    """
    raw = _sqlite3_of(conn)
    deadline = time.monotonic() + timeout_s
    wait = _FIRST_WAIT_S
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "database is locked" not in str(error) or time.monotonic() + wait > deadline:
                    raise exc.OperationalError("BEGIN IMMEDIATE", None, error) from error
            await_(asyncio.sleep(wait))
            wait = min(wait * 2, _MAX_WAIT_S)
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def takes_write_lock(statement: Any) -> bool:
    """Whether a statement writes, or reads FOR UPDATE (SQLite: takes the write lock)."""
    if isinstance(statement, UpdateBase):
        return True
    if isinstance(statement, Select):
        return statement._for_update_arg is not None
    if isinstance(statement, TextClause | str):
        sql = statement.text if isinstance(statement, TextClause) else statement
        return sql.lstrip()[:7].upper().startswith(_WRITES)
    return False


def in_transaction(conn: Connection) -> bool:
    return _sqlite3_of(conn).in_transaction


def _sqlite3_of(conn: Connection) -> sqlite3.Connection:
    driver: Any = conn.connection.driver_connection  # an InlineConnection
    raw: sqlite3.Connection = driver._conn
    return raw
