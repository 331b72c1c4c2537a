"""Column types and constraint naming shared by the models, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json
from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

# Stable constraint names so that migrations can refer to them on both databases.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite keeps no offset, so we put it back."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Columns:
    """A row about to be written, read as the model it will be (by attribute): what the
    answers read of it, without building the model (a SQLModel table model costs more to
    build than the row costs to write)."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.__dict__.update(row)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def new_id() -> str:
    """A random identifier for rows exposed in the API."""
    return uuid.uuid4().hex


def json_text(value: Any) -> str:
    """JSON columns' text (the engines' `json_serializer`): compact UTF-8 by pydantic-core,
    several times faster than the json module for a report's answer and events."""
    return to_json(value).decode()
