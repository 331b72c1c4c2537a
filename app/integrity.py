"""What a database's integrity error means to the caller: the rule broken and the field.

Services check what they can before writing; this is the net under them, so that a write the
database refuses (a reference to nothing, a taken value, a missing value) answers a problem
naming the field, never a 500. Both databases are read: PostgreSQL names the constraint and its
columns; SQLite names the columns of a unique or not-null constraint, and for a foreign key
nothing, so the statement's own columns that hold a reference are named instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.exc import IntegrityError

from app import errors

_PG_KINDS = {"23503": "foreign_key", "23505": "unique", "23502": "not_null", "23514": "check"}
_SQLITE_KINDS = {
    "FOREIGN KEY": "foreign_key",
    "UNIQUE": "unique",
    "NOT NULL": "not_null",
    "CHECK": "check",
}
_PG_KEY = re.compile(r"Key \(([^)]*)\)")
_INSERT = re.compile(r"INSERT INTO\s+\"?(\w+)\"?\s*\(([^)]*)\)", re.IGNORECASE)
_UPDATE = re.compile(
    r"UPDATE\s+\"?(\w+)\"?\s+SET\s+(.*?)(?:\s+WHERE\s|$)", re.IGNORECASE | re.DOTALL
)


@dataclass(frozen=True)
class Violation:
    kind: str  # foreign_key | unique | not_null | check | unknown
    table: str | None
    columns: tuple[str, ...]


def violation_of(exc: IntegrityError, metadata: MetaData) -> Violation:
    """The rule the database refused the statement for, and the columns it names."""
    cause = exc.orig.__cause__ if exc.orig is not None else None
    sqlstate = getattr(exc.orig, "sqlstate", None)
    statement_table, written = _written_columns(exc.statement or "", exc.params)
    if sqlstate is not None:  # PostgreSQL (asyncpg)
        kind = _PG_KINDS.get(str(sqlstate), "unknown")
        table = getattr(cause, "table_name", None) or statement_table
        column = getattr(cause, "column_name", None)
        found = _PG_KEY.search(getattr(cause, "detail", None) or "")
        columns = (column,) if column else _split(found.group(1)) if found else ()
        return Violation(kind, table, columns)
    message = str(exc.orig)
    kind = next((k for prefix, k in _SQLITE_KINDS.items() if message.startswith(prefix)), "unknown")
    if kind == "foreign_key":
        return Violation(kind, statement_table, _references(metadata, statement_table, written))
    named = message.partition("failed:")[2]
    columns = tuple(part.strip().rpartition(".")[2] for part in named.split(",") if part.strip())
    table = named.strip().partition(".")[0] or statement_table if columns else statement_table
    return Violation(kind, table, columns)


def refusal(violation: Violation) -> errors.BurnbanError:
    """The domain error to answer: a taken value is a conflict; the rest, invalid fields."""
    fields = ", ".join(violation.columns) or "a field"
    if violation.kind == "unique":
        return errors.Conflict(f"{fields}: the value is taken")
    msg = {
        "foreign_key": "refers to something that does not exist",
        "not_null": "is required",
        "check": "is out of range",
    }.get(violation.kind, "was refused by the database")
    detail = f"{fields}: {msg}"
    locs = [{"loc": ["body", column], "msg": msg} for column in violation.columns]
    return errors.ValidationFailed(detail, errors=locs or [{"loc": ["body"], "msg": detail}])


def _split(names: str) -> tuple[str, ...]:
    return tuple(name.strip().strip('"') for name in names.split(",") if name.strip())


def _written_columns(statement: str, params: Any) -> tuple[str | None, dict[str, Any]]:
    """The table a statement writes and the values it writes by column (when they can be read)."""
    insert = _INSERT.search(statement)
    if insert is not None:
        columns = _split(insert.group(2))
        return insert.group(1), _by_column(columns, params)
    update = _UPDATE.search(statement)
    if update is not None:
        columns = tuple(
            part.split("=")[0].strip().strip('"') for part in update.group(2).split(",")
        )
        return update.group(1), _by_column(columns, params)
    return None, {}


def _by_column(columns: Sequence[str], params: Any) -> dict[str, Any]:
    if isinstance(params, Mapping):
        return {column: params.get(column) for column in columns}
    if isinstance(params, Sequence) and params and isinstance(params[0], Sequence):
        params = params[0]  # an executemany: its first row
    if isinstance(params, Sequence) and not isinstance(params, str):
        return dict(zip(columns, params, strict=False))
    return {}


def _references(
    metadata: MetaData, table: str | None, written: Mapping[str, Any]
) -> tuple[str, ...]:
    """The columns of `table` holding a reference that the statement wrote a value to."""
    if table is None or table not in metadata.tables:
        return ()
    referring = [fk.parent.name for fk in metadata.tables[table].foreign_keys]
    named = [column for column in referring if written.get(column) is not None]
    return tuple(dict.fromkeys(named or referring))
