"""Alembic environment: runs the migrations on the configured database, async."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel.sql.sqltypes import AutoString

import app.models
from app.config import Settings, async_url
from app.dbtypes import UtcDateTime
from app.spatial.types import GeometryType

config = context.config
target_metadata = app.models.metadata

# Spatial indexes are made by hand in the revisions, per dialect: GiST indexes on PostgreSQL
# (named gix_*), the R*Tree virtual table on SQLite (cells_rtree and its shadow tables) and
# SQLite's stand-ins for the incidents' GiST indexes (ix_incidents_lon_lat and
# ix_incidents_open_lon_lat). So is the index SQLite alone needs for the scorecard's
# per-township counts (ix_incidents_township_scorecard). None is in the models, so
# autogenerate must not see them as drift.
_HAND_MADE_PREFIXES = (
    "gix_",
    "cells_rtree",
    "ix_incidents_lon_lat",
    "ix_incidents_open_lon_lat",
    "ix_incidents_township_scorecard",
)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    if name and name.startswith(_HAND_MADE_PREFIXES):
        return False
    return bool(alembic_helpers.include_object(obj, name, type_, reflected, compare_to))  # type: ignore[no-untyped-call]


def render_item(type_: str, obj: Any, autogen_context: Any) -> Any:
    """Render our column types as importable code in generated revisions."""
    if type_ != "type":
        return False
    if isinstance(obj, GeometryType):
        autogen_context.imports.add("from app.spatial.types import GeometryType")
        return repr(obj)
    if isinstance(obj, UtcDateTime):
        autogen_context.imports.add("from app.dbtypes import UtcDateTime")
        return "UtcDateTime()"
    if isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})"
    rendered: str | bool = alembic_helpers.render_item(type_, obj, autogen_context)  # type: ignore[no-untyped-call]
    return rendered


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=render_item,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    connection: AsyncConnection | None = config.attributes.get("connection")
    if connection is not None:
        await connection.run_sync(_run)
        return
    url = config.attributes.get("url") or async_url(Settings().database_url)
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


def run_migrations_online() -> None:
    sync_connection: Connection | None = config.attributes.get("sync_connection")
    if sync_connection is not None:
        _run(sync_connection)
        return
    asyncio.run(_run_async())


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations_online()
