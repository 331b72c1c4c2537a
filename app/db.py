"""Engine, sessions and the unit of work for the configured database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.spatial.sqlite import register_functions

metadata: MetaData = SQLModel.metadata

_IMMEDIATE = "burnban_immediate"


def create_engine(url: URL, settings: Settings) -> AsyncEngine:
    """An async engine for the URL, tuned for the dialect."""
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url, connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000}
        )
        _tune_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
    )


def _tune_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """WAL, a busy timeout, foreign keys, and transactions begun by us.

    pysqlite's own transaction handling cannot begin IMMEDIATE, and a write transaction that
    reads first and begins DEFERRED fails with "database is locked" when another writer got
    there between its read and its write. So we turn pysqlite's handling off and emit BEGIN
    ourselves: IMMEDIATE for write units of work, DEFERRED for reads.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        register_functions(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Session factories for one engine, or for one connection in tests.

    Each request is one unit of work: `write()` for requests that change data (on SQLite its
    transaction begins IMMEDIATE), `read()` for the rest. Services flush, never commit.
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
        else:
            self._read = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
            self._write = async_sessionmaker(
                engine.execution_options(**{_IMMEDIATE: True}),
                class_=AsyncSession,
                expire_on_commit=False,
            )

    @asynccontextmanager
    async def write(self, durable: bool = True) -> AsyncIterator[AsyncSession]:
        """A unit of work that commits when the block ends without error.

        `durable=False` is for bookkeeping whose loss in a crash harms nobody (rate-limit
        counters): on PostgreSQL its commit does not wait for the WAL flush.
        """
        async with self._write() as session:
            try:
                if not durable and self.dialect == "postgresql":
                    conn = await session.connection()
                    await conn.execute(text("SET LOCAL synchronous_commit = off"))
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

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
