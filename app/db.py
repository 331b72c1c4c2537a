"""Engine, sessions and the units of work for the configured database.

Each request is one unit of work: `write()` for requests that change data, `read()` for the
rest. Services flush, never commit. Counters that must stand alone - rate limits, case numbers -
are counted on `counters()`, committed at once whatever becomes of the request.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app import dbsqlite
from app.config import Settings
from app.dbtypes import json_text

metadata: MetaData = SQLModel.metadata
_SET_TIMEOUT = text("SELECT set_config('statement_timeout', :ms, true)")


def create_engine(
    url: URL, settings: Settings, statement_timeout: float | None = None
) -> AsyncEngine:
    """An async engine for the URL, tuned for the dialect.

    Pools keep `db_pool_size` connections and open no more (a request waits for one instead):
    an overflow connection is closed when it comes back to a full pool, so under load a pool
    that overflows keeps connecting. `statement_timeout`: seconds after which any statement is
    stopped (PostgreSQL's statement_timeout; on SQLite a progress handler), or none.
    """
    connect_args = {}
    if statement_timeout is not None and url.get_backend_name() == "postgresql":
        connect_args = {"server_settings": {"statement_timeout": _ms(statement_timeout)}}
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        json_serializer=json_text,
        connect_args=connect_args,
    )
    if engine.dialect.name == "sqlite":
        dbsqlite.tune(engine, settings.sqlite_busy_timeout_ms)
        if statement_timeout is not None:
            dbsqlite.limit_statements(engine, statement_timeout)
    else:
        replace_dead_connections(engine)
    return engine


def _ms(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


def replace_dead_connections(engine: AsyncEngine) -> None:
    """PostgreSQL: a pooled connection the server has closed is never handed out.

    A restarted server (or one that ended its backends) closes every connection the pool
    keeps; asyncpg knows it as soon as the event loop has seen the socket close
    (`is_closed()`). Checking that costs nothing, unlike a ping: such a connection raises
    `InvalidatePoolError` at checkout, so the pool replaces it and every connection made
    before it (SQLAlchemy's pessimistic disconnect handling), and no request is given one.
    A connection closed while a request is using it fails that request (503, app/problems.py)
    and, as a disconnect, also makes the pool replace every older connection."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is not None and driver.is_closed():
            raise InvalidatePoolError("the database server closed this connection")


def _counters_engine(engine: AsyncEngine, statement_timeout: float | None) -> AsyncEngine:
    """PostgreSQL: connections in autocommit for counters (see `Database.counters`), half as
    many as the units' pool keeps: a pool apart, so that a unit of work holding a connection
    never waits for another from the pool it holds one of. Commits do not wait for the WAL
    flush: a count lost in a crash is one whose request did not commit either, since that
    commit would have flushed the WAL up to and past it."""
    server_settings = {"synchronous_commit": "off"}
    if statement_timeout is not None:
        server_settings["statement_timeout"] = _ms(statement_timeout)
    counters = create_async_engine(
        engine.url,
        pool_size=max(2, engine.pool.size() // 2),  # type: ignore[attr-defined]
        max_overflow=0,
        isolation_level="AUTOCOMMIT",
        connect_args={"server_settings": server_settings},
    )
    replace_dead_connections(counters)
    return counters


class Database:
    """Units of work on one engine, or on one connection in tests (every unit a savepoint of
    the test's transaction, rolled back at its end)."""

    def __init__(
        self,
        engine: AsyncEngine,
        connection: AsyncConnection | None = None,
        *,
        statement_timeout: float | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.statement_timeout = statement_timeout  # the engine's ceiling (create_engine)
        self.export_timeout: float | None = None  # what an export's unit may take instead
        self._connection = connection
        self._counters: AsyncEngine | None = None
        self._turns = dbsqlite.turns_of(engine) if self.dialect == "sqlite" else None
        if connection is not None:
            shared = async_sessionmaker(
                connection,
                class_=AsyncSession,
                expire_on_commit=False,
                join_transaction_mode="create_savepoint",
            )
            self._read, self._write = shared, shared
            return
        self._read = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        self._write = async_sessionmaker(
            engine.execution_options(**{dbsqlite.IMMEDIATE: True}),
            class_=AsyncSession,
            expire_on_commit=False,
        )
        if self.dialect == "postgresql":
            self._counters = _counters_engine(engine, statement_timeout)

    @classmethod
    def for_requests(cls, settings: Settings) -> Database:
        """An API process's database: no statement runs longer than
        BURNBAN_STATEMENT_TIMEOUT_SECONDS, but an export's, which may run
        BURNBAN_EXPORT_STATEMENT_TIMEOUT_SECONDS (`read(ceiling=db.export_timeout)`)."""
        ceiling = settings.statement_timeout_seconds
        engine = create_engine(settings.url, settings, statement_timeout=ceiling)
        db = cls(engine, statement_timeout=ceiling)
        db.export_timeout = settings.export_statement_timeout_seconds
        return db

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that commits when the block ends without error, else rolls back.

        SQLite: the unit takes its process's turn to write for the whole block, and the
        database's write lock at its first statement (app/dbsqlite.py)."""
        async with self._turn(), self._write() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await session.commit()

    @asynccontextmanager
    async def read(self, *, ceiling: float | None = None) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work; nothing it does is committed. `ceiling`: seconds each of
        its statements may run, instead of the engine's (an export's)."""
        async with self._read() as session:
            try:
                if ceiling is not None:
                    await self._allow(session, ceiling)
                yield session
            finally:
                await session.rollback()

    @asynccontextmanager
    async def counters(self, within: AsyncSession | None = None) -> AsyncIterator[AsyncConnection]:
        """A connection for counters, committed when the block ends: a refused or failed
        request still counts, and no request holds a counter's row locked while it does its
        own work. `within`: the unit of work counting, if any.

        PostgreSQL: autocommit, on a pool of its own; each statement stands alone.
        SQLite: a short write unit of its own; but a unit of work counting (`within`) counts
        in its own transaction, as a second connection would wait for the write lock that the
        unit holds: writes are one at a time on SQLite anyway.
        """
        if self._counters is not None:
            async with self._counters.connect() as conn:
                yield conn
        elif within is not None:
            yield await within.connection()
        else:
            async with self.write() as session:
                yield await session.connection()

    async def _allow(self, session: AsyncSession, seconds: float) -> None:
        """Let the unit's statements run up to `seconds` (where the engine has a ceiling)."""
        if self.statement_timeout is None or self._connection is not None:
            return
        if self.dialect == "sqlite":
            await session.connection(execution_options={dbsqlite.STATEMENT_TIMEOUT: seconds})
        else:  # for this transaction only
            conn = await session.connection()
            await conn.execute(_SET_TIMEOUT, {"ms": _ms(seconds)})

    def _turn(self) -> contextlib.AbstractAsyncContextManager[None]:
        if self._turns is None or self._connection is not None:
            return contextlib.nullcontext()
        return self._turns.turn()

    async def dispose(self) -> None:
        if self._counters is not None:
            await self._counters.dispose()
        await self.engine.dispose()
