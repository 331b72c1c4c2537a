"""Engine, sessions and the unit of work for the configured database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import MetaData, event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util.concurrency import greenlet_spawn
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app import dbsqlite, errors
from app.config import Settings
from app.dbdriver import Pooled
from app.dbpool import FirstComePool
from app.dbtypes import json_text
from app.spatial.sqlite import register_functions

metadata: MetaData = SQLModel.metadata

_IMMEDIATE = "burnban_immediate"
_DATABASE = "burnban_database"  # a session's info: the Database it is a unit of work of
# The write turns of each SQLite engine, shared with its bookkeeping engine.
_WRITE_TURNS: WeakKeyDictionary[Engine, dbsqlite.WriteTurns] = WeakKeyDictionary()


def create_engine(url: URL, settings: Settings) -> AsyncEngine:
    """An async engine for the URL, tuned for the dialect.

    Pools keep `db_pool_size` connections and open no more: a pool's overflow connections are
    closed when they come back to a full pool, so under load a pool that overflows keeps
    connecting (a new PostgreSQL backend, or a SQLite connection with a cold page cache,
    every few requests). A request waits for a connection instead.
    """
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url,
            async_creator=dbsqlite.connector(url.database or ":memory:"),
            pool_size=settings.db_pool_size,
            max_overflow=0,
            poolclass=FirstComePool,
            json_serializer=json_text,
        )
        _tune_sqlite(engine, dbsqlite.WriteTurns(settings.sqlite_busy_timeout_ms / 1000))
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        poolclass=FirstComePool,
        json_serializer=json_text,
        # No ping before each checkout (a round trip per unit of work): a connection found
        # dead fails its request once, and the pool then replaces every older connection.
    )


def _tune_sqlite(engine: AsyncEngine, turns: dbsqlite.WriteTurns) -> None:
    """WAL, a busy timeout, foreign keys, transactions begun by us, and the process's writers
    taking `turns` (shared by the engines of one database file).

    pysqlite's own transaction handling is off (app/dbsqlite.py) and we begin transactions
    ourselves. Read units begin DEFERRED. A write unit reads in autocommit, like PostgreSQL's
    READ COMMITTED, and begins IMMEDIATE - takes the database's one write lock - right before
    its first write or locking read: so it holds the lock for its writes only, and never fails
    with "database is locked" for having read before another writer committed.
    """
    busy_timeout_ms = turns.timeout_s * 1000
    _WRITE_TURNS[engine.sync_engine] = turns

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        register_functions(dbapi_connection)
        turns.adopt(record.info)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if not conn.get_execution_options().get(_IMMEDIATE, False):
            conn.exec_driver_sql("BEGIN")

    @event.listens_for(engine.sync_engine, "before_execute")
    def _before_execute(conn: Any, statement: Any, *_: Any) -> None:
        if (
            conn.get_execution_options().get(_IMMEDIATE, False)
            and dbsqlite.takes_write_lock(statement)
            and not dbsqlite.in_transaction(conn)
        ):
            dbsqlite.begin_in_greenlet(conn)

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:  # the unit is over
            turns.end(record.info)


def _bookkeeping_engine(engine: AsyncEngine) -> AsyncEngine:
    """Connections for bookkeeping (see `Database.bookkeeping`): a pool apart, so that a unit
    of work holding a connection never waits for another from the pool it holds one of. Half
    as many as the units' pool keeps, and no more: a counter is one short statement, and
    waits a moment for a connection rather than connect for it (a pool's overflow
    connections are closed when they come back, so a pool that overflows keeps connecting).

    PostgreSQL: in autocommit, committing without waiting for the WAL to reach the disk.
    SQLite: the same file, its writers taking turns with the units' (`_tune_sqlite`).
    """
    size = max(2, engine.pool.size() // 2)  # type: ignore[attr-defined]
    if engine.dialect.name == "sqlite":
        side = create_async_engine(
            engine.url,
            async_creator=dbsqlite.connector(engine.url.database or ":memory:"),
            pool_size=size,
            max_overflow=0,
            poolclass=FirstComePool,
        )
        _tune_sqlite(side, _WRITE_TURNS[engine.sync_engine])
        return side
    return create_async_engine(
        engine.url,
        pool_size=size,
        max_overflow=0,
        poolclass=FirstComePool,
        isolation_level="AUTOCOMMIT",
        connect_args={"server_settings": {"synchronous_commit": "off"}},
    )


@dataclass(frozen=True)
class BareUnit:
    """A unit of work on a pool's bare connection (`Database.bare`): the hot path's, whose
    statements run on the driver (app/dbdriver.py) and need no session around them."""

    db: Database
    conn: Pooled


Unit = AsyncSession | BareUnit


async def _writing(unit: Unit) -> bool:
    """Whether a SQLite unit of work has begun writing (holds the write lock)."""
    if isinstance(unit, BareUnit):
        return bool(unit.conn.driver.in_transaction)
    return unit.in_transaction() and dbsqlite.raw(await unit.connection()).in_transaction


class Database:
    """Session factories for one engine, or for one connection in tests.

    Each request is one unit of work: `write()` for requests that change data, `read()` for
    the rest, `bare()` for a report (its statements all run on the driver). Services flush,
    never commit. A unit knows its Database (`of`).
    """

    def __init__(self, engine: AsyncEngine, connection: AsyncConnection | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        info = {_DATABASE: self}
        self._bookkeeper: AsyncEngine | None = None
        self._connection = connection
        if connection is not None:
            # Tests: every unit of work is a savepoint inside the test's rolled-back transaction.
            shared = async_sessionmaker(
                connection,
                class_=AsyncSession,
                expire_on_commit=False,
                join_transaction_mode="create_savepoint",
                info=info,
            )
            self._read, self._write = shared, shared
        else:
            self._read = async_sessionmaker(
                engine, class_=AsyncSession, expire_on_commit=False, info=info
            )
            write_engine = engine.execution_options(**{_IMMEDIATE: True})
            self._write = async_sessionmaker(
                write_engine, class_=AsyncSession, expire_on_commit=False, info=info
            )
            self._bookkeeper = _bookkeeping_engine(engine)

    @staticmethod
    def of(unit: Unit) -> Database:
        """The Database whose unit of work `unit` is."""
        if isinstance(unit, BareUnit):
            return unit.db
        db: Database = unit.info[_DATABASE]
        return db

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that commits when the block ends without error. One that never began
        (no statement, nothing added) has nothing to commit or close and is left alone: a
        commit and close cost two greenlet switches and SQLAlchemy's transaction bookkeeping."""
        session = self._write()
        try:
            yield session
        except BaseException:
            if session.in_transaction():
                await session.rollback()
                await session.close()
            raise
        if session.in_transaction():  # any statement began it, and so did an add()
            try:
                await session.commit()
            finally:
                await session.close()  # rolls back what a failed commit left

    @asynccontextmanager
    async def bare(self) -> AsyncIterator[BareUnit]:
        """A write unit of work on a bare connection of the units' pool, for a request whose
        statements all run on the driver: a report's. ~0.1 ms of CPU less than a session's.

        PostgreSQL: no transaction; each statement stands alone, so the unit's writes are one
        statement (a report's filing is one function call). SQLite: reads in autocommit, and
        the first write begins the transaction (`Pooled.begin_writing`), committed when the
        block ends without error, rolled back otherwise. In tests, a savepoint of the test's
        transaction.
        """
        if self._connection is not None:
            async with self._connection.begin_nested():
                record = await self._connection.get_raw_connection()
                yield BareUnit(self, self._bare(record.driver_connection, record.info))
            return
        async with self._pooled(self.engine) as conn:
            yield BareUnit(self, conn)

    @asynccontextmanager
    async def bookkeeping(
        self, unit: Unit | None = None
    ) -> AsyncIterator[AsyncConnection | Pooled]:
        """A connection for counters whose every statement stands alone: rate limits, case
        numbers, from a pool of their own. `unit`: the unit of work counting, if any.

        PostgreSQL: autocommit, so a counter's row is locked for one statement and never while
        a request goes on with its work. Commits do not wait for the WAL flush: a count lost
        in a crash is one whose unit of work did not commit either, since that commit would
        have flushed the WAL up to and past it.
        SQLite: a write transaction of its own, committed when the block ends, so that the
        database's one write lock is held for the count only. But a unit of work holding the
        write lock already counts on its own connection (a second would wait for the lock
        forever), its counts committing or rolling back with it.
        """
        if self._connection is not None:
            async with self.write() as session:
                yield await session.connection()
        elif self.dialect == "sqlite" and unit is not None and await _writing(unit):
            yield unit.conn if isinstance(unit, BareUnit) else await unit.connection()
        else:
            assert self._bookkeeper is not None
            async with self._pooled(self._bookkeeper) as conn:
                yield conn

    def _bare(self, driver: Any, info: dict[str, Any]) -> Pooled:
        if self.dialect == "sqlite":
            driver = dbsqlite.sqlite3_of(driver)
        return Pooled(self.engine.dialect, driver, info)

    @asynccontextmanager
    async def _pooled(self, engine: AsyncEngine) -> AsyncIterator[Pooled]:
        """A connection of `engine`'s pool, bare. On SQLite its transaction commits when the
        block ends without error and rolls back otherwise. On PostgreSQL a connection that
        failed is closed, not given back (it may be dead: the server restarted, say), unless
        the error was a refusal, which a service makes between statements."""
        record = await engine.raw_connection()
        conn = self._bare(record.driver_connection, record.info)
        sqlite = self.dialect == "sqlite"
        try:
            yield conn
            if sqlite and conn.driver.in_transaction:
                conn.driver.commit()
        except BaseException as error:
            if sqlite:
                if conn.driver.in_transaction:
                    conn.driver.rollback()
            elif not isinstance(error, errors.BurnbanError):
                await greenlet_spawn(record.invalidate, error)
            raise
        finally:
            await greenlet_spawn(record.close)  # back to the pool: a SQLite turn ends there

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work; nothing it does is committed."""
        async with self._read() as session:
            try:
                yield session
            finally:
                await session.rollback()

    async def dispose(self) -> None:
        if self._bookkeeper is not None:
            await self._bookkeeper.dispose()
        await self.engine.dispose()
