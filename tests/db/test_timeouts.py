"""A ceiling on every statement of a request: one running longer is stopped and the request
answers 503 problem+json, storing nothing; an export may run longer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.db import Database
from app.deps import DatabaseDep, SessionDep
from app.main import create_app
from tests.conftest import settings_for
from tests.factories import problem_type

_MARK = "UPDATE categories SET name = name || '!' WHERE code = 'open_burning'"
_NAME = "SELECT name FROM categories WHERE code = 'open_burning'"


def _slow(dialect: str, scale: int) -> str:
    """A query that runs about `scale` tenths of a second, or more."""
    if dialect == "postgresql":
        return f"SELECT pg_sleep({scale / 10})"
    rows = 2_000_000 * scale
    return (
        f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) "
        "SELECT count(*) FROM c"
    )


@pytest.fixture
async def client(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An API process on its own pools, whose statements may run 0.2 s (exports 30 s)."""
    settings = settings_for(database_url, tmp_path)
    settings.statement_timeout_seconds = 0.2
    db = Database.for_requests(settings)
    app = create_app(settings, database=db)
    _probes(app, db.dialect)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as c:
            yield c
    finally:
        await db.dispose()


def _probes(app: FastAPI, dialect: str) -> None:
    @app.get("/probe/slow")
    async def slow_read(session: SessionDep) -> dict[str, int]:
        await (await session.connection()).execute(text(_slow(dialect, 50)))
        return {"done": 1}

    @app.post("/probe/slow")
    async def slow_write(session: SessionDep) -> dict[str, int]:
        conn = await session.connection()
        await conn.execute(text(_MARK))
        await conn.execute(text(_slow(dialect, 50)))
        return {"done": 1}

    @app.get("/probe/export")
    async def export(db: DatabaseDep) -> dict[str, int]:
        async with db.read(ceiling=db.export_timeout) as session:
            await (await session.connection()).execute(text(_slow(dialect, 3)))
        return {"done": 1}

    @app.get("/probe/name")
    async def name(session: SessionDep) -> dict[str, str]:
        return {"name": (await (await session.connection()).execute(text(_NAME))).scalar_one()}


async def test_a_statement_over_the_ceiling_is_stopped_and_answers_503(
    client: httpx.AsyncClient,
) -> None:
    read = await client.get("/probe/slow")
    assert read.status_code == 503, read.text
    assert read.headers["content-type"] == "application/problem+json"
    assert read.json()["type"] == problem_type("unavailable")
    assert "ran longer" in read.json()["detail"]
    assert int(read.headers["Retry-After"]) >= 1
    assert (await client.get("/readyz")).status_code == 200  # the connection serves on


async def test_a_write_stopped_by_the_ceiling_stores_nothing(client: httpx.AsyncClient) -> None:
    before = (await client.get("/probe/name")).json()["name"]
    write = await client.post("/probe/slow")
    assert write.status_code == 503, write.text
    assert (await client.get("/probe/name")).json()["name"] == before


async def test_an_export_may_run_past_the_ceiling_of_other_requests(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/probe/export")
    assert answer.status_code == 200, answer.text
