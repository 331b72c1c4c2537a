"""Writes built once and run together: the hot write paths' statements.

Building a SQLAlchemy statement costs more than running it against SQLite, and a statement
built anew is looked up in the compiled cache by walking it; a multi-row VALUES is never
cached at all. So the hot paths keep their statements built once, with named parameters,
and pass each request's values as a `Write`: the statement and its parameters.

`execute_together` then sends a request's independent writes in one round trip on
PostgreSQL (data-modifying CTEs of one statement) and one after the other on SQLite.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    Executable,
    Insert,
    Select,
    Table,
    bindparam,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

Write = tuple[Executable, dict[str, Any]]


def inserting(table: Table, rows: Sequence[Mapping[str, Any]], prefix: str) -> Write:
    """INSERT `rows` (the same keys each) in the order given; parameters named `prefix…`,
    which must differ between writes run together."""
    columns = tuple(rows[0])
    params = {f"{prefix}{i}_{c}": row[c] for i, row in enumerate(rows) for c in columns}
    return _rows_insert(table, columns, len(rows), prefix), params


@functools.lru_cache(maxsize=64)  # statements built once: a handful of keys
def _rows_insert(table: Table, columns: tuple[str, ...], count: int, prefix: str) -> Insert:
    def bind(i: int, column: str) -> Any:
        return bindparam(f"{prefix}{i}_{column}", type_=table.c[column].type)

    if count == 1:
        return insert(table).values({c: bind(0, c) for c in columns})
    # INSERT … SELECT … UNION ALL …: the rows get their ids in this order.
    rows = [select(*(bind(i, c).label(c) for c in columns)) for i in range(count)]
    return insert(table).from_select(list(columns), union_all(*rows))


async def execute_together(conn: AsyncConnection, writes: Sequence[Write]) -> None:
    """Run independent writes in one round trip where the database allows it.

    PostgreSQL runs them as the data-modifying CTEs of one statement: they see the same
    snapshot and not each other's rows, and foreign keys are checked when the statement ends,
    so a row may reference another inserted beside it. SQLite runs them in the order given.
    """
    if conn.dialect.name == "postgresql" and len(writes) > 1:
        params: dict[str, Any] = {}
        for _, each in writes:
            params |= each
        await conn.execute(_together(tuple(statement for statement, _ in writes)), params)
        return
    for statement, each in writes:
        await conn.execute(statement, each)


@functools.lru_cache(maxsize=64)  # statements built once: a handful of keys
def _together(statements: tuple[Executable, ...]) -> Select[Any]:
    ctes = [cast(Any, statement).cte(f"w{i}") for i, statement in enumerate(statements)]
    return select(literal(1)).add_cte(*ctes)
