"""Engine, sessions and the unit of work for the configured database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util.concurrency import await_
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app import dbsqlite
from app.config import Settings
from app.spatial.sqlite import register_functions

metadata: MetaData = SQLModel.metadata

_IMMEDIATE = "burnban_immediate"
_WRITER = "burnban_writer"  # the connection holds its process's turn to write


def create_engine(url: URL, settings: Settings) -> AsyncEngine:
    """An async engine for the URL, tuned for the dialect."""
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url, async_creator=dbsqlite.connector(url.database or ":memory:")
        )
        _tune_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        # No ping before each checkout (a round trip per unit of work): a connection found
        # dead fails its request once, and the pool then replaces every older connection.
    )


def _tune_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """WAL, a busy timeout, foreign keys, and transactions begun by us.

    pysqlite's own transaction handling is off (app/dbsqlite.py) and we begin transactions
    ourselves. Read units begin DEFERRED. A write unit reads in autocommit, like PostgreSQL's
    READ COMMITTED, and begins IMMEDIATE - takes the database's one write lock - right before
    its first write or locking read: so it holds the lock for its writes only, and never fails
    with "database is locked" for having read before another writer committed.
    """

    writers = asyncio.Lock()

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        register_functions(dbapi_connection)

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
            if _WRITER not in conn.connection.info:  # this process's writers take turns
                await_(writers.acquire())
                conn.connection.info[_WRITER] = True
            dbsqlite.begin_immediate(conn, busy_timeout_ms / 1000)

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop(_WRITER, False):  # the unit is over
            writers.release()


class Database:
    """Session factories for one engine, or for one connection in tests.

    Each request is one unit of work: `write()` for requests that change data, `read()` for
    the rest. Services flush, never commit.
    """

    def __init__(self, engine: AsyncEngine, connection: AsyncConnection | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        if connection is not None:
            # Tests: every unit of work is a savepoint inside the test's rolled-back transaction.
            shared = async_sessionmaker(
                connection,
                class_=AsyncSession,
                expire_on_commit=False,
                join_transaction_mode="create_savepoint",
            )
            self._read, self._write = shared, shared
            self._shared = True
        else:
            self._shared = False
            self._read = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
            self._write_engine = engine.execution_options(**{_IMMEDIATE: True})
            self._write = async_sessionmaker(
                self._write_engine, class_=AsyncSession, expire_on_commit=False
            )

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that commits when the block ends without error."""
        async with self._write() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def bookkeeping(self) -> AsyncIterator[AsyncConnection]:
        """A connection for counters whose every statement stands alone (rate limits).

        PostgreSQL: autocommit, so one round trip a statement, and no row lock held past it.
        SQLite: a write transaction, committed when the block ends.
        """
        if self._shared:
            async with self.write() as session:
                yield await session.connection()
        elif self.dialect == "postgresql":
            async with self.engine.connect() as conn:
                yield await conn.execution_options(isolation_level="AUTOCOMMIT")
        else:  # a bare connection: a session would cost more than the counting
            async with self._write_engine.connect() as conn:
                yield conn
                await conn.commit()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work; nothing it does is committed."""
        async with self._read() as session:
            try:
                yield session
            finally:
                await session.rollback()

    async def dispose(self) -> None:
        await self.engine.dispose()
