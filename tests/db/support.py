"""A service of the test's own on a database of its own: the grid, a grid worker, an HTTP client;
and the database server ending every connection to that database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.auth import service as auth_service
from app.auth.schemas import UserCreate
from app.clock import FrozenClock
from app.config import Settings, async_url
from app.db import Database, create_engine
from app.grid import service as grid_service
from app.main import create_app
from app.spatial.store import store_for
from tests.conftest import settings_for
from tests.factories import NOW, PASSWORD, WEST_SOUTH, small_grid


@dataclass
class Service:
    """An app on a pool of its own (as an API process has), with a grid worker's headers."""

    client: httpx.AsyncClient
    db: Database
    settings: Settings
    clock: FrozenClock
    worker: dict[str, str]


async def prepare(db: Database, settings: Settings, now: datetime = NOW) -> dict[str, str]:
    """Load the small grid and make a grid worker in 西南村; the worker's headers, with a
    token issued at `now`."""
    async with db.write() as session:
        await grid_service.import_grid(session, store_for(db.dialect), small_grid(), None, NOW)
    data = UserCreate(
        username="phone", password=PASSWORD, name="网格员", role="grid_worker", cell_code=WEST_SOUTH
    )
    async with db.write() as session:
        user = await auth_service.create_user(session, data, None, NOW)
    token = auth_service.issue_token(user, settings.secret_key, now, 600)
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def service(
    url: str, tmp_path: Path, settings: Settings | None = None
) -> AsyncIterator[Service]:
    """The app over ASGI on the database at `url`, its grid loaded and a grid worker made."""
    settings = settings or settings_for(url, tmp_path)
    db = Database(create_engine(settings.url, settings))
    clock = FrozenClock(NOW)
    try:
        worker = await prepare(db, settings)
        app = create_app(settings, database=db, clock=clock)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://burnban.test") as c:
            yield Service(c, db, settings, clock, worker)
    finally:
        await db.dispose()


async def end_every_connection(url: str) -> int:
    """PostgreSQL ends every backend connected to the database at `url` (what a restart does
    to a service's pools); returns once none is left. How many it ended."""
    engine = create_async_engine(async_url(url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    try:
        async with engine.connect() as conn:
            ended = await conn.execute(text(f"SELECT pg_terminate_backend(pid) {others}"))
            count = len(list(ended))
            gone = text(f"SELECT pg_stat_clear_snapshot(), count(*) = 0 {others}")
            while not (await conn.execute(gone)).one()[1]:
                await asyncio.sleep(0.01)
    finally:
        await engine.dispose()
    # The service was idle meanwhile, as a service is while its database restarts: its event
    # loop reads the closed sockets (asyncpg then knows its connections are closed). Without
    # this pause the test could run its next statement before the loop had looked at them.
    await asyncio.sleep(0.2)
    return count


async def run_sql(url: str, *statements: str) -> None:
    """Run statements on the database at `url` on a connection of their own, in autocommit."""
    engine = create_async_engine(async_url(url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()
