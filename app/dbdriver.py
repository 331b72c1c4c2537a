"""Hot paths' statements, run on the database driver's own connection (asyncpg, sqlite3).

Through SQLAlchemy a statement costs about 0.1 ms of Python around the database's own work (an
execution context, parameter and result processing, a greenlet switch), more than the
database takes to answer the statements every request makes: who is calling, how many writes
they made this minute, the next case number. So those are built with SQLAlchemy Core, compiled
once per dialect, and run on the unit of work's connection by the driver itself; values go in
and come out through the column types' own processors, as SQLAlchemy would pass them.

Bookkeeping (counters standing alone, `Database.bookkeeping`) and a report, whose every
statement runs here (`Database.bare`), run on a pool's connection taken bare (`Pooled`):
SQLAlchemy's Connection around it cost ~0.07 ms of Python a checkout, a session more.

Transactions stay the unit of work's. A write run here on SQLite begins the unit's write
transaction first, as a SQLAlchemy statement would (`app.dbsqlite.begin_writing`). On
PostgreSQL SQLAlchemy begins a unit's transaction at its first SQLAlchemy statement: what runs
here before that runs on its own, in autocommit. So run here reads, and writes that stand
alone: a counter's increment, a report's filing (one atomic statement).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from app import dbsqlite

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in their positions
    fixed: dict[str, Any]  # the statement's own values: literals bound, e.g. `count + 1`
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...] | None  # None: rows as the driver gives them


@dataclass(frozen=True)
class Pooled:
    """A pool's connection, bare: its dialect, the driver's connection (asyncpg's, or sqlite3's)
    and the pool record's info (SQLite: its process's write turns, `app.dbsqlite`)."""

    dialect: Dialect
    driver: Any
    info: dict[str, Any]

    async def begin_writing(self) -> None:
        """SQLite: begin a write transaction, unless one has begun (taking the process's turn
        and the database's write lock). PostgreSQL: nothing, each statement stands alone."""
        if self.dialect.name == "sqlite" and not self.driver.in_transaction:
            await dbsqlite.begin_pooled(self.info, self.driver)

    async def fetch(self, sql: str, values: list[Any], writes: bool) -> Sequence[Any]:
        if self.dialect.name == "sqlite":
            if writes:
                await self.begin_writing()
            return self.driver.execute(sql, values).fetchall()  # type: ignore[no-any-return]
        return await self.driver.fetch(sql, *values)  # type: ignore[no-any-return]


class DriverStatement:
    """A statement compiled once per dialect, run by the driver on a SQLAlchemy connection
    (or a bare pooled one)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self.writes = dbsqlite.takes_write_lock(statement)
        self._compiled: dict[str, _Compiled] = {}

    async def rows(
        self, conn: AsyncConnection | Pooled, params: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        compiled = self._for(conn.dialect)
        given = params or {}
        if compiled.fixed:
            given = {**compiled.fixed, **given}
        values = [
            given[name] if bind is None else bind(given[name])
            for name, bind in zip(compiled.names, compiled.binds, strict=True)
        ]
        found: Sequence[Any]
        if isinstance(conn, Pooled):
            found = await conn.fetch(compiled.sql, values, self.writes)
        elif conn.dialect.name == "sqlite":
            if self.writes:
                await dbsqlite.begin_writing(conn)
            found = dbsqlite.raw(conn).execute(compiled.sql, values).fetchall()
        else:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            found = await driver.fetch(compiled.sql, *values)
        if compiled.results is None:
            return [tuple(row) for row in found]
        return [
            tuple(
                v if result is None else result(v)
                for v, result in zip(row, compiled.results, strict=True)  # every column typed
            )
            for row in found
        ]

    async def first(
        self, conn: AsyncConnection | Pooled, params: Mapping[str, Any] | None = None
    ) -> tuple[Any, ...] | None:
        found = await self.rows(conn, params)
        return found[0] if found else None

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _compile(self.statement, dialect)
        return compiled


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup or ())
    fixed = {
        name: compiled.binds[name].effective_value
        for name in names
        if not compiled.binds[name].required
    }
    binds = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    columns = getattr(statement, "selected_columns", None)
    if columns is None:
        columns = getattr(statement, "exported_columns", None)
    results = None
    if columns is not None and len(columns):
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
    return _Compiled(compiled.string, names, fixed, binds, results)
