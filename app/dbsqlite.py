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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiosqlite
from sqlalchemy import Select, Table, TextClause, exc
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import TextualSelect
from sqlalchemy.types import TypeEngine
from sqlalchemy.util.concurrency import await_

from app.dbtypes import json_text

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


_WRITER = "burnban_writer"  # a connection's info: it holds its process's turn to write
_TURNS = "burnban_write_turns"  # a connection's info: its engine's WriteTurns


class WriteTurns:
    """One process's writers take turns (an asyncio lock) at trying for the database's write
    lock, so that one writer at a time waits on SQLite; a connection keeps its turn until it
    goes back to the pool, at the end of its unit of work (`app/db.py`)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._lock = asyncio.Lock()

    def adopt(self, info: dict[str, Any]) -> None:
        """A new connection's record: its writes take turns here."""
        info[_TURNS] = self

    async def begin(self, info: dict[str, Any], conn: sqlite3.Connection) -> None:
        """This process's turn (unless the connection has it), then BEGIN IMMEDIATE."""
        if _WRITER not in info:
            await self._lock.acquire()
            info[_WRITER] = True
        await begin_immediate(conn, self.timeout_s)

    def end(self, info: dict[str, Any]) -> None:
        """The connection is back in the pool: its turn, if it had one, is over."""
        if info.pop(_WRITER, False):
            self._lock.release()


async def begin_writing(conn: AsyncConnection) -> None:
    """Begin a write unit's transaction, unless it has begun: what SQLAlchemy statements do
    at a unit's first write (`app/db.py`), for statements run on sqlite3 directly. SQLAlchemy
    is told of the transaction, so that it commits it."""
    if not conn.in_transaction():
        await conn.begin()  # our begin event leaves the BEGIN to the first write
    db = raw(conn)
    if not db.in_transaction:
        record = await conn.get_raw_connection()
        await record.info[_TURNS].begin(record.info, db)


async def begin_pooled(info: dict[str, Any], conn: sqlite3.Connection) -> None:
    """Begin a write transaction on a pool's bare connection (`app.dbdriver.Pooled`), taking
    its process's turn: the turn is given back when the connection goes back to the pool."""
    await info[_TURNS].begin(info, conn)


async def begin_immediate(conn: sqlite3.Connection, timeout_s: float) -> None:
    """BEGIN IMMEDIATE, waiting for another process's write to end without blocking the loop.

    The tries are close together: the lock must not sit idle between them while the process
    that let it go comes back for its next request (one process would then do nearly all the
    writing while the others' clients wait). A process has one writer trying at a time.
    """
    deadline = time.monotonic() + timeout_s
    wait = _FIRST_WAIT_S
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "database is locked" not in str(error) or time.monotonic() + wait > deadline:
                    raise exc.OperationalError("BEGIN IMMEDIATE", None, error) from error
            await asyncio.sleep(wait)
            wait = min(wait * 2, _MAX_WAIT_S)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")


def begin_in_greenlet(conn: Connection) -> None:
    """`WriteTurns.begin` for a SQLAlchemy statement about to run (an engine event, inside
    SQLAlchemy's greenlet, which can await)."""
    info = conn.connection.info
    await_(info[_TURNS].begin(info, _sqlite3_of(conn)))


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def takes_write_lock(statement: Any) -> bool:
    """Whether a statement writes, or reads FOR UPDATE (SQLite: takes the write lock)."""
    if isinstance(statement, UpdateBase):
        return True
    if isinstance(statement, Select):
        return statement._for_update_arg is not None
    if isinstance(statement, TextualSelect):  # text(...).columns(...): INSERT ... RETURNING too
        statement = statement.element
    if isinstance(statement, TextClause | str):
        sql = statement.text if isinstance(statement, TextClause) else statement
        return sql.lstrip()[:7].upper().startswith(_WRITES)
    return False


def in_transaction(conn: Connection) -> bool:
    return _sqlite3_of(conn).in_transaction


def _sqlite3_of(conn: Connection) -> sqlite3.Connection:
    return sqlite3_of(conn.connection.driver_connection)


def sqlite3_of(driver: Any) -> sqlite3.Connection:
    """The sqlite3 connection inside a pool's driver connection (an InlineConnection)."""
    raw: sqlite3.Connection = driver._conn
    return raw


# Hot paths (a report's reads and writes) run their statements on sqlite3 itself: through
# SQLAlchemy each costs several times what SQLite takes to run it. Values are converted by
# their column types' own bind processors, so they are stored as SQLAlchemy stores them.
_DIALECT = SQLiteDialect_aiosqlite(json_serializer=json_text)


def raw(conn: AsyncConnection) -> sqlite3.Connection:
    """The sqlite3 connection of a unit of work's connection."""
    assert conn.sync_connection is not None, "a connection of a begun unit of work"
    return _sqlite3_of(conn.sync_connection)


def binder(type_: TypeEngine[Any]) -> Callable[[Any], Any]:
    """What SQLAlchemy would bind for a value of `type_` (a UtcDateTime's text, say)."""
    process = type_.dialect_impl(_DIALECT).bind_processor(_DIALECT)
    return process if process is not None else _same


def _same(value: Any) -> Any:
    return value


class RowInsert:
    """INSERT of rows into `table`'s `columns`, built once; `suffix` ends the statement."""

    def __init__(self, table: Table, columns: Sequence[str], suffix: str = "") -> None:
        self.sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)}){suffix}"
        )
        self._binders = [(column, binder(table.c[column].type)) for column in columns]

    def values(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """The row's values in column order; a column the row lacks is NULL."""
        return tuple(bind(row.get(column)) for column, bind in self._binders)

    def run(self, conn: sqlite3.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert the rows in the order given (their rowids follow it)."""
        if len(rows) == 1:
            conn.execute(self.sql, self.values(rows[0]))
        elif rows:
            conn.executemany(self.sql, [self.values(row) for row in rows])
